//! The slot-rules TOML (`--rules`): any text gives a rule set or an error.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| earmark_fuzz_targets::slot_rules(data));
