//! The key file parser (`earmark keygen`'s files and the home's
//! `master.key`): any text gives a key or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(key) = earmark_keys::SecretKey::from_file_text(text) {
            // What was read writes back as a key file that reads the same.
            let again = earmark_keys::SecretKey::from_file_text(&key.to_file_text())
                .expect("a written key file reads back");
            assert_eq!(again.to_file_text(), key.to_file_text());
        }
    }
});
