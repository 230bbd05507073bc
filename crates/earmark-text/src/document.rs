//! Transcript documents: which parts are spoken text (and may carry slots)
//! and which are structure that must come through byte for byte: SRT and
//! WebVTT cue numbers, timings and settings, WebVTT headers, notes and
//! styles, Markdown markers and code, and speaker labels.

use std::ops::Range;

/// The formats a transcript may come in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Plain text, one utterance or paragraph per line.
    Plain,
    /// Markdown.
    Markdown,
    /// SubRip subtitles.
    Srt,
    /// WebVTT.
    WebVtt,
}

impl Format {
    /// The format a file name's extension names, if any (`txt`, `md`,
    /// `markdown`, `srt`, `vtt`).
    pub fn from_extension(extension: &str) -> Option<Format> {
        match extension.to_ascii_lowercase().as_str() {
            "txt" | "text" => Some(Format::Plain),
            "md" | "markdown" => Some(Format::Markdown),
            "srt" => Some(Format::Srt),
            "vtt" | "webvtt" => Some(Format::WebVtt),
            _ => None,
        }
    }

    /// The format a text's content shows (WebVTT header, SRT timing lines),
    /// else plain.
    pub fn sniff(text: &str) -> Format {
        let body = text.trim_start_matches('\u{feff}');
        if body.starts_with("WEBVTT") {
            return Format::WebVtt;
        }
        let mut lines = body.lines().map(str::trim).filter(|l| !l.is_empty());
        if let (Some(first), Some(second)) = (lines.next(), lines.next()) {
            if first.chars().all(|c| c.is_ascii_digit()) && second.contains("-->") {
                return Format::Srt;
            }
        }
        Format::Plain
    }

    /// The usual file extension.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Plain => "txt",
            Format::Markdown => "md",
            Format::Srt => "srt",
            Format::WebVtt => "vtt",
        }
    }
}

/// Why a text is not a transcript.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DocumentError {
    /// Nothing but whitespace.
    #[error("the transcript is empty")]
    Empty,
    /// Control characters a text file does not hold.
    #[error("not a text file (binary content at byte {0})")]
    Binary(usize),
    /// A subtitle file whose cues could not be found.
    #[error("not a valid {format} file: {reason}")]
    Malformed {
        /// The format expected.
        format: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// Structure only: no line of spoken text.
    #[error("the transcript holds no spoken text")]
    NoText,
}

/// A transcript split into spoken text and protected structure.
#[derive(Clone, Debug)]
pub struct Document {
    /// The format it was read as.
    pub format: Format,
    /// The whole text, as given.
    pub source: String,
    /// Byte ranges of `source` that are spoken text, in order. Everything
    /// between them is structure.
    pub spans: Vec<Range<usize>>,
}

/// A speaker label or timestamp that starts a line of spoken text:
/// `[00:01:02]`, `(12:03)`, `ALICE:`, `Dr. Smith:`, `**Bob:**`, `- `.
fn label_len(line: &str) -> usize {
    let bytes = line.as_bytes();
    let mut at = 0;
    let skip_space = |at: &mut usize| {
        while *at < bytes.len() && (bytes[*at] == b' ' || bytes[*at] == b'\t') {
            *at += 1;
        }
    };
    skip_space(&mut at);
    // Timestamp in brackets or parentheses.
    if at < bytes.len() && (bytes[at] == b'[' || bytes[at] == b'(') {
        let close = if bytes[at] == b'[' { b']' } else { b')' };
        if let Some(k) = line[at..].find(close as char) {
            let inner = &line[at + 1..at + k];
            if !inner.is_empty()
                && inner.len() <= 14
                && inner
                    .chars()
                    .all(|c| c.is_ascii_digit() || matches!(c, ':' | '.' | ','))
            {
                at += k + 1;
                skip_space(&mut at);
            }
        }
    }
    // Dialogue dash.
    if line[at..].starts_with("- ") {
        at += 2;
    }
    // Speaker name: up to four capitalised words (or markup around them)
    // ending in ':' and a space.
    let rest = &line[at..];
    if let Some(colon) = rest.find(':') {
        let name = rest[..colon].trim_matches(|c| c == '*' || c == '_');
        let after = &rest[colon + 1..];
        let after_trim = after.trim_start_matches(['*', '_']);
        let words: Vec<&str> = name.split_whitespace().collect();
        let capitalised = !words.is_empty()
            && words.len() <= 4
            && words.iter().all(|w| {
                w.chars().next().is_some_and(|c| c.is_uppercase())
                    && w.chars()
                        .all(|c| c.is_alphanumeric() || matches!(c, '.' | '\'' | '-'))
            });
        // Or one identifier such as `agent-pass`, `letters/a` or `goodbye`:
        // prompt and cue names. Spoken text rarely opens a line with one
        // word and a colon, and a rendering must never turn text into a
        // label (`goodbye` → `good-bye`), so any single word counts.
        let identifier = words.len() == 1
            && words[0]
                .chars()
                .all(|c| c.is_alphanumeric() || matches!(c, '-' | '/' | '_'));
        let capitalised = capitalised || identifier;
        if capitalised && (after_trim.starts_with(' ') || after_trim.is_empty()) && colon <= 60 {
            let label_end = at + colon + 1 + (after.len() - after_trim.len());
            let mut end = label_end;
            while end < bytes.len() && bytes[end] == b' ' {
                end += 1;
            }
            return end;
        }
    }
    at
}

