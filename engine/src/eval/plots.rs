//! Report plots as PNG (plotters, with an embedded font so no system font is needed): loss and
//! accuracy curves per epoch, and the confusion matrix as a heatmap.

use crate::error::{Error, Result};
use crate::eval::epoch::EpochMetrics;
use crate::eval::metrics::ClassificationReport;
use plotters::prelude::*;
use std::path::Path;
use std::sync::Once;

static FONT: Once = Once::new();

fn ensure_font() {
    FONT.call_once(|| {
        // Registration only fails on a malformed font, and this one is compiled in.
        let _ = plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            epaint_default_fonts::UBUNTU_LIGHT,
        );
    });
}

fn plot_err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::io("drawing plot", path, std::io::Error::other(e.to_string()))
}

const TRAIN: RGBColor = RGBColor(31, 119, 180);
const VALIDATION: RGBColor = RGBColor(255, 127, 14);

/// Draws train (and validation) curves of one metric per epoch.
pub fn curves(
    path: &Path,
    title: &str,
    y_label: &str,
    history: &[EpochMetrics],
    pick: fn(&EpochMetrics) -> (Option<f64>, Option<f64>),
) -> Result<()> {
    ensure_font();
    let train: Vec<(f64, f64)> = history
        .iter()
        .filter_map(|m| pick(m).0.map(|v| (m.epoch as f64, v)))
        .collect();
    let val: Vec<(f64, f64)> = history
        .iter()
        .filter_map(|m| pick(m).1.map(|v| (m.epoch as f64, v)))
        .collect();
    let all = train
        .iter()
        .chain(&val)
        .map(|p| p.1)
        .filter(|v| v.is_finite());
    let (lo, hi) = all.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
        (a.min(v), b.max(v))
    });
    let (lo, hi) = if lo.is_finite() { (lo, hi) } else { (0.0, 1.0) };
    let pad = ((hi - lo) * 0.08).max(1e-3);
    let x_max = history.len().max(2) as f64;
    let tmp = crate::fsutil::temp_sibling(path).with_extension("png");
    {
        let root = BitMapBackend::new(&tmp, (800, 500)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| plot_err(path, e))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 26))
            .margin(16)
            .x_label_area_size(44)
            .y_label_area_size(64)
            .build_cartesian_2d(1f64..x_max, (lo - pad)..(hi + pad))
            .map_err(|e| plot_err(path, e))?;
        chart
            .configure_mesh()
            .x_desc("epoch")
            .y_desc(y_label)
            .label_style(("sans-serif", 15))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(|e| plot_err(path, e))?;
        chart
            .draw_series(LineSeries::new(train, TRAIN.stroke_width(2)))
            .map_err(|e| plot_err(path, e))?
            .label("training")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], TRAIN.stroke_width(2)));
        if !val.is_empty() {
            chart
                .draw_series(LineSeries::new(val, VALIDATION.stroke_width(2)))
                .map_err(|e| plot_err(path, e))?
                .label("validation")
                .legend(|(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], VALIDATION.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .border_style(BLACK)
            .background_style(WHITE.mix(0.9))
            .label_font(("sans-serif", 16))
            .draw()
            .map_err(|e| plot_err(path, e))?;
        root.present().map_err(|e| plot_err(path, e))?;
    }
    std::fs::rename(&tmp, path).map_err(|e| Error::io("writing plot", path, e))
}

/// A classifier's `loss.png` (cross-entropy) and `accuracy.png` curves in `dir`, train against
/// validation per epoch.
pub fn classifier_curves(dir: &Path, history: &[EpochMetrics]) -> Result<()> {
    curves(
        &dir.join("loss.png"),
        "Loss",
        "cross-entropy",
        history,
        |m| (Some(m.train_loss), m.validation_loss),
    )?;
    curves(
        &dir.join("accuracy.png"),
        "Accuracy",
        "accuracy",
        history,
        |m| (m.train_accuracy, m.validation_accuracy),
    )
}

