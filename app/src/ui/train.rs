//! The Train screen: Start / Pause / Resume / Cancel, the current phase with progress and ETA,
//! live loss and accuracy curves (train vs validation), warnings, and continuing a finished run.

use crate::command::{Command, Screen};
use crate::report::ReportView;
use crate::state::State;
use crate::ui::runs::continue_ui;
use crate::ui::view::View;
use crate::ui::{duration_text, thousands};
use crate::widgets::metric_plot::{Series, YAxis, metric_plot_ui};
use lathe_engine::train::{History, RunState, Status};

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
    progress_ui(ui, run, state.earlier.as_ref().map_or(0, |e| e.epochs));
    ui.add_space(6.0);
    plots_ui(ui, state);
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
        crate::ui::runs::runs_list_ui(ui, state, view, commands);
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
    if !state.run_active && (run.status == Status::Completed || state.report.is_some()) {
        // The line is there from the moment training ends, empty until the report is read
        // (a moment later), so nothing below it moves under the pointer when it fills in.
        let reason = state.report.as_ref().and_then(|report| {
            stop_reason(run, report, state.earlier.as_ref().map_or(0, |e| e.epochs))
        });
        ui.label(egui::RichText::new(reason.unwrap_or_default()).strong());
    }
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

fn progress_ui(ui: &mut egui::Ui, run: &RunState, offset: usize) {
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
        let epoch = if offset > 0 {
            // A continued run: epochs count from the first run's start.
            format!(
                "Epoch {} ({} / {} of this continued run)",
                m.epoch + offset,
                m.epoch,
                m.epochs
            )
        } else {
            format!("Epoch {} / {}", m.epoch, m.epochs)
        };
        let mut parts = vec![epoch, format!("train loss {:.4}", m.train_loss)];
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

/// The curves of the run, after those of the runs it continues (when it continues one).
fn plots_ui(ui: &mut egui::Ui, state: &State) {
    let run = &state.run;
    let train = egui::Color32::from_rgb(66, 133, 244);
    let validation = egui::Color32::from_rgb(234, 134, 40);
    let steps = egui::Color32::from_rgba_unmultiplied(66, 133, 244, 70);
    let width = ((ui.available_width() - 24.0) / 2.0).clamp(240.0, 560.0);
    let size = egui::vec2(width, 220.0);
    let earlier = state.earlier.as_deref();
    let offset = earlier.map_or(0, |e| e.epochs);
    let joined = |before: Option<&History>, now: &History| -> Vec<[f64; 2]> {
        let mut points: Vec<[f64; 2]> = before.map(|h| h.points().to_vec()).unwrap_or_default();
        points.extend(now.points().iter().map(|p| [p[0] + offset as f64, p[1]]));
        points
    };
    let epochs = offset as f64 + epochs_run(run);
    let continued_at = earlier.map(|_| offset as f64);
    let series = |name, before, now, color, width| Series {
        name,
        points: joined(before, now),
        color,
        width,
        in_legend: true,
        dashed: false,
    };
    ui.horizontal_top(|ui| {
        let mut step = series(
            "train (steps)",
            earlier.map(|e| &e.step_loss),
            &run.step_loss,
            steps,
            1.0,
        );
        step.in_legend = false;
        metric_plot_ui(
            ui,
            "loss_plot",
            "Loss",
            &[
                step,
                series(
                    "train",
                    earlier.map(|e| &e.train_loss),
                    &run.train_loss,
                    train,
                    2.0,
                ),
                series(
                    "validation",
                    earlier.map(|e| &e.validation_loss),
                    &run.validation_loss,
                    validation,
                    2.0,
                ),
            ],
            epochs,
            YAxis::FromZero,
            continued_at,
            size,
        );
        metric_plot_ui(
            ui,
            "accuracy_plot",
            "Accuracy",
            &[
                series(
                    "train",
                    earlier.map(|e| &e.train_accuracy),
                    &run.train_accuracy,
                    train,
                    2.0,
                ),
                series(
                    "validation",
                    earlier.map(|e| &e.validation_accuracy),
                    &run.validation_accuracy,
                    validation,
                    2.0,
                ),
            ],
            epochs,
            YAxis::Percent,
            continued_at,
            size,
        );
    });
}

/// Epochs the run has trained so far (the finished ones, and the one in progress while its steps
/// come in), at least 1: the plots' x axis spans these, not the epoch limit.
pub fn epochs_run(run: &RunState) -> f64 {
    let last_step = run.step_loss.last().map_or(0.0, |p| p[0].ceil());
    (run.epoch as f64).max(last_step).max(1.0)
}

/// Why training ended, in plain words, once the report says: "Stopped early: the validation
/// loss did not improve for 10 epochs; best epoch 6", or "Trained all 40 epochs; best epoch 37".
/// Epochs count from the first of the runs continued (`offset` epochs before this one).
pub fn stop_reason(run: &RunState, report: &ReportView, offset: usize) -> Option<String> {
    if run.status != Status::Completed {
        return None;
    }
    let unit = if report.rounds { "rounds" } else { "epochs" };
    let best = report
        .best_epoch
        .filter(|b| *b > 0)
        .map(|b| format!("; best {} {}", &unit[..unit.len() - 1], b + offset as u64))
        .unwrap_or_default();
    let ran = report
        .epochs_run
        .or_else(|| (run.epoch > 0).then_some(run.epoch as u64));
    // The sound and activity CNNs keep the epoch of best validation accuracy (loss breaks ties).
    let what = match run.template.as_str() {
        "sound-classifier" | "activity-classifier" => "the validation accuracy",
        _ => "the validation loss",
    };
    match report.stopped_early {
        Some(true) => Some(match (report.patience, report.best_epoch, ran) {
            (Some(p), Some(b), Some(n)) if p > 0 && n >= b + p => {
                format!("Stopped early: {what} did not improve for {p} {unit}{best}")
            }
            (_, _, Some(n)) if run.epochs > 0 => format!(
                "Stopped early, after {n} of {} {unit}: training had converged{best}",
                run.epochs
            ),
            _ => format!("Stopped early{best}"),
        }),
        Some(false) if offset > 0 => ran.map(|n| {
            format!(
                "Trained all {n} more {unit}, {} in all{best}",
                n + offset as u64
            )
        }),
        Some(false) => ran.map(|n| format!("Trained all {n} {unit}{best}")),
        None => None,
    }
}

fn warnings_ui(ui: &mut egui::Ui, run: &RunState) {
    if run.warnings.is_empty() {
        return;
    }
    let total = run.warning_count();
    egui::CollapsingHeader::new(crate::ui::count(total, "warning"))
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
