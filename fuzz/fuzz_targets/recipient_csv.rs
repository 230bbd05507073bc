//! The recipient CSV (`earmark recipient import`): any bytes give the rows
//! or one error with its line, never a panic; every name read is valid.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = std::path::Path::new("people.csv");
    if let Ok(rows) = earmark_ledger::read_recipient_csv(data, path) {
        for row in rows {
            assert_eq!(
                earmark_ledger::names::normalise(&row.1).ok().as_deref(),
                Some(row.1.as_str())
            );
        }
    }
});
