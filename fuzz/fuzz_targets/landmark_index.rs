//! The landmark index loader (`landmarks.idx`): any bytes give an index or
//! `None`; a loaded index writes back to the same bytes and answers queries.
#![no_main]

use earmark_align::landmarks::LandmarkIndex;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(index) = LandmarkIndex::from_bytes(data) {
        assert_eq!(index.to_bytes(), data);
        let _ = index.works();
    }
});
