//! The Evaluate screen: headline metrics, per-class precision and recall, and the confusion
//! matrix whose cells list their samples (the step toward fixing labels). Reports of other
//! tasks are shown generically as key/value metrics.

use crate::choices::Choice;
use crate::command::Command;
use crate::mistakes::{SampleKind, mistakes};
use crate::report::{EvalView, format_value, scalar_rows};
use crate::state::State;
use crate::ui::view::View;
use crate::widgets::bars::bar_row_ui;
use crate::widgets::confusion::confusion_ui;
use crate::widgets::drop_zone::{dropped_paths, hover_overlay};
use lathe_engine::eval::{ClassificationReport, SampleResult};

/// Samples listed for a selected cell.
const SAMPLES_SHOWN: usize = 60;
/// Mistakes shown at first, and added by each "Show more".
const MISTAKES_PAGE: usize = 24;
/// Width of one mistake's card.
const MISTAKE_WIDTH: f32 = 190.0;

pub fn evaluate_ui(ui: &mut egui::Ui, state: &State, view: &mut View, commands: &mut Vec<Command>) {
    ui.heading("Evaluate");
    shown_run_ui(ui, state, commands);
    retrain_note_ui(ui, state);
    let table = state.preview_kind() == crate::preview_data::PreviewKind::Table;
    ui.horizontal(|ui| {
        let can = state.model.loaded && !state.evaluating;
        let label = if table {
            "Evaluate on another table…"
        } else {
            "Evaluate on a folder…"
        };
        if ui
            .add_enabled(can, egui::Button::new(label))
            .on_disabled_hover_text("Needs a trained model")
            .clicked()
        {
            commands.push(Command::ChooseEvaluateFolder);
        }
        if state.evaluating {
            ui.spinner();
            ui.label("Evaluating…");
        }
    });
    if state.model.loaded {
        let dropped = dropped_paths(ui.ctx());
        // A table model evaluates on a table file; the others on a labelled folder.
        if let Some(folder) = dropped.into_iter().find(|p| table || p.is_dir()) {
            commands.push(Command::EvaluateFolder(folder));
        }
        hover_overlay(
            ui.ctx(),
            if table {
                "Drop a table to evaluate the model on it"
            } else {
                "Drop a labelled folder to evaluate the model on it"
            },
        );
    }
    let mut evaluations: Vec<(String, &EvalView)> = state
        .report
        .iter()
        .flat_map(|r| r.evaluations.iter().map(|(k, v)| (k.clone(), v)))
        .collect();
    if let Some((folder, v)) = &state.extra_evaluation {
        evaluations.push((format!("folder {}", folder.display()), v));
    }
    if evaluations.is_empty() {
        ui.add_space(8.0);
        ui.label(if state.run_active {
            "Evaluation appears when training finishes."
        } else {
            "Train a model (or open a finished run) to see its evaluation."
        });
        return;
    }
    if let Some(r) = &state.report {
        let mut parts = Vec::new();
        // A logistic head fitted by L-BFGS reports iterations, not epochs.
        let lbfgs = r.choices.iter().any(|c| {
            c.title == "Classifier head"
                && c.rows
                    .iter()
                    .any(|row| row.chosen && row.name == "logistic")
        });
        if lbfgs {
            if let Some(n) = r.epochs_run {
                parts.push(format!("logistic head fitted in {n} L-BFGS iterations"));
            }
        } else {
            if let Some(n) = r.epochs_run {
                parts.push(format!("{n} epochs"));
            }
            if let Some(b) = r.best_epoch {
                parts.push(format!("best epoch {b}"));
            }
        }
        if r.stopped_early == Some(true) {
            parts.push("stopped early".into());
        }
        if !parts.is_empty() {
            ui.weak(parts.join(" · "));
        }
        if !r.choices.is_empty() {
            ui.add_space(8.0);
            egui::CollapsingHeader::new(
                egui::RichText::new("How this model was chosen")
                    .strong()
                    .size(16.0),
            )
            .id_salt("choices")
            .default_open(true)
            .show(ui, |ui| {
                for choice in &r.choices {
                    choice_ui(ui, choice);
                }
            });
        }
    }
    for (name, evaluation) in evaluations {
        ui.add_space(8.0);
        egui::CollapsingHeader::new(egui::RichText::new(&name).strong().size(16.0))
            .id_salt(("evaluation", &name))
            .default_open(true)
            .show(ui, |ui| match evaluation {
                EvalView::Classification(r) => {
                    classification_ui(ui, &name, r, state, view, commands)
                }
                EvalView::Generic(v) => generic_ui(ui, &name, v),
            });
    }
}

