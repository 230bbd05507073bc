//! The key file parser (`earmark keygen`'s files and the home's
//! `master.key`): any text gives a key or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| earmark_fuzz_targets::key_file(data));
