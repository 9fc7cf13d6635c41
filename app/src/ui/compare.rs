//! The Compare screen: two runs side by side — what each was (template, data, date, status, the
//! model it chose), the headline metrics of each split with the difference, the loss and accuracy
//! curves of both on one plot each (A blue, B orange; train dashed, validation solid), and the two
//! confusion matrices in one class order. What one run has and the other cannot (a regressor's
//! R² beside a classifier's accuracy) is said not to apply.

use crate::command::{Command, Screen};
use crate::compare::{Cell, Comparison, Curves, Side};
use crate::state::{CompareState, State};
use crate::ui::runs::template_title;
use crate::widgets::confusion::{LABEL_WIDTH, confusion_ui_within};
use crate::widgets::metric_plot::{Series, YAxis, metric_plot_ui};
use lathe_engine::train::History;

/// Run A's colour (blue) and run B's (orange), as the Train screen's train and validation.
pub const COLOR_A: egui::Color32 = egui::Color32::from_rgb(66, 133, 244);
pub const COLOR_B: egui::Color32 = egui::Color32::from_rgb(234, 134, 40);

pub fn compare_ui(ui: &mut egui::Ui, state: &State, commands: &mut Vec<Command>) {
    ui.horizontal(|ui| {
        ui.heading("Compare runs");
        ui.add_space(12.0);
        if ui.button("Back to the runs").clicked() {
            commands.push(Command::Show(Screen::Train));
        }
    });
    let comparison = match &state.comparison {
        None => {
            ui.label("Tick two runs in the runs list on the Train screen, then Compare.");
            return;
        }
        Some(CompareState::Loading) => {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label("Reading the two runs…");
            });
            return;
        }
        Some(CompareState::Failed(e)) => {
            ui.colored_label(ui.visuals().error_fg_color, e);
            return;
        }
        Some(CompareState::Ready(c)) => c.as_ref(),
    };
    if !comparison.same_template() {
        ui.colored_label(
            ui.visuals().warn_fg_color,
            format!(
                "These runs are of different templates ({} and {}): they are compared on what they share; what one of them does not measure is marked \u{201c}does not apply\u{201d}.",
                template_title(state, &comparison.a.summary.template),
                template_title(state, &comparison.b.summary.template)
            ),
        );
    }
    ui.add_space(6.0);
    about_ui(ui, state, comparison);
    ui.add_space(12.0);
    metrics_ui(ui, comparison);
    ui.add_space(12.0);
    curves_ui(ui, comparison);
    ui.add_space(12.0);
    confusion_pair_ui(ui, comparison);
}

/// A section's title, as the Evaluate screen's.
fn section_ui(ui: &mut egui::Ui, title: &str) {
    ui.label(egui::RichText::new(title).strong().size(16.0));
}

/// "A" in run A's colour, then `text`.
fn tag_ui(ui: &mut egui::Ui, tag: &str, color: egui::Color32, text: &str) {
    ui.label(egui::RichText::new(tag).strong().color(color));
    ui.strong(text);
}

/// What each run was: template, data, date, status, the model it chose.
fn about_ui(ui: &mut egui::Ui, state: &State, c: &Comparison) {
    egui::Grid::new("compare_about")
        .num_columns(3)
        .spacing([24.0, 4.0])
        .striped(true)
        .show(ui, |ui| {
            ui.label("");
            for (tag, color, side) in [("A", COLOR_A, &c.a), ("B", COLOR_B, &c.b)] {
                ui.horizontal(|ui| tag_ui(ui, tag, color, &side.name()))
                    .response
                    .on_hover_text(side.dir().display().to_string());
            }
            ui.end_row();
            let row = |ui: &mut egui::Ui, name: &str, text: &dyn Fn(&Side) -> String| {
                ui.label(name);
                ui.label(text(&c.a));
                ui.label(text(&c.b));
                ui.end_row();
            };
            row(ui, "Template", &|s| {
                template_title(state, &s.summary.template)
            });
            row(ui, "Data", &|s| {
                if s.data.is_empty() {
                    "not recorded".into()
                } else {
                    s.data
                        .iter()
                        .map(|(k, v)| format!("{k}: {v}"))
                        .collect::<Vec<_>>()
                        .join("\n")
                }
            });
            row(ui, "Date", &|s| s.summary.date.clone());
            row(ui, "Status", &|s| s.status().text().to_string());
            row(ui, "Model", &|s| {
                if s.model.is_empty() {
                    "not recorded".into()
                } else {
                    s.model
                        .iter()
                        .map(|(k, v)| format!("{k}: {v}"))
                        .collect::<Vec<_>>()
                        .join("\n")
                }
            });
            row(ui, "Epochs run", &|s| match s.curves.epochs {
                0 => "\u{2014}".into(),
                n => n.to_string(),
            });
        });
}

