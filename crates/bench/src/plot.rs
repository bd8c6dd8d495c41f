//! The plot of `BENCHMARKS.md`: p50 and p99 intake latency against offered request rate, one
//! colour per system, both axes logarithmic, with the 5 ms p99 target drawn across.
//!
//! Text is drawn with a font compiled into the binary (DejaVu Sans, see
//! `assets/DejaVuSans.LICENSE`), so the plot needs no fontconfig or system fonts.

use std::path::Path;

use anyhow::{bail, Context};
use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};

use crate::report::Curve;

const FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
const FAMILY: &str = "sans-serif";
/// One colour per system, in the order they ran: a, b, c, then the naive peer's n, m.
const COLOURS: [RGBColor; 5] = [
    RGBColor(90, 90, 90),
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
];

/// Draws `curves` into a PNG at `path`.
pub fn draw(curves: &[Curve], connections: usize, path: &Path) -> anyhow::Result<()> {
    let points = curves.iter().flat_map(|c| c.points.iter());
    let (mut x_min, mut x_max, mut y_min, mut y_max) = (f64::MAX, 0.0_f64, f64::MAX, 0.0_f64);
    for p in points {
        x_min = x_min.min(p.offered_rate);
        x_max = x_max.max(p.offered_rate);
        y_min = y_min.min(p.p50_ms);
        y_max = y_max.max(p.p99_ms);
    }
    if x_max <= 0.0 {
        bail!("no latency curve to plot");
    }
    let x_range = (x_min * 0.7)..(x_max * 1.4);
    let y_range = (y_min.min(5.0) * 0.6).max(0.001)..(y_max.max(5.0) * 1.6);

    // Registering twice (a second plot in one process) is harmless; only the first counts.
    let _ = register_font(FAMILY, FontStyle::Normal, FONT);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let root = BitMapBackend::new(path, (1200, 720)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_error)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("Intake latency against offered rate (open loop, {connections} connections)"),
            (FAMILY, 26),
        )
        .margin(20)
        .x_label_area_size(60)
        .y_label_area_size(80)
        .build_cartesian_2d(x_range.clone().log_scale(), y_range.log_scale())
        .map_err(plot_error)?;
    chart
        .configure_mesh()
        .x_desc("offered rate (requests per second)")
        .y_desc("latency from intended send time (ms)")
        .label_style((FAMILY, 16))
        .axis_desc_style((FAMILY, 18))
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y}"))
        .draw()
        .map_err(plot_error)?;

    chart
        .draw_series(LineSeries::new(
            [(x_range.start, 5.0), (x_range.end, 5.0)],
            RGBColor(200, 0, 0).stroke_width(1),
        ))
        .map_err(plot_error)?
        .label("5 ms p99 target")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 24, y)], RGBColor(200, 0, 0)));

    for (curve, colour) in curves.iter().zip(COLOURS) {
        let p50: Vec<(f64, f64)> = curve
            .points
            .iter()
            .map(|p| (p.offered_rate, p.p50_ms))
            .collect();
        let p99: Vec<(f64, f64)> = curve
            .points
            .iter()
            .map(|p| (p.offered_rate, p.p99_ms))
            .collect();
        chart
            .draw_series(LineSeries::new(p50.clone(), colour.stroke_width(3)))
            .map_err(plot_error)?
            .label(format!("{} p50", curve.name))
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 24, y)], colour.stroke_width(3)));
        chart
            .draw_series(p50.iter().map(|&xy| Circle::new(xy, 5, colour.filled())))
            .map_err(plot_error)?;
        chart
            .draw_series(LineSeries::new(
                p99.clone(),
                colour.mix(0.6).stroke_width(1),
            ))
            .map_err(plot_error)?
            .label(format!("{} p99", curve.name))
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 24, y)], colour.mix(0.6)));
        chart
            .draw_series(
                p99.iter()
                    .map(|&xy| TriangleMarker::new(xy, 6, colour.mix(0.6).filled())),
            )
            .map_err(plot_error)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .label_font((FAMILY, 16))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(plot_error)?;
    root.present()
        .map_err(plot_error)
        .with_context(|| format!("cannot write {}", path.display()))
}

fn plot_error<E: std::fmt::Display>(e: E) -> anyhow::Error {
    anyhow::anyhow!("plotting: {e}")
}
