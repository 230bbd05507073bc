//! How a channel treats the mark, cell by cell: marks the first 5 minutes of
//! the bundled call, takes a 30 s excerpt, sends it through each channel
//! named on the command line (sox/ffmpeg), registers both the clean excerpt
//! and the damaged one against the master, and compares their residuals.
//! `cargo run --release -p earmark-align --example fidelity -- amr475 opus6`

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use earmark_align::{analysis_signal, register};
use earmark_engine::{embed, read_informed, CellReading};
use earmark_keys::SecretKey;

fn run(program: &str, args: &[&str]) {
    let ok = Command::new(program)
        .args(args)
        .status()
        .expect("runs")
        .success();
    assert!(ok, "{program} {args:?}");
}

fn read_cells(master: &[f32], leak: &[f32], key: &SecretKey) -> (Vec<CellReading>, f32) {
    let r = register(master, leak).expect("registers");
    let reading = read_informed(key, master, leak, |t| r.leak_time(t), r.freq_scale, &[]);
    (reading.cells, reading.pilot_z)
}

fn main() {
    let dir = tempfile_dir();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/long/long_call_en-f_it-m_8k.flac");
    let audio = earmark_audio_io::read(&fixture).unwrap();
    let rate = audio.rate as usize;
    let mut channels: Vec<Vec<f32>> = audio
        .channels
        .iter()
        .map(|c| c[..300 * rate].to_vec())
        .collect();
    let master = analysis_signal(&channels, audio.rate);
    let key = SecretKey::from_seed(3);
    embed(
        &mut channels,
        audio.rate,
        &key,
        0x1234_5678_9abc_def0,
        Default::default(),
    )
    .unwrap();
    let start: usize = std::env::var("START")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100);
    let excerpt = earmark_audio_io::Audio {
        channels: channels
            .iter()
            .map(|c| c[start * rate..(start + 30) * rate].to_vec())
            .collect(),
        ..audio.clone()
    };
    let clean_path = dir.join("clean.wav");
    earmark_audio_io::write(&clean_path, &excerpt).unwrap();
    let clean = analysis_signal(&excerpt.channels, excerpt.rate);
    let (clean_cells, clean_z) = read_cells(&master, &clean, &key);
    let truth: HashMap<(u32, u8), f32> = clean_cells
        .iter()
        .map(|c| ((c.column, c.band), c.residual_db))
        .collect();
    println!("clean: {} cells, pilot z {clean_z:.1}", clean_cells.len());
    let c = clean_path.to_str().unwrap();
    for channel in std::env::args().skip(1) {
        let out = dir.join(format!("{channel}.wav"));
        let o = out.to_str().unwrap();
        let tmp = dir.join("tmp");
        let t = tmp.to_str().unwrap();
        match channel.as_str() {
            "amr475" | "amr122" => {
                let mode = if channel == "amr475" { "0" } else { "7" };
                run("sox", &[c, "-t", "amr-nb", "-C", mode, &format!("{t}.amr")]);
                run("sox", &[&format!("{t}.amr"), o]);
            }
            "opus6" | "opus8" | "opus12" => {
                let (rate, ogg) = (format!("{}k", &channel[4..]), format!("{t}.ogg"));
                let quiet = ["-loglevel", "error", "-y", "-i"];
                let encode = [
                    "-c:a",
                    "libopus",
                    "-b:a",
                    &rate,
                    "-application",
                    "voip",
                    &ogg,
                ];
                run("ffmpeg", &[&quiet[..], &[c], &encode[..]].concat());
                run(
                    "ffmpeg",
                    &[&quiet[..], &[ogg.as_str(), "-ar", "8000", o]].concat(),
                );
            }
            "gsm" => {
                run("sox", &[c, "-t", "gsm", &format!("{t}.gsm")]);
                run("sox", &[&format!("{t}.gsm"), "-e", "signed", "-b", "16", o]);
            }
            "reverb" => run("sox", &[c, o, "reverb", "40", "50", "60"]),
            other => panic!("unknown channel {other}"),
        }
        let damaged = earmark_audio_io::read(&out).unwrap();
        let leak = analysis_signal(&damaged.channels, damaged.rate);
        let (cells, z) = read_cells(&master, &leak, &key);
        let (mut xy, mut xx, mut yy, mut n) = (0.0f64, 0.0f64, 0.0f64, 0usize);
        let mut per_band = vec![(0.0f64, 0.0f64, 0.0f64); 24];
        for cell in &cells {
            if let Some(&x) = truth.get(&(cell.column, cell.band)) {
                let y = cell.residual_db as f64;
                xy += x as f64 * y;
                xx += (x as f64).powi(2);
                yy += y * y;
                n += 1;
                let b = &mut per_band[cell.band as usize];
                b.0 += x as f64 * y;
                b.1 += (x as f64).powi(2);
                b.2 += y * y;
            }
        }
        let gain = xy / xx;
        let noise = (yy - gain * xy) / n as f64;
        let corr = xy / (xx * yy).sqrt();
        println!(
            "{channel}: {} cells ({n} shared), pilot z {z:.1}; mark gain {gain:.2}, noise rms {:.2} dB, mark rms {:.2} dB, correlation {corr:.2}",
            cells.len(),
            noise.sqrt(),
            (xx / n as f64).sqrt()
        );
        let bands: Vec<String> = per_band
            .iter()
            .map(|b| format!("{:.2}", b.0 / (b.1 * b.2).sqrt()))
            .collect();
        println!("  per band correlation: {}", bands.join(" "));
    }
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("earmark-fidelity-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
