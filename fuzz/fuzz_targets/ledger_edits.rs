//! A small ledger edited as an attacker with the database file (not the
//! key) would, then verified and traced: the holder alone, nobody, or a
//! refusal, never anyone else.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| earmark_fuzz_targets::ledger_edits(data));
