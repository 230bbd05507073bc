//! The audio probe and decode front (WAV, FLAC, MP3, Ogg, MP4 and the rest
//! symphonia and libopus read; the ffmpeg fallback is kept out): any file
//! decodes or gives an error, never a panic, a hang or non-finite samples.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: earmark_fuzz_targets::audio_front_init(),
    |data: &[u8]| earmark_fuzz_targets::audio_front(data)
);
