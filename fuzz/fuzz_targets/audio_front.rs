//! The audio probe and decode front (WAV, FLAC, MP3, Ogg, MP4 and the rest
//! symphonia and libopus read; the ffmpeg fallback is kept out): any file
//! decodes or gives an error, never a panic, a hang or non-finite samples.
//! The front reads paths, so each input is written to a file of this
//! process's own in memory-backed `/dev/shm` when there is one.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

fn scratch() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let dir = std::path::Path::new("/dev/shm");
        let dir = if dir.is_dir() {
            dir.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        dir.join(format!("earmark-fuzz-audio-{}", std::process::id()))
    })
}

fuzz_target!(
    init: {
        // ffmpeg's own decoders are not what is fuzzed here: with no PATH,
        // the fallback to it fails at once, as on a machine without it.
        std::env::set_var("PATH", "");
        // A decoder's panic is caught by the reader and becomes an error
        // (what this target checks); only other panics are crashes.
        let abort = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !earmark_audio_io::inside_decoder() {
                abort(info);
            }
        }));
    },
    |data: &[u8]| {
    let path = scratch();
    std::fs::write(path, data).expect("scratch file");
    // The streaming reader every command uses, chunk by chunk.
    if let Ok(mut reader) = earmark_audio_io::AudioReader::open(path) {
        assert!(reader.rate() > 0 && reader.channels() > 0);
        while let Ok(Some(chunk)) = reader.next_chunk() {
            assert!(chunk.iter().flatten().all(|s| s.is_finite()));
        }
    }
    }
);
