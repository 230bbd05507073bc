//! The bench's attack-chain parser (`--attacks`): any text gives chains or
//! an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| earmark_fuzz_targets::attack_chain(data));
