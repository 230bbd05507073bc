//! The recipient CSV (`earmark recipient import`): any bytes give the rows
//! or one error with its line, never a panic; every name read is valid.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| earmark_fuzz_targets::recipient_csv(data));
