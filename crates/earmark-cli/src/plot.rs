//! The tamper map as a PNG: the leak's timeline against the master's, with
//! insertions and cuts marked.

use std::path::Path;

use earmark::Registration;
use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::exit::Failure;

/// DejaVu Sans Mono (licence in `assets/DejaVuSansMono.LICENSE`), bundled so
/// that plots do not depend on the fonts a machine happens to have.
const FONT: &[u8] = include_bytes!("../assets/DejaVuSansMono.ttf");

/// Plot size, pixels.
const SIZE: (u32, u32) = (1100, 420);

/// Draws `registration` as a PNG into `file`, which the caller created
/// exclusively ([`earmark::Home::create_output`]); `path` names it in
/// messages, and is removed again if drawing fails.
pub fn tamper_map(
    file: std::fs::File,
    path: &Path,
    registration: &Registration,
) -> Result<(), Failure> {
    let drawn = draw(registration).and_then(|pixels| encode_png(file, &pixels));
    drawn.map_err(|e| {
        let _ = std::fs::remove_file(path);
        Failure::write(format!(
            "cannot draw the tamper map to {}: {e}",
            path.display()
        ))
    })
}

/// Writes RGB `pixels` of [`SIZE`] as a PNG.
fn encode_png(file: std::fs::File, pixels: &[u8]) -> Result<(), Box<dyn std::error::Error>> {
    use image::ImageEncoder;
    let mut out = std::io::BufWriter::new(file);
    image::codecs::png::PngEncoder::new(&mut out).write_image(
        pixels,
        SIZE.0,
        SIZE.1,
        image::ColorType::Rgb8,
    )?;
    std::io::Write::flush(&mut out)?;
    out.get_ref().sync_all()?;
    Ok(())
}

/// Renders `r` to RGB pixels in memory.
fn draw(r: &Registration) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    plotters::style::register_font("sans-serif", FontStyle::Normal, FONT)
        .map_err(|_| "the bundled font does not parse")?;
    let mut pixels = vec![0u8; SIZE.0 as usize * SIZE.1 as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, SIZE).into_drawing_area();
        root.fill(&WHITE)?;
        chart(&root, r)?;
        root.present()?;
    }
    Ok(pixels)
}

type Area<'a> = DrawingArea<BitMapBackend<'a>, plotters::coord::Shift>;

/// The tamper map's chart on `root`.
fn chart(root: &Area<'_>, r: &Registration) -> Result<(), Box<dyn std::error::Error>> {
    let master_lo = r
        .stretches
        .iter()
        .map(|s| s.master_start_s)
        .chain(r.removed.iter().map(|e| e.master_start_s))
        .fold(f64::INFINITY, f64::min);
    let master_hi = r
        .stretches
        .iter()
        .map(|s| s.master_end_s)
        .chain(r.removed.iter().map(|e| e.master_end_s))
        .fold(f64::NEG_INFINITY, f64::max);
    let (master_lo, master_hi) = if master_lo < master_hi {
        (master_lo - 1.0, master_hi + 1.0)
    } else {
        (0.0, 1.0)
    };
    let mut chart = ChartBuilder::on(root)
        .caption(
            format!(
                "tamper map: {:.1} of {:.1} s match the master (time scale {:.3}, pitch {:+.0} cents)",
                r.matched_s(),
                r.leak_s,
                r.time_scale,
                r.pitch_cents().round() + 0.0
            ),
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..r.leak_s, master_lo..master_hi)?;
    chart
        .configure_mesh()
        .x_desc("leak time (s)")
        .y_desc("master time (s)")
        .label_style(("sans-serif", 14))
        .draw()?;
    for e in &r.inserted {
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(e.leak_start_s, master_lo), (e.leak_end_s, master_hi)],
                RGBColor(230, 60, 60).mix(0.3).filled(),
            )))?
            .label("inserted (not in the master)")
            .legend(|(x, y)| {
                Rectangle::new(
                    [(x, y - 5), (x + 15, y + 5)],
                    RGBColor(230, 60, 60).mix(0.3).filled(),
                )
            });
    }
    for e in &r.removed {
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![
                    (e.leak_start_s, e.master_start_s),
                    (e.leak_start_s, e.master_end_s),
                ],
                RGBColor(240, 150, 0).stroke_width(5),
            )))?
            .label("removed from the master")
            .legend(|(x, y)| {
                PathElement::new(
                    vec![(x, y), (x + 15, y)],
                    RGBColor(240, 150, 0).stroke_width(5),
                )
            });
    }
    for (k, s) in r.stretches.iter().enumerate() {
        let mut points = vec![(s.leak_start_s, s.master_start_s)];
        points.extend(
            s.anchors
                .iter()
                .copied()
                .filter(|a| a.0 > s.leak_start_s && a.0 < s.leak_end_s),
        );
        points.push((s.leak_end_s, s.master_end_s));
        let series = chart.draw_series(LineSeries::new(points, BLUE.stroke_width(3)))?;
        if k == 0 {
            series
                .label("plays the master")
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 15, y)], BLUE.stroke_width(3)));
        }
    }
    chart
        .configure_series_labels()
        .label_font(("sans-serif", 14))
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()?;
    Ok(())
}