/// The headline metrics: a row per split and metric, A, B, B − A and which is better.
fn metrics_ui(ui: &mut egui::Ui, c: &Comparison) {
    section_ui(ui, "Metrics");
    let rows = c.metric_rows();
    if rows.is_empty() {
        ui.weak("Neither run has an evaluation (report.json) to compare.");
        return;
    }
    let good = egui::Color32::from_rgb(52, 168, 83);
    let bad = ui.visuals().error_fg_color;
    egui::Grid::new("compare_metrics")
        .num_columns(5)
        .spacing([24.0, 4.0])
        .striped(true)
        .show(ui, |ui| {
            ui.strong("Metric");
            ui.label(egui::RichText::new("A").strong().color(COLOR_A));
            ui.label(egui::RichText::new("B").strong().color(COLOR_B));
            ui.strong("Difference (B \u{2212} A)");
            ui.strong("Better");
            ui.end_row();
            for row in &rows {
                ui.label(row.title());
                for cell in [&row.a, &row.b] {
                    match cell {
                        Cell::Value(v) => ui.strong(row.kind.value_text(*v)),
                        Cell::NoSplit => ui.weak(format!("no {} data", row.split)),
                        Cell::DoesNotApply => ui.weak("does not apply"),
                    };
                }
                match (row.a.value(), row.b.value()) {
                    (Some(a), Some(b)) => {
                        let better = row.kind.b_is_better(a, b);
                        let color = match better {
                            Some(true) => good,
                            Some(false) => bad,
                            None => ui.visuals().text_color(),
                        };
                        ui.colored_label(color, row.kind.difference_text(a, b));
                        ui.label(match better {
                            Some(true) => "B",
                            Some(false) => "A",
                            None => "same",
                        });
                    }
                    _ => {
                        ui.weak("\u{2014}");
                        ui.label("");
                    }
                }
                ui.end_row();
            }
        });
}

/// A curve of the comparison (train dashed, validation solid).
fn series(
    name: &'static str,
    curve: &History,
    color: egui::Color32,
    dashed: bool,
) -> Series<'static> {
    Series {
        name,
        points: curve.points().to_vec(),
        color,
        width: if dashed { 1.5 } else { 2.0 },
        in_legend: true,
        dashed,
    }
}

/// A's and B's train and validation curves of one plot.
fn pair(a: (&History, &History), b: (&History, &History)) -> Vec<Series<'static>> {
    vec![
        series("A train", a.0, COLOR_A, true),
        series("A validation", a.1, COLOR_A, false),
        series("B train", b.0, COLOR_B, true),
        series("B validation", b.1, COLOR_B, false),
    ]
}

/// The epochs a run's curves span (at least 1).
fn span(c: &Curves) -> f64 {
    [
        &c.train_loss,
        &c.validation_loss,
        &c.train_accuracy,
        &c.validation_accuracy,
    ]
    .iter()
    .filter_map(|h| h.last().map(|p| p[0]))
    .fold(c.epochs as f64, f64::max)
    .max(1.0)
}