/// "The data changed": labels fixed since the run shown, which training again uses.
pub fn retrain_note_ui(ui: &mut egui::Ui, state: &State) {
    if !state.needs_retraining() {
        return;
    }
    let n = state.label_fixes.len();
    ui.colored_label(
        ui.visuals().warn_fg_color,
        format!(
            "The data changed: {n} file{} moved to another class since this run. Train again to use the fixed labels.",
            if n == 1 { "" } else { "s" }
        ),
    );
}

/// Which run the report is of ("Run image-classifier-20260102-000000 · finished … · test
/// accuracy 93.1%"), and a way to the other runs.
pub fn shown_run_ui(ui: &mut egui::Ui, state: &State, commands: &mut Vec<Command>) {
    let Some(dir) = &state.run.run_dir else {
        return;
    };
    ui.horizontal_wrapped(|ui| {
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut text = format!("Run {name}");
        if let Some(r) = state.runs.iter().find(|r| &r.dir == dir)
            && !r.date.is_empty()
        {
            text.push_str(&format!(" \u{b7} {}", r.date));
        }
        ui.weak(text).on_hover_text(dir.display().to_string());
        if state.runs.len() > 1
            && ui
                .link("Other runs")
                .on_hover_text("The runs list on the Train screen")
                .clicked()
        {
            commands.push(Command::Show(crate::command::Screen::Train));
        }
    });
}

fn classification_ui(
    ui: &mut egui::Ui,
    split: &str,
    r: &ClassificationReport,
    state: &State,
    view: &mut View,
    commands: &mut Vec<Command>,
) {
    egui::Grid::new(("metrics", split))
        .num_columns(2)
        .spacing([16.0, 4.0])
        .show(ui, |ui| {
            let pct = |x: f64| format!("{:.1}%", x * 100.0);
            for (k, v) in [
                ("Examples", r.num_examples.to_string()),
                ("Accuracy", pct(r.accuracy)),
                ("Top-5 accuracy", pct(r.top5_accuracy)),
                ("Macro precision", pct(r.macro_precision)),
                ("Macro recall", pct(r.macro_recall)),
                ("Macro F1", pct(r.macro_f1)),
            ] {
                ui.label(k);
                ui.strong(v);
                ui.end_row();
            }
        });
    ui.add_space(6.0);
    ui.horizontal_top(|ui| {
        ui.vertical(|ui| {
            ui.strong("Per class");
            egui::Grid::new(("per_class", split))
                .num_columns(5)
                .spacing([12.0, 4.0])
                .striped(true)
                .show(ui, |ui| {
                    for h in ["Class", "Precision", "Recall", "F1", "Support"] {
                        ui.strong(h);
                    }
                    ui.end_row();
                    let color = ui.visuals().selection.bg_fill;
                    for c in &r.per_class {
                        ui.label(&c.label);
                        ui.horizontal(|ui| {
                            bar_row_ui(
                                ui,
                                c.precision as f32,
                                70.0,
                                color,
                                &format!("{:.2}", c.precision),
                            )
                        });
                        ui.horizontal(|ui| {
                            bar_row_ui(
                                ui,
                                c.recall as f32,
                                70.0,
                                color,
                                &format!("{:.2}", c.recall),
                            )
                        });
                        ui.label(format!("{:.2}", c.f1));
                        ui.label(c.support.to_string());
                        ui.end_row();
                    }
                });
        });
        ui.add_space(16.0);
        ui.vertical(|ui| {
            ui.strong("Confusion matrix — click a cell to see its samples");
            let selected = state
                .selected_cell
                .as_ref()
                .filter(|(s, _, _)| s == split)
                .map(|(_, t, p)| (*t, *p));
            if let Some((truth, predicted)) =
                confusion_ui(ui, split, &r.labels, &r.confusion_matrix, selected)
            {
                commands.push(Command::SelectCell {
                    split: split.to_string(),
                    truth,
                    predicted,
                });
            }
        });
    });
    if let Some((s, t, p)) = &state.selected_cell
        && s == split
    {
        samples_ui(ui, r, *t, *p, view);
    }
    ui.add_space(6.0);
    mistakes_ui(ui, split, r, state, view, commands);
}

