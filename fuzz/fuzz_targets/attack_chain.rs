//! The bench's attack-chain parser (`--attacks`): any text gives chains or
//! an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = earmark_bench::attack::parse_list(text);
    }
});
