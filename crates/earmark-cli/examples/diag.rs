//! Developer diagnostic for tuning the channel: reads a marked (and possibly
//! attacked) file at block offset 0 and prints how many cells agree with the
//! known codeword, the per-cell evidence statistics and the raw coded bit
//! error rate before Viterbi.
//!
//! `cargo run --example diag -- FILE KEYFILE PAYLOADHEX`
use earmark_engine::features::{frame_cells, BandLevels};
use earmark_engine::layout::{
    Layout, Role, ANALYSIS_RATE, BLOCK_COLUMNS, FRAMES_PER_CELL, FRAME_HOP,
};
use earmark_engine::payload;
use earmark_keys::SecretKey;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        eprintln!("usage: diag FILE KEYFILE PAYLOADHEX");
        std::process::exit(2);
    }
    let audio = earmark_audio_io::read(std::path::Path::new(&args[1])).expect("readable audio");
    let key = SecretKey::from_file_text(&std::fs::read_to_string(&args[2]).expect("key file"))
        .expect("valid key");
    let payload = u64::from_str_radix(&args[3], 16).expect("hex payload");
    let analysis = earmark_dsp::resample(
        &earmark_dsp::downmix(&audio.channels),
        audio.rate,
        ANALYSIS_RATE,
    );
    let cells = frame_cells(&BandLevels::compute(&analysis, FRAME_HOP, 1.0));
    let codeword = payload::codeword(&key, payload);
    let layout = Layout::new(&key, codeword.len());
    let mut soft = vec![0.0f32; codeword.len()];
    let (mut n, mut agree, mut sum, mut sum_sq) = (0usize, 0usize, 0.0f32, 0.0f32);
    let mut band_agree = [(0usize, 0usize); earmark_engine::layout::BANDS];
    for (column, row) in cells.iter().step_by(FRAMES_PER_CELL).enumerate() {
        for (band, &(value, weight)) in row.iter().enumerate() {
            if weight == 0.0 {
                continue;
            }
            let cell = layout.cell(column as i64, band);
            let sign = match cell.role {
                Role::Pilot => 1.0,
                Role::Data(j) if codeword[j as usize] => 1.0,
                Role::Data(_) => -1.0,
                Role::Index(q) => {
                    if layout.index_bit(column as i64 / BLOCK_COLUMNS as i64, q) {
                        1.0
                    } else {
                        -1.0
                    }
                }
                // Unfingerprinted copies carry zeros there.
                Role::Fingerprint(_) => -1.0,
            };
            if let Role::Data(j) = cell.role {
                soft[j as usize] += cell.chip * value;
            }
            let evidence = cell.chip * sign * value;
            n += 1;
            agree += usize::from(evidence > 0.0);
            band_agree[band].0 += usize::from(evidence > 0.0);
            band_agree[band].1 += 1;
            sum += evidence;
            sum_sq += evidence * evidence;
        }
    }
    let mean = sum / n.max(1) as f32;
    let sd = (sum_sq / n.max(1) as f32 - mean * mean).max(0.0).sqrt();
    let errors = soft
        .iter()
        .zip(&codeword)
        .filter(|(s, &b)| (**s > 0.0) != b)
        .count();
    let per_band: Vec<String> = band_agree
        .iter()
        .map(|&(a, t)| format!("{:.2}", a as f32 / t.max(1) as f32))
        .collect();
    println!("agreement per band (lowest first): {}", per_band.join(" "));
    println!(
        "active cells {n} ({:.0}/s), agree {:.3}, evidence mean {mean:.2} dB sd {sd:.2} dB, \
         coded BER {errors}/{}, decoded {:?}",
        n as f64 / audio.duration_s(),
        agree as f32 / n.max(1) as f32,
        codeword.len(),
        payload::decode(&key, &soft).map(|p| format!("{p:016x}"))
    );
}