/// Both runs' loss and accuracy curves overlaid.
fn curves_ui(ui: &mut egui::Ui, c: &Comparison) {
    section_ui(ui, "Training curves");
    if c.a.curves.is_empty() && c.b.curves.is_empty() {
        ui.weak("Neither run recorded training curves.");
        return;
    }
    for (tag, side) in [("A", &c.a), ("B", &c.b)] {
        if side.curves.is_empty() {
            ui.weak(format!(
                "{tag} ({}) recorded no training curves.",
                side.name()
            ));
        }
    }
    let width = ((ui.available_width() - 24.0) / 2.0).clamp(240.0, 560.0);
    let size = egui::vec2(width, 220.0);
    let epochs = span(&c.a.curves).max(span(&c.b.curves));
    let (a, b) = (&c.a.curves, &c.b.curves);
    let has_accuracy = |k: &Curves| {
        !k.train_accuracy.points().is_empty() || !k.validation_accuracy.points().is_empty()
    };
    ui.horizontal_top(|ui| {
        metric_plot_ui(
            ui,
            "compare_loss",
            "Loss",
            &pair(
                (&a.train_loss, &a.validation_loss),
                (&b.train_loss, &b.validation_loss),
            ),
            epochs,
            YAxis::FromZero,
            None,
            size,
        );
        if has_accuracy(a) || has_accuracy(b) {
            metric_plot_ui(
                ui,
                "compare_accuracy",
                "Accuracy",
                &pair(
                    (&a.train_accuracy, &a.validation_accuracy),
                    (&b.train_accuracy, &b.validation_accuracy),
                ),
                epochs,
                YAxis::Percent,
                None,
                size,
            );
        }
    });
    ui.weak(if c.same_template() {
        "Dashed: training data; solid: validation data."
    } else {
        "Dashed: training data; solid: validation data. The losses of different templates measure different things (log loss, squared error): compare their shapes, not their heights."
    });
}

/// The two confusion matrices side by side, in one class order.
fn confusion_pair_ui(ui: &mut egui::Ui, c: &Comparison) {
    let Some(split) = c.confusion_split() else {
        let not_classifier: Vec<String> = [("A", &c.a), ("B", &c.b)]
            .iter()
            .filter(|(_, s)| SPLIT_NAMES.iter().all(|x| s.classification(x).is_none()))
            .map(|(tag, s)| format!("{tag} ({})", s.name()))
            .collect();
        section_ui(ui, "Confusion matrices");
        ui.weak(if not_classifier.is_empty() {
            "The two runs were not evaluated on a common split, so their confusion matrices are not compared.".to_string()
        } else {
            format!(
                "Do not apply: {} has no confusion matrix (not a single-label classifier).",
                not_classifier.join(" and ")
            )
        });
        return;
    };
    let Some(aligned) = c.aligned_confusion(split) else {
        return;
    };
    section_ui(
        ui,
        &format!("Confusion matrices ({split} data, one class order)"),
    );
    if !aligned.only_a.is_empty() || !aligned.only_b.is_empty() {
        let mut parts = Vec::new();
        if !aligned.only_a.is_empty() {
            parts.push(format!("only A has {}", aligned.only_a.join(", ")));
        }
        if !aligned.only_b.is_empty() {
            parts.push(format!("only B has {}", aligned.only_b.join(", ")));
        }
        ui.weak(format!(
            "The runs have different classes: {}; a class a run does not have is a row of zeros.",
            parts.join("; ")
        ));
    }
    // Both fit side by side in the width there is.
    let grid = ((ui.available_width() - 48.0) / 2.0 - LABEL_WIDTH).clamp(140.0, 480.0);
    ui.horizontal_top(|ui| {
        for (tag, color, side, matrix) in [
            ("A", COLOR_A, &c.a, &aligned.a),
            ("B", COLOR_B, &c.b, &aligned.b),
        ] {
            ui.vertical(|ui| {
                ui.horizontal(|ui| tag_ui(ui, tag, color, &side.name()));
                confusion_ui_within(
                    ui,
                    &format!("compare_{tag}"),
                    &aligned.labels,
                    matrix,
                    None,
                    grid,
                );
            });
            ui.add_space(24.0);
        }
    });
}

const SPLIT_NAMES: [&str; 2] = crate::compare::SPLITS;