/// `confusion_matrix_{name}.png` in `dir` for the evaluation report `name` (validation, test…).
pub fn report_confusion_matrix(dir: &Path, name: &str, r: &ClassificationReport) -> Result<()> {
    confusion_matrix(
        &dir.join(format!("confusion_matrix_{name}.png")),
        &format!(
            "Confusion matrix ({name}, accuracy {:.1}%)",
            r.accuracy * 100.0
        ),
        &r.labels,
        &r.confusion_matrix,
    )
}

/// Draws the confusion matrix (rows: true class, columns: predicted), each cell shaded by its
/// share of the row and labelled with its count.
pub fn confusion_matrix(
    path: &Path,
    title: &str,
    labels: &[String],
    matrix: &[Vec<usize>],
) -> Result<()> {
    ensure_font();
    let k = labels.len().max(1);
    let cell = (560 / k).clamp(18, 80) as i32;
    let label_w = 150;
    let size = (
        label_w + cell * k as i32 + 40,
        90 + cell * k as i32 + label_w,
    );
    let tmp = crate::fsutil::temp_sibling(path).with_extension("png");
    {
        let root = BitMapBackend::new(&tmp, (size.0 as u32, size.1 as u32)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| plot_err(path, e))?;
        let font = |px: i32| ("sans-serif", px).into_font();
        root.draw(&Text::new(title.to_string(), (label_w, 14), font(24)))
            .map_err(|e| plot_err(path, e))?;
        root.draw(&Text::new(
            "predicted →".to_string(),
            (label_w, 50),
            font(15),
        ))
        .map_err(|e| plot_err(path, e))?;
        let top = 80;
        let text_px = (cell / 3).clamp(9, 16);
        for (r, row) in matrix.iter().enumerate().take(k) {
            let total: usize = row.iter().sum::<usize>().max(1);
            for (c, &count) in row.iter().enumerate().take(k) {
                let share = count as f64 / total as f64;
                let x0 = label_w + c as i32 * cell;
                let y0 = top + r as i32 * cell;
                let shade = (255.0 * (1.0 - share * 0.85)) as u8;
                let color = if r == c {
                    RGBColor(shade, 255 - (255 - shade) / 3, shade)
                } else {
                    RGBColor(255, shade, shade)
                };
                root.draw(&Rectangle::new(
                    [(x0, y0), (x0 + cell, y0 + cell)],
                    color.filled(),
                ))
                .map_err(|e| plot_err(path, e))?;
                root.draw(&Rectangle::new(
                    [(x0, y0), (x0 + cell, y0 + cell)],
                    RGBColor(220, 220, 220),
                ))
                .map_err(|e| plot_err(path, e))?;
                if count > 0 {
                    let style =
                        font(text_px)
                            .color(&BLACK)
                            .pos(plotters::style::text_anchor::Pos::new(
                                plotters::style::text_anchor::HPos::Center,
                                plotters::style::text_anchor::VPos::Center,
                            ));
                    root.draw(&Text::new(
                        count.to_string(),
                        (x0 + cell / 2, y0 + cell / 2),
                        style,
                    ))
                    .map_err(|e| plot_err(path, e))?;
                }
            }
            let name = short(&labels[r]);
            root.draw(&Text::new(
                name,
                (6, top + r as i32 * cell + cell / 2 - text_px / 2),
                font(text_px),
            ))
            .map_err(|e| plot_err(path, e))?;
        }
        for (c, label) in labels.iter().enumerate() {
            let style = font(text_px).transform(FontTransform::Rotate90);
            let x = label_w + c as i32 * cell + cell / 2 + text_px / 2;
            root.draw(&Text::new(
                short(label),
                (x, top + k as i32 * cell + 6),
                style,
            ))
            .map_err(|e| plot_err(path, e))?;
        }
        root.present().map_err(|e| plot_err(path, e))?;
    }
    std::fs::rename(&tmp, path).map_err(|e| Error::io("writing plot", path, e))
}

fn short(label: &str) -> String {
    if label.chars().count() > 18 {
        label.chars().take(17).collect::<String>() + "…"
    } else {
        label.to_string()
    }
}
