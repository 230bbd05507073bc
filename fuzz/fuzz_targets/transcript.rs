//! Transcript parsing: plain text, Markdown, SRT and WebVTT. The first byte
//! picks the format (or lets the text be sniffed); a parsed document
//! renders its own text back without a panic.
#![no_main]

use earmark_text::{Document, Format};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let Ok(source) = std::str::from_utf8(rest) else {
        return;
    };
    let format = match selector % 5 {
        0 => Some(Format::Plain),
        1 => Some(Format::Markdown),
        2 => Some(Format::Srt),
        3 => Some(Format::WebVtt),
        _ => None,
    };
    if let Ok(document) = Document::parse(source.to_string(), format) {
        let text = document.text();
        let _ = document.with_text(&text);
    }
});
