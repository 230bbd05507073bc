//! The slot-rules TOML (`--rules`): any text gives a rule set or an error.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = earmark_text::RuleSet::from_toml(text);
    }
});
