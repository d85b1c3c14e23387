//! SVG figures of a bench run, drawn with plotters (SVG backend, no fonts needed).

use anyhow::{Result, anyhow};
use plotters::prelude::*;
use std::path::Path;

const COLORS: [RGBColor; 5] = [RGBColor(31, 119, 180), RGBColor(214, 39, 40), RGBColor(44, 160, 44), RGBColor(148, 103, 189), RGBColor(255, 127, 14)];

fn err(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow!("plot: {e}")
}

/// An 800x420 white SVG canvas.
fn canvas(path: &Path) -> Result<DrawingArea<SVGBackend<'_>, plotters::coord::Shift>> {
    let root = SVGBackend::new(path, (800, 420)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    Ok(root)
}

/// Caption, margins and label areas shared by every figure.
fn frame<'a, 'b>(root: &'a DrawingArea<SVGBackend<'b>, plotters::coord::Shift>, title: &str, y_label_area: u32) -> ChartBuilder<'a, 'b, SVGBackend<'b>> {
    let mut b = ChartBuilder::on(root);
    b.caption(title, ("sans-serif", 20)).margin(15).x_label_area_size(45).y_label_area_size(y_label_area);
    b
}

/// Overlaid latency histograms on a log-scale axis, each series as its share of requests
/// per bin (so series of different sizes compare).
/// `series`: (name, measurements taken, stored values).
pub fn histogram(path: &Path, title: &str, unit: &str, series: &[(&str, usize, &[f64])]) -> Result<()> {
    let all: Vec<f64> = series.iter().flat_map(|(_, _, v)| v.iter().copied()).filter(|x| *x > 0.0 && x.is_finite()).collect();
    if all.is_empty() {
        return Err(anyhow!("plot {title}: no positive samples"));
    }
    let lo = all.iter().copied().fold(f64::INFINITY, f64::min) * 0.9;
    let hi = all.iter().copied().fold(0.0, f64::max) * 1.1;
    const BINS: usize = 40;
    let edge = |k: usize| lo * (hi / lo).powf(k as f64 / BINS as f64);
    let shares: Vec<Vec<f64>> = series
        .iter()
        .map(|(_, _, v)| {
            let mut counts = vec![0usize; BINS];
            for x in v.iter().filter(|x| **x > 0.0) {
                let k = ((x / lo).ln() / (hi / lo).ln() * BINS as f64).floor() as usize;
                counts[k.min(BINS - 1)] += 1;
            }
            counts.into_iter().map(|c| c as f64 / v.len().max(1) as f64).collect()
        })
        .collect();
    let ymax = shares.iter().flatten().copied().fold(0.0, f64::max).max(0.01) * 1.1;
    let root = canvas(path)?;
    let mut chart = frame(&root, title, 60)
        .build_cartesian_2d(lo.log10()..hi.log10(), 0f64..ymax)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc(format!("latency ({unit}, log scale)"))
        .y_desc("share of requests")
        .x_labels(8)
        .x_label_formatter(&|v| short(10f64.powf(*v)))
        .draw()
        .map_err(err)?;
    for (i, ((name, n, _), share)) in series.iter().zip(&shares).enumerate() {
        let color = COLORS[i % COLORS.len()];
        chart
            .draw_series((0..BINS).map(|k| Rectangle::new([(edge(k).log10(), 0.0), (edge(k + 1).log10(), share[k])], color.mix(0.45).filled())))
            .map_err(err)?
            .label(format!("{name} (n = {n})"))
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 15, y + 5)], color.mix(0.45).filled()));
    }
    chart.configure_series_labels().background_style(WHITE.mix(0.85)).border_style(BLACK).position(SeriesLabelPosition::UpperRight).draw().map_err(err)?;
    root.present().map_err(err)?;
    Ok(())
}

/// A tick label: three significant digits, no trailing zeros.
pub(super) fn short(v: f64) -> String {
    let digits = if v == 0.0 { 0 } else { (2 - v.abs().log10().floor() as i64).max(0) as usize };
    let s = format!("{v:.digits$}");
    if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_owned() } else { s }
}

/// Lines with a dot at each point, on a log-scale y axis (series may differ by orders of
/// magnitude).
pub fn lines(path: &Path, title: &str, x_desc: &str, y_desc: &str, series: &[(String, Vec<(f64, f64)>)]) -> Result<()> {
    let pts = || series.iter().flat_map(|(_, p)| p.iter().copied());
    if pts().next().is_none() {
        return Err(anyhow!("plot {title}: no points"));
    }
    if pts().any(|p| p.1 <= 0.0) {
        return Err(anyhow!("plot {title}: y values must be positive (log scale)"));
    }
    let xmax = pts().map(|p| p.0).fold(0.0, f64::max) * 1.05;
    let ymin = pts().map(|p| p.1).fold(f64::INFINITY, f64::min).log10() - 0.1;
    let ymax = pts().map(|p| p.1).fold(0.0, f64::max).log10() + 0.1;
    let log = |(x, y): (f64, f64)| (x, y.log10());
    let root = canvas(path)?;
    let mut chart = frame(&root, title, 70)
        .build_cartesian_2d(0f64..xmax, ymin..ymax)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(format!("{y_desc} (log scale)"))
        .x_label_formatter(&|v| short(*v))
        .y_label_formatter(&|v| short(10f64.powf(*v)))
        .draw()
        .map_err(err)?;
    for (i, (name, p)) in series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        chart
            .draw_series(LineSeries::new(p.iter().copied().map(log), color.stroke_width(2)))
            .map_err(err)?
            .label(name.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
        chart.draw_series(p.iter().map(|xy| Circle::new(log(*xy), 4, color.filled()))).map_err(err)?;
    }
    chart.configure_series_labels().background_style(WHITE.mix(0.85)).border_style(BLACK).position(SeriesLabelPosition::MiddleRight).draw().map_err(err)?;
    root.present().map_err(err)?;
    Ok(())
}
