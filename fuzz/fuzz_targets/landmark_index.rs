//! The landmark index loader (`landmarks.idx`): any bytes give an index or
//! `None`; a loaded index writes back to the same bytes and answers queries.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| earmark_fuzz_targets::landmark_index(data));
