//! The Train screen: Start / Pause / Resume / Cancel, the current phase with progress and ETA,
//! live loss and accuracy curves (train vs validation), warnings, and continuing a finished run.

use crate::command::{Command, Screen};
use crate::state::State;
use crate::ui::runs::continue_ui;
use crate::ui::view::View;
use crate::ui::{duration_text, thousands};
use crate::widgets::metric_plot::{Series, metric_plot_ui};
use lathe_engine::train::{RunState, Status};

/// Warnings listed on screen (the rest are counted).
const WARNINGS_SHOWN: usize = 20;

pub fn train_ui(ui: &mut egui::Ui, state: &State, view: &mut View, commands: &mut Vec<Command>) {
    let run = &state.run;
    ui.heading("Train");
    controls_ui(ui, state, view, commands);
    if !state.run_active {
        crate::ui::evaluate::retrain_note_ui(ui, state);
    }
    ui.add_space(6.0);
    progress_ui(ui, run);
    ui.add_space(6.0);
    plots_ui(ui, run);
    if !run.evaluations.is_empty() {
        ui.add_space(6.0);
        for e in &run.evaluations {
            ui.label(format!(
                "{} {}: {} ({} examples)",
                e.split,
                e.metric,
                metric_text(&e.metric, e.value),
                thousands(e.num_examples as u64)
            ));
        }
    }
    if run.status == Status::Completed && ui.button("See the evaluation").clicked() {
        commands.push(Command::Show(Screen::Evaluate));
    }
    warnings_ui(ui, run);
    if state.project.is_some() || !state.runs.is_empty() {
        ui.add_space(10.0);
        crate::ui::runs::runs_list_ui(ui, state, commands);
    }
}

/// "93.1%" for accuracies, plain numbers otherwise.
pub fn metric_text(metric: &str, value: f64) -> String {
    if metric.contains("accuracy") {
        format!("{:.1}%", value * 100.0)
    } else {
        format!("{value:.4}")
    }
}

fn controls_ui(ui: &mut egui::Ui, state: &State, view: &mut View, commands: &mut Vec<Command>) {
    let run = &state.run;
    ui.horizontal(|ui| {
        if state.run_active {
            let paused = run.status == Status::Paused;
            if paused {
                if ui.button("Resume").clicked() {
                    commands.push(Command::Resume);
                }
            } else if state.pause_requested {
                ui.add_enabled(false, egui::Button::new("Pausing…"));
            } else if ui.button("Pause").clicked() {
                commands.push(Command::Pause);
            }
            if ui.button("Cancel").clicked() {
                commands.push(Command::Cancel);
            }
            ui.label(match run.status {
                Status::NotStarted => "Starting…",
                Status::Paused => "Paused",
                _ => "Training…",
            });
        } else {
            let ready = state.ready_to_train();
            let label = if run.status == Status::NotStarted {
                "Start training"
            } else {
                "Train again"
            };
            if ui
                .add_enabled(ready, egui::Button::new(label))
                .on_disabled_hover_text("Choose training data without errors on the Data screen")
                .clicked()
            {
                commands.push(Command::StartTraining);
            }
            ui.label(match run.status {
                // An opened run that stopped without an outcome: killed, or the power went.
                Status::Running | Status::Paused => "Interrupted".to_string(),
                _ => status_text(run),
            });
        }
    });
    if !state.run_active
        && run.status == Status::Completed
        && let Some(dir) = &run.run_dir
    {
        ui.add_space(4.0);
        ui.horizontal(|ui| continue_ui(ui, state, view, dir, commands));
    }
}

fn status_text(run: &RunState) -> String {
    match run.status {
        Status::NotStarted => "Not started".into(),
        Status::Running => "Running".into(),
        Status::Paused => "Paused".into(),
        Status::Completed => format!("Finished in {}", duration_text(run.elapsed_secs)),
        Status::Cancelled => "Cancelled".into(),
        Status::Failed => format!("Failed: {}", run.error.as_deref().unwrap_or("")),
    }
}

