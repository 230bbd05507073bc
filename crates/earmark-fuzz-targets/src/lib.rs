//! The bodies of the fuzz targets, one function per parser that reads input
//! earmark did not write. Each takes arbitrary bytes and must return: a
//! value or an error, never a panic, an abort or a hang.
//!
//! cargo-fuzz (`fuzz/`, `scripts/fuzz.sh`) calls them under libFuzzer; the
//! replay test (`tests/replay.rs`) calls them on every committed seed in
//! `fuzz/corpus/` and every crash fixture, so a regression shows in seconds
//! without a fuzzing build.
//!
//! One target is not a parser: `ledger_edits` edits a small ledger as an
//! attacker with the database file would, and asks for a verdict.
//!
//! Owns: what each target asserts about its parser. Must not touch: any
//! product rule (the parsers are called through their public API only).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

mod ledger;
pub use ledger::ledger_edits;

/// One fuzz target: its name (the folder of its seeds in `fuzz/corpus/`)
/// and its body.
pub struct Target {
    /// The target's name, as cargo-fuzz lists it.
    pub name: &'static str,
    /// Reads one input; panics only on a finding.
    pub run: fn(&[u8]),
}

/// Every target, in the order `scripts/fuzz.sh` lists them.
pub const TARGETS: &[Target] = &[
    Target {
        name: "attack_chain",
        run: attack_chain,
    },
    Target {
        name: "audio_front",
        run: audio_front,
    },
    Target {
        name: "key_file",
        run: key_file,
    },
    Target {
        name: "landmark_index",
        run: landmark_index,
    },
    Target {
        name: "ledger_edits",
        run: ledger_edits,
    },
    Target {
        name: "recipient_csv",
        run: recipient_csv,
    },
    Target {
        name: "slot_rules",
        run: slot_rules,
    },
    Target {
        name: "transcript",
        run: transcript,
    },
];

/// The bench's attack-chain parser (`--attacks`): any text gives chains or
/// an error.
pub fn attack_chain(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = earmark_bench::attack::parse_list(text);
    }
}

/// Prepares this process for [`audio_front`]; call once, first. ffmpeg's
/// own decoders are not what is fuzzed: with an empty `PATH` the fallback
/// to it fails at once, as on a machine without it. (A decoder's panic is
/// caught by the reader, kept quiet by it, and becomes an error: what the
/// target checks.)
pub fn audio_front_init() {
    std::env::set_var("PATH", "");
}

/// A scratch file of this process's own, in memory-backed `/dev/shm` when
/// there is one: the audio front reads paths.
fn audio_scratch() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let shm = Path::new("/dev/shm");
        let dir = if shm.is_dir() {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        dir.join(format!("earmark-fuzz-audio-{}", std::process::id()))
    })
}

/// The audio probe and decode front (WAV, FLAC, MP3, Ogg, MP4 and the rest
/// symphonia and libopus read): any file decodes, chunk by chunk through
/// the streaming reader every command uses, or gives an error; decoded
/// samples are finite. Run [`audio_front_init`] first.
pub fn audio_front(data: &[u8]) {
    let path = audio_scratch();
    std::fs::write(path, data).expect("scratch file");
    if let Ok(mut reader) = earmark_audio_io::AudioReader::open(path) {
        assert!(reader.rate() > 0 && reader.channels() > 0);
        while let Ok(Some(chunk)) = reader.next_chunk() {
            assert!(chunk.iter().flatten().all(|s| s.is_finite()));
        }
    }
}

/// The key file parser (`earmark keygen`'s files, the home's `master.key`):
/// any text gives a key or an error, and a key read writes back as a key
/// file that reads the same.
pub fn key_file(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(key) = earmark_keys::SecretKey::from_file_text(text) {
            let again = earmark_keys::SecretKey::from_file_text(&key.to_file_text())
                .expect("a written key file reads back");
            assert_eq!(again.to_file_text(), key.to_file_text());
        }
    }
}

/// The landmark index loader (`landmarks.idx`): any bytes give an index or
/// `None`; a loaded index writes back to the same bytes and answers.
pub fn landmark_index(data: &[u8]) {
    if let Some(index) = earmark_align::landmarks::LandmarkIndex::from_bytes(data) {
        assert_eq!(index.to_bytes(), data);
        let _ = index.works();
    }
}

/// The recipient CSV (`earmark recipient import`): any bytes give rows or
/// one error with its line; every name read is already normalised.
pub fn recipient_csv(data: &[u8]) {
    let path = Path::new("people.csv");
    if let Ok(rows) = earmark_ledger::read_recipient_csv(data, path) {
        for row in rows {
            assert_eq!(
                earmark_ledger::names::normalise(&row.1).ok().as_deref(),
                Some(row.1.as_str())
            );
        }
    }
}

/// The slot-rules TOML (`--rules`): any text gives a rule set or an error.
pub fn slot_rules(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = earmark_text::RuleSet::from_toml(text);
    }
}

/// Transcript parsing (plain text, Markdown, SRT, WebVTT). The first byte
/// picks the format, or lets the text be sniffed; a parsed document renders
/// its own text back.
pub fn transcript(data: &[u8]) {
    use earmark_text::{Document, Format};
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
}
