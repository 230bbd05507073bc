//! Transcript parsing: plain text, Markdown, SRT and WebVTT. The first byte
//! picks the format (or lets the text be sniffed); a parsed document
//! renders its own text back without a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| earmark_fuzz_targets::transcript(data));