/// Checks a cue's timing line, `start --> end` and optional settings:
/// each time well formed (SRT `hh:mm:ss,mmm`, also with a full stop;
/// WebVTT `[hh:]mm:ss.mmm`), minutes and seconds below 60, at most 4 digits
/// of hours, and the end not before the start.
fn check_timing(line: &str, format: Format) -> Result<(), String> {
    let shown: String = line.trim().chars().take(60).collect();
    let (start, rest) = line
        .split_once("-->")
        .ok_or_else(|| format!("'{shown}' is not a timing line"))?;
    let end = rest.split_whitespace().next().unwrap_or("");
    let parse = |time: &str| {
        parse_cue_time(time.trim(), format)
            .ok_or_else(|| format!("'{}' in '{shown}' is not a valid time", time.trim()))
    };
    let (start_ms, end_ms) = (parse(start)?, parse(end)?);
    if end_ms < start_ms {
        return Err(format!("'{shown}' ends before it starts"));
    }
    Ok(())
}

/// A cue time in milliseconds, or `None` if malformed.
fn parse_cue_time(time: &str, format: Format) -> Option<u64> {
    let (clock, millis) = match format {
        Format::Srt => time.rsplit_once([',', '.'])?,
        _ => time.rsplit_once('.')?,
    };
    let digits = |s: &str, min: usize, max: usize| {
        (min..=max).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
    };
    if !digits(millis, 3, 3) {
        return None;
    }
    let parts: Vec<&str> = clock.split(':').collect();
    let (hours, minutes, seconds) = match (format, parts.as_slice()) {
        (Format::Srt, [h, m, s]) => (*h, *m, *s),
        (Format::WebVtt, [h, m, s]) if h.len() >= 2 => (*h, *m, *s),
        (Format::WebVtt, [m, s]) => ("0", *m, *s),
        _ => return None,
    };
    if !digits(hours, 1, 4) || !digits(minutes, 2, 2) || !digits(seconds, 2, 2) {
        return None;
    }
    let (h, m, s, ms): (u64, u64, u64, u64) = (
        hours.parse().ok()?,
        minutes.parse().ok()?,
        seconds.parse().ok()?,
        millis.parse().ok()?,
    );
    if m >= 60 || s >= 60 {
        return None;
    }
    Some(((h * 60 + m) * 60 + s) * 1000 + ms)
}

/// Lines of `text` with their byte offsets (line terminators excluded).
fn lines_with_offsets(text: &str) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, b) in text.bytes().enumerate() {
        if b == b'\n' {
            let end = if i > start && text.as_bytes()[i - 1] == b'\r' {
                i - 1
            } else {
                i
            };
            out.push(start..end);
            start = i + 1;
        }
    }
    if start < text.len() {
        out.push(start..text.len());
    }
    out
}