fn progress_ui(ui: &mut egui::Ui, run: &RunState) {
    if let Some(p) = &run.phase {
        let eta = p
            .eta_secs()
            .map(|s| format!(" — {} left", duration_text(s)))
            .unwrap_or_default();
        let text = format!(
            "{} {} / {} {}{eta}",
            p.phase.title(),
            thousands(p.done),
            thousands(p.total),
            p.phase.unit()
        );
        ui.add(
            egui::ProgressBar::new(p.fraction() as f32)
                .text(text)
                .desired_width(ui.available_width().min(900.0)),
        );
    }
    if let Some(m) = &run.last_epoch {
        let mut parts = vec![
            format!("Epoch {} / {}", m.epoch, m.epochs),
            format!("train loss {:.4}", m.train_loss),
        ];
        if let Some(a) = m.train_accuracy {
            parts.push(format!("train accuracy {:.1}%", a * 100.0));
        }
        if let Some(l) = m.validation_loss {
            parts.push(format!("validation loss {:.4}", l));
        }
        if let Some(a) = m.validation_accuracy {
            parts.push(format!("validation accuracy {:.1}%", a * 100.0));
        }
        ui.label(parts.join(" · "));
    }
    if run.num_train > 0 {
        ui.weak(format!(
            "{} training, {} validation, {} test examples · {} classes · device {}{}",
            thousands(run.num_train as u64),
            thousands(run.num_validation as u64),
            thousands(run.num_test as u64),
            run.labels.len(),
            run.device,
            if run.cached_features > 0 {
                format!(
                    " · {} features from the cache",
                    thousands(run.cached_features as u64)
                )
            } else {
                String::new()
            }
        ));
    }
}

fn plots_ui(ui: &mut egui::Ui, run: &RunState) {
    let train = egui::Color32::from_rgb(66, 133, 244);
    let validation = egui::Color32::from_rgb(234, 134, 40);
    let steps = egui::Color32::from_rgba_unmultiplied(66, 133, 244, 70);
    let width = ((ui.available_width() - 24.0) / 2.0).clamp(240.0, 560.0);
    let size = egui::vec2(width, 220.0);
    let epochs = run.epochs.max(run.epoch);
    ui.horizontal_top(|ui| {
        metric_plot_ui(
            ui,
            "loss_plot",
            "Loss",
            &[
                Series {
                    name: "train (steps)",
                    history: &run.step_loss,
                    color: steps,
                    width: 1.0,
                },
                Series {
                    name: "train",
                    history: &run.train_loss,
                    color: train,
                    width: 2.0,
                },
                Series {
                    name: "validation",
                    history: &run.validation_loss,
                    color: validation,
                    width: 2.0,
                },
            ],
            epochs,
            Some((0.0, 0.0)),
            size,
        );
        metric_plot_ui(
            ui,
            "accuracy_plot",
            "Accuracy",
            &[
                Series {
                    name: "train",
                    history: &run.train_accuracy,
                    color: train,
                    width: 2.0,
                },
                Series {
                    name: "validation",
                    history: &run.validation_accuracy,
                    color: validation,
                    width: 2.0,
                },
            ],
            epochs,
            Some((0.0, 1.0)),
            size,
        );
    });
}

fn warnings_ui(ui: &mut egui::Ui, run: &RunState) {
    if run.warnings.is_empty() {
        return;
    }
    let total = run.warnings.len() + run.warnings_dropped;
    egui::CollapsingHeader::new(format!("{total} warning(s)"))
        .id_salt("run_warnings")
        .show(ui, |ui| {
            for (message, path) in run.warnings.iter().take(WARNINGS_SHOWN) {
                match path {
                    Some(p) => ui.label(format!("{message}: {}", p.display())),
                    None => ui.label(message),
                };
            }
            if total > WARNINGS_SHOWN {
                ui.weak(format!("…and {} more", total - WARNINGS_SHOWN));
            }
        });
}
