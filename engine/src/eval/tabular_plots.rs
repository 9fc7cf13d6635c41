//! Plots of table models: feature importance as horizontal bars, and predicted against actual
//! values for a regressor (with the diagonal a perfect model would lie on).

use crate::error::{Error, Result};
use plotters::prelude::*;
use std::path::Path;

fn plot_err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::io("drawing plot", path, std::io::Error::other(e.to_string()))
}

/// Points drawn at most in a scatter plot (a sample is drawn beyond this).
const MAX_POINTS: usize = 5_000;

const BAR: RGBColor = RGBColor(31, 119, 180);

fn register_font() {
    // The same embedded font as the other plots; registering twice is harmless.
    let _ = plotters::style::register_font(
        "sans-serif",
        FontStyle::Normal,
        epaint_default_fonts::UBUNTU_LIGHT,
    );
}

/// Horizontal bars of `importance` (name, share), largest first, at most 20.
pub fn feature_importance(path: &Path, title: &str, importance: &[(String, f64)]) -> Result<()> {
    register_font();
    let mut items: Vec<&(String, f64)> = importance.iter().collect();
    items.sort_by(|a, b| b.1.total_cmp(&a.1));
    items.truncate(20);
    let n = items.len().max(1);
    let max = items.iter().map(|i| i.1).fold(0.0f64, f64::max).max(1e-9);
    let tmp = crate::fsutil::temp_sibling(path).with_extension("png");
    {
        let height = (90 + 28 * n) as u32;
        let root = BitMapBackend::new(&tmp, (800, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| plot_err(path, e))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 24))
            .margin(16)
            .x_label_area_size(36)
            .y_label_area_size(200)
            .build_cartesian_2d(0f64..max * 1.05, (0..n).into_segmented())
            .map_err(|e| plot_err(path, e))?;
        let names: Vec<String> = items.iter().map(|i| i.0.clone()).collect();
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(n)
            .y_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) => names
                    .get(n.saturating_sub(1 + *i))
                    .map(|s| s.chars().take(28).collect())
                    .unwrap_or_default(),
                _ => String::new(),
            })
            .x_desc("share of total split gain")
            .label_style(("sans-serif", 15))
            .draw()
            .map_err(|e| plot_err(path, e))?;
        chart
            .draw_series(items.iter().enumerate().map(|(i, item)| {
                let y = n - 1 - i;
                Rectangle::new(
                    [
                        (0.0, SegmentValue::Exact(y)),
                        (item.1, SegmentValue::Exact(y + 1)),
                    ],
                    BAR.filled(),
                )
            }))
            .map_err(|e| plot_err(path, e))?;
        root.present().map_err(|e| plot_err(path, e))?;
    }
    std::fs::rename(&tmp, path).map_err(|e| Error::io("writing plot", path, e))
}

/// Predicted against actual values (a sample of at most 5,000 points) with the diagonal.
pub fn predicted_vs_actual(
    path: &Path,
    title: &str,
    target: &str,
    actual: &[f64],
    predicted: &[f64],
) -> Result<()> {
    register_font();
    let n = actual.len().min(predicted.len());
    let step = n.div_ceil(MAX_POINTS).max(1);
    let points: Vec<(f64, f64)> = (0..n)
        .step_by(step)
        .map(|i| (actual[i], predicted[i]))
        .filter(|(a, p)| a.is_finite() && p.is_finite())
        .collect();
    let (lo, hi) = points
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), (a, p)| {
            (lo.min(*a).min(*p), hi.max(*a).max(*p))
        });
    let (lo, hi) = if lo.is_finite() && hi > lo {
        (lo, hi)
    } else {
        (0.0, 1.0)
    };
    let pad = (hi - lo) * 0.04;
    let (lo, hi) = (lo - pad, hi + pad);
    let tmp = crate::fsutil::temp_sibling(path).with_extension("png");
    {
        let root = BitMapBackend::new(&tmp, (640, 640)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| plot_err(path, e))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 22))
            .margin(16)
            .x_label_area_size(44)
            .y_label_area_size(70)
            .build_cartesian_2d(lo..hi, lo..hi)
            .map_err(|e| plot_err(path, e))?;
        chart
            .configure_mesh()
            .x_desc(format!("actual {target}"))
            .y_desc(format!("predicted {target}"))
            .label_style(("sans-serif", 15))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(|e| plot_err(path, e))?;
        chart
            .draw_series(LineSeries::new(
                [(lo, lo), (hi, hi)],
                RGBColor(160, 160, 160).stroke_width(1),
            ))
            .map_err(|e| plot_err(path, e))?;
        chart
            .draw_series(
                points
                    .iter()
                    .map(|&(a, p)| Circle::new((a, p), 2, BAR.mix(0.5).filled())),
            )
            .map_err(|e| plot_err(path, e))?;
        root.present().map_err(|e| plot_err(path, e))?;
    }
    std::fs::rename(&tmp, path).map_err(|e| Error::io("writing plot", path, e))
}