impl Document {
    /// Reads `source` as `format` (or as what its content shows when `None`).
    pub fn parse(source: String, format: Option<Format>) -> Result<Document, DocumentError> {
        if let Some(at) = source
            .char_indices()
            .find(|&(_, c)| c.is_control() && !matches!(c, '\n' | '\r' | '\t' | '\u{c}'))
            .map(|(i, _)| i)
        {
            return Err(DocumentError::Binary(at));
        }
        if source.trim().is_empty() {
            return Err(DocumentError::Empty);
        }
        let format = format.unwrap_or_else(|| Format::sniff(&source));
        let lines = lines_with_offsets(&source);
        let mut spans = Vec::new();
        let mut push_text = |line: &Range<usize>| {
            let text = &source[line.clone()];
            let skip = label_len(text);
            let body = &text[skip..];
            let trimmed = body.trim_end();
            if !trimmed.trim().is_empty() {
                spans.push(line.start + skip..line.start + skip + trimmed.len());
            }
        };
        match format {
            Format::Plain => lines.iter().for_each(&mut push_text),
            Format::Markdown => {
                let mut fenced = false;
                for line in &lines {
                    let text = &source[line.clone()];
                    let trimmed = text.trim_start();
                    if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
                        fenced = !fenced;
                        continue;
                    }
                    if fenced
                        || text.starts_with("    ")
                        || trimmed.starts_with('|')
                        || trimmed.starts_with("<!--")
                        || trimmed
                            .chars()
                            .all(|c| matches!(c, '-' | '*' | '_' | '=' | ' '))
                    {
                        continue;
                    }
                    // Block markers: headings, quotes, list bullets and numbers.
                    let marker = trimmed
                        .find(|c: char| !matches!(c, '#' | '>' | ' '))
                        .unwrap_or(0);
                    let mut skip = text.len() - trimmed.len() + marker;
                    let rest = &text[skip..];
                    if rest.starts_with("- ") || rest.starts_with("* ") || rest.starts_with("+ ") {
                        skip += 2;
                    } else if let Some(dot) = rest.find(". ") {
                        if dot > 0 && dot <= 3 && rest[..dot].chars().all(|c| c.is_ascii_digit()) {
                            skip += dot + 2;
                        }
                    }
                    push_text(&(line.start + skip..line.end));
                }
            }
            Format::Srt | Format::WebVtt => {
                let name = if format == Format::Srt {
                    "SRT"
                } else {
                    "WebVTT"
                };
                let mut cues = 0;
                let mut bad_timing: Option<String> = None;
                let mut block: Vec<(usize, &Range<usize>)> = Vec::new();
                let mut first_block = true;
                let mut flush = |block: &mut Vec<(usize, &Range<usize>)>, first: &mut bool| {
                    if block.is_empty() {
                        return;
                    }
                    let is_header = *first && format == Format::WebVtt;
                    *first = false;
                    let head = source[block[0].1.clone()].trim_start_matches('\u{feff}');
                    let skip_block = is_header
                        || head.starts_with("NOTE")
                        || head.starts_with("STYLE")
                        || head.starts_with("REGION");
                    if !skip_block {
                        if let Some(timing) = block
                            .iter()
                            .position(|(_, l)| source[(*l).clone()].contains("-->"))
                        {
                            cues += 1;
                            let (number, line) = block[timing];
                            if let Err(problem) = check_timing(&source[line.clone()], format) {
                                bad_timing.get_or_insert(format!("line {}: {problem}", number + 1));
                            }
                            for (_, line) in &block[timing + 1..] {
                                push_text(line);
                            }
                        }
                    }
                    block.clear();
                };
                for (number, line) in lines.iter().enumerate() {
                    if source[line.clone()].trim().is_empty() {
                        flush(&mut block, &mut first_block);
                    } else {
                        block.push((number, line));
                    }
                }
                flush(&mut block, &mut first_block);
                if let Some(reason) = bad_timing {
                    return Err(DocumentError::Malformed {
                        format: name,
                        reason,
                    });
                }
                if format == Format::WebVtt
                    && !source.trim_start_matches('\u{feff}').starts_with("WEBVTT")
                {
                    return Err(DocumentError::Malformed {
                        format: name,
                        reason: "it does not start with WEBVTT".into(),
                    });
                }
                if cues == 0 {
                    return Err(DocumentError::Malformed {
                        format: name,
                        reason: "no cue with a timing line (hh:mm:ss,mmm --> hh:mm:ss,mmm)".into(),
                    });
                }
            }
        }
        if spans.is_empty() {
            return Err(DocumentError::NoText);
        }
        Ok(Document {
            format,
            source,
            spans,
        })
    }

    /// The spoken text of every span, joined by newlines: what slots are
    /// found in and what quotes are aligned against.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for (i, span) in self.spans.iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            out.push_str(&self.source[span.clone()]);
        }
        out
    }

    /// The document with its spoken text replaced by `text`, which must have
    /// as many newline-separated lines as the document has spans (as
    /// [`Document::text`] gives, edited within lines).
    pub fn with_text(&self, text: &str) -> String {
        let mut out = String::with_capacity(self.source.len() + 64);
        let mut at = 0;
        let lines: Vec<&str> = text.split('\n').collect();
        assert_eq!(lines.len(), self.spans.len(), "one line per span");
        for (span, line) in self.spans.iter().zip(lines) {
            out.push_str(&self.source[at..span.start]);
            out.push_str(line);
            at = span.end;
        }
        out.push_str(&self.source[at..]);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Timings that cannot be real are refused with the line they are on;
    /// the forms real subtitle files use pass.
    #[test]
    fn subtitle_timings_are_checked() {
        let srt = |timing: &str| {
            Document::parse(format!("1\n{timing}\nHello there.\n"), Some(Format::Srt))
        };
        for good in [
            "00:00:01,000 --> 00:00:03,500",
            "00:00:01.000 --> 00:00:03.500",
            "1:02:03,004 --> 1:02:04,000 X1:40",
            "00:00:05,000 --> 00:00:05,000",
        ] {
            assert!(srt(good).is_ok(), "{good}");
        }
        for (bad, why) in [
            ("00:00:99,000 --> 00:01:00,000", "not a valid time"),
            ("00:00:05,000 --> 00:00:04,000", "ends before it starts"),
            ("-00:00:01,000 --> 00:00:02,000", "not a valid time"),
            (
                "00000000000000000001:00:00,000 --> 00:00:02,000",
                "not a valid time",
            ),
            ("00:61:00,000 --> 00:62:00,000", "not a valid time"),
            ("00:00:01,00 --> 00:00:02,000", "not a valid time"),
            ("00:00:01,000 --> ", "not a valid time"),
        ] {
            match srt(bad) {
                Err(DocumentError::Malformed { reason, .. }) => {
                    assert!(reason.starts_with("line 2: "), "{bad}: {reason}");
                    assert!(reason.contains(why), "{bad}: {reason}");
                }
                other => panic!("{bad}: {other:?}"),
            }
        }
        let vtt = |timing: &str| {
            Document::parse(
                format!("WEBVTT\n\n{timing}\nHello.\n"),
                Some(Format::WebVtt),
            )
        };
        assert!(vtt("00:01.000 --> 00:04.000 align:start").is_ok());
        assert!(vtt("01:00:01.000 --> 01:00:04.000").is_ok());
        assert!(vtt("00:01,000 --> 00:04,000").is_err());
        assert!(vtt("00:04.000 --> 00:01.000").is_err());
    }

    #[test]
    fn srt_keeps_numbers_timings_and_labels() {
        let srt = "1\r\n00:00:01,000 --> 00:00:03,500\r\nALICE: We do not know.\r\n\r\n2\r\n00:00:04,000 --> 00:00:06,000\r\n- Okay, uh, fine.\r\n";
        let doc = Document::parse(srt.to_string(), None).unwrap();
        assert_eq!(doc.format, Format::Srt);
        assert_eq!(doc.text(), "We do not know.\nOkay, uh, fine.");
        assert_eq!(
            doc.with_text("We don't know.\nOK, fine."),
            srt.replace("do not", "don't").replace("Okay, uh,", "OK,")
        );
    }

    #[test]
    fn webvtt_skips_header_notes_and_settings() {
        let vtt = "WEBVTT - call\n\nNOTE reviewed\n\nc1\n00:01.000 --> 00:04.000 align:start\n<v Bob>I am here.</v>\n";
        let doc = Document::parse(vtt.to_string(), None).unwrap();
        assert_eq!(doc.format, Format::WebVtt);
        assert_eq!(doc.text(), "<v Bob>I am here.</v>");
    }

    #[test]
    fn markdown_and_plain_labels() {
        let md = "# Board call\n\n**Chair:** Let us begin.\n\n```\ncode here\n```\n- [00:01:02] Dr. Smith: It is fine.\n";
        let doc = Document::parse(md.to_string(), Some(Format::Markdown)).unwrap();
        assert_eq!(doc.text(), "Board call\nLet us begin.\nIt is fine.");
    }

    #[test]
    fn bad_inputs() {
        assert_eq!(
            Document::parse(" \n".into(), None).unwrap_err(),
            DocumentError::Empty
        );
        assert!(matches!(
            Document::parse("abc\u{0}def".into(), None),
            Err(DocumentError::Binary(3))
        ));
        assert!(matches!(
            Document::parse("1\nno timing\n".into(), Some(Format::Srt)),
            Err(DocumentError::Malformed { .. })
        ));
    }
}