/// The Mistakes view (fastai's "top losses"): the split's misclassified samples, most confident
/// first, each shown as what it is, with its label and the prediction; a sample of a folder
/// dataset can be moved to another class folder (and back).
fn mistakes_ui(
    ui: &mut egui::Ui,
    split: &str,
    r: &ClassificationReport,
    state: &State,
    view: &mut View,
    commands: &mut Vec<Command>,
) {
    let wrong = mistakes(r);
    let header = if wrong.is_empty() {
        "Mistakes: none".to_string()
    } else {
        format!("Mistakes ({}), most confident first", wrong.len())
    };
    egui::CollapsingHeader::new(egui::RichText::new(header).strong())
        .id_salt(("mistakes", split))
        .default_open(!wrong.is_empty())
        .show(ui, |ui| {
            if wrong.is_empty() {
                ui.weak("Every sample here is classified right.");
                return;
            }
            let kind = state.preview_kind();
            let shown = view
                .mistakes_shown
                .get(split)
                .copied()
                .unwrap_or(MISTAKES_PAGE)
                .min(wrong.len());
            let kinds: Vec<SampleKind> = wrong[..shown]
                .iter()
                .map(|s| SampleKind::of(&s.input, kind))
                .collect();
            if kinds
                .iter()
                .any(|k| matches!(k, SampleKind::TableRow { .. }))
            {
                ui.label(
                    "These samples are rows of a table. Changing a row's label from here is not \
                     supported yet: edit its label cell in the table (the file and line are \
                     shown), then train again.",
                );
            }
            // Text excerpts, table rows and sound lengths are read in the background.
            let missing: Vec<std::path::PathBuf> = wrong[..shown]
                .iter()
                .zip(&kinds)
                .filter(|(s, k)| {
                    k.needs_details()
                        && !state.sample_details.contains_key(&s.input)
                        && !view.details_requested.contains(&s.input)
                })
                .map(|(s, _)| s.input.clone())
                .collect();
            if !missing.is_empty() {
                view.details_requested.extend(missing.iter().cloned());
                commands.push(Command::LoadDetails(missing));
            }
            let folders = state.label_folders();
            ui.horizontal_wrapped(|ui| {
                ui.spacing_mut().item_spacing = egui::vec2(8.0, 8.0);
                for (sample, sample_kind) in wrong[..shown].iter().zip(&kinds) {
                    mistake_ui(
                        ui,
                        sample,
                        sample_kind,
                        &r.labels,
                        &folders,
                        state,
                        view,
                        commands,
                    );
                }
            });
            if wrong.len() > shown {
                let more = (wrong.len() - shown).min(MISTAKES_PAGE);
                if ui
                    .button(format!(
                        "Show {more} more (of {} not shown)",
                        wrong.len() - shown
                    ))
                    .clicked()
                {
                    view.mistakes_shown
                        .insert(split.to_string(), shown + MISTAKES_PAGE);
                }
            }
        });
}

/// One misclassified sample: what it is, its label, the prediction, and fixing its label.
#[allow(clippy::too_many_arguments)]
fn mistake_ui(
    ui: &mut egui::Ui,
    sample: &SampleResult,
    kind: &SampleKind,
    labels: &[String],
    folders: &[std::path::PathBuf],
    state: &State,
    view: &mut View,
    commands: &mut Vec<Command>,
) {
    let fix = state.label_fixes.iter().find(|f| f.from == sample.input);
    let path = fix.map_or(sample.input.as_path(), |f| f.to.as_path());
    let name = match kind {
        SampleKind::TableRow { .. } => sample.input.display().to_string(),
        _ => path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.display().to_string()),
    };
    egui::Frame::group(ui.style()).show(ui, |ui| {
        ui.set_width(MISTAKE_WIDTH);
        ui.vertical(|ui| {
            let detail = state.sample_details.get(&sample.input);
            match kind {
                SampleKind::Image => {
                    view.thumbnails.show(ui, path, 112.0);
                }
                SampleKind::Text | SampleKind::TableRow { .. } => match detail {
                    Some(Ok(text)) => {
                        ui.add(egui::Label::new(egui::RichText::new(text).small()).wrap());
                    }
                    Some(Err(e)) => {
                        ui.small(e.as_str());
                    }
                    None => {
                        ui.spinner();
                    }
                },
                SampleKind::Sound | SampleKind::Other => {}
            }
            let name_label = match (kind, detail) {
                (SampleKind::Sound, Some(Ok(length))) => format!("{name}, {length}"),
                _ => name,
            };
            ui.add(
                egui::Label::new(egui::RichText::new(&name_label).monospace().small()).truncate(),
            )
            .on_hover_text(path.display().to_string());
            ui.label(format!("labelled {}", sample.label));
            ui.label(format!(
                "predicted {}, {:.0}%",
                sample.predicted,
                sample.confidence * 100.0
            ));
            let table_row = matches!(kind, SampleKind::TableRow { .. });
            if table_row && fix.is_none() {
                ui.weak("Label: edit it in the table")
                    .on_hover_text("Changing a table row's label from Lathe is not supported yet");
            } else if fix.is_some()
                || !matches!(kind, SampleKind::Other)
                || crate::mistakes::class_root(&sample.input, &sample.label, folders).is_some()
            {
                crate::ui::label_fix::fix_label_ui(
                    ui,
                    &sample.input,
                    &sample.label,
                    Some(&sample.predicted),
                    labels,
                    folders,
                    state,
                    commands,
                );
            }
        });
    });
}

fn samples_ui(ui: &mut egui::Ui, r: &ClassificationReport, t: usize, p: usize, view: &mut View) {
    let (Some(truth), Some(predicted)) = (r.labels.get(t), r.labels.get(p)) else {
        return;
    };
    let samples: Vec<_> = r
        .samples
        .iter()
        .filter(|s| &s.label == truth && &s.predicted == predicted)
        .collect();
    ui.add_space(6.0);
    ui.strong(format!(
        "{} sample(s) labelled {truth}, predicted {predicted}",
        samples.len()
    ));
    ui.horizontal_wrapped(|ui| {
        for s in samples.iter().take(SAMPLES_SHOWN) {
            ui.vertical(|ui| {
                view.thumbnails.show(ui, &s.input, 72.0);
                let name = s
                    .input
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                ui.small(name);
                ui.small(format!("{:.0}%", s.confidence * 100.0));
            });
        }
    });
    if samples.len() > SAMPLES_SHOWN {
        ui.weak(format!("…and {} more", samples.len() - SAMPLES_SHOWN));
    }
}

/// One decision: a row per candidate with its score as a bar (scaled to the best), its time and
/// a note; the winner in bold with a check mark.
fn choice_ui(ui: &mut egui::Ui, choice: &Choice) {
    ui.add_space(4.0);
    ui.label(egui::RichText::new(format!("{} — by {}", choice.title, choice.score_label)).strong());
    if let Some(reason) = &choice.reason {
        ui.weak(reason);
    }
    let scores: Vec<f64> = choice.rows.iter().filter_map(|r| r.score).collect();
    let best = if choice.lower_is_better {
        scores.iter().copied().fold(f64::INFINITY, f64::min)
    } else {
        scores.iter().copied().fold(0.0, f64::max)
    };
    let color = ui.visuals().selection.bg_fill;
    egui::Grid::new(("choice", &choice.title))
        .num_columns(4)
        .spacing([12.0, 4.0])
        .show(ui, |ui| {
            for row in &choice.rows {
                let name = if row.chosen {
                    egui::RichText::new(format!("{} (chosen)", row.name)).strong()
                } else {
                    egui::RichText::new(row.name.as_str())
                };
                ui.label(name);
                match row.score {
                    Some(s) => {
                        // Bars grow with quality: the best fills the width.
                        let fraction = if choice.lower_is_better {
                            if s > 0.0 { best / s } else { 1.0 }
                        } else if best > 0.0 {
                            s / best
                        } else {
                            0.0
                        };
                        ui.horizontal(|ui| {
                            bar_row_ui(ui, fraction as f32, 120.0, color, &format!("{s:.3}"))
                        });
                    }
                    None => {
                        ui.weak("—");
                    }
                }
                match row.seconds {
                    Some(t) => ui.weak(format!("{t:.1} s")),
                    None => ui.weak(""),
                };
                ui.weak(row.note.as_deref().unwrap_or(""));
                ui.end_row();
            }
        });
}

fn generic_ui(ui: &mut egui::Ui, split: &str, value: &serde_json::Value) {
    if let Some(obj) = value.as_object() {
        let headline: Vec<(String, String)> = obj
            .iter()
            .filter(|(_, v)| v.is_number())
            .map(|(k, v)| (k.clone(), format_value(v)))
            .collect();
        egui::Grid::new(("generic_metrics", split))
            .num_columns(2)
            .spacing([16.0, 4.0])
            .show(ui, |ui| {
                for (k, v) in &headline {
                    ui.label(k);
                    ui.strong(v);
                    ui.end_row();
                }
            });
    }
    egui::CollapsingHeader::new("All values")
        .id_salt(("generic_all", split))
        .show(ui, |ui| {
            egui::Grid::new(("generic_rows", split))
                .num_columns(2)
                .striped(true)
                .show(ui, |ui| {
                    for (k, v) in scalar_rows(value) {
                        ui.monospace(k);
                        ui.label(v);
                        ui.end_row();
                    }
                });
        });
}
