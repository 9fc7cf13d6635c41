//! Picking up earlier runs: the banner over every project screen that offers to resume an
//! interrupted run ("Resume training (epoch 3 of 10)") or to continue the newest finished one,
//! the "Continue training…" form (extra epochs) the Train screen shows for a finished run, and
//! the runs list (every run of the project; a click makes one the current run; tick two and
//! Compare to see them side by side) with "Open run…" and "Compare with a run folder…".

use crate::command::{Command, Screen};
use crate::state::State;
use crate::ui::view::View;
use std::path::Path;

/// Interrupted runs listed in the banner (the rest are counted).
const SHOWN: usize = 3;

/// Whether the banner has something to say.
pub fn banner_wanted(state: &State) -> bool {
    state.project.is_some()
        && !state.run_active
        && (!state.resumable.is_empty() || finished_shown(state).is_some())
}

/// The finished run the banner offers to continue: the run read from its folder (a reopened
/// project's newest, or an opened one) while another screen than Train (which has its own button)
/// shows; else, before any run is shown, the project's newest finished run.
fn finished_shown(state: &State) -> Option<&Path> {
    use lathe_engine::train::Status;
    match state.run.status {
        Status::NotStarted => state.finished_run.as_deref(),
        Status::Completed if state.run_from_disk && state.screen != Screen::Train => {
            state.run.run_dir.as_deref()
        }
        _ => None,
    }
}

/// The banner: resume an interrupted run, else continue the newest finished one.
pub fn banner_ui(ui: &mut egui::Ui, state: &State, view: &mut View, commands: &mut Vec<Command>) {
    ui.add_space(4.0);
    if let Some(newest) = state.resumable.first() {
        ui.horizontal_wrapped(|ui| {
            ui.label(
                egui::RichText::new("Training was interrupted.")
                    .strong()
                    .color(ui.visuals().warn_fg_color),
            );
            ui.label(match newest.progress_text() {
                Some(p) => format!(
                    "{} stopped after {p}; its checkpoint is kept.",
                    newest.name()
                ),
                None => format!("{} stopped; its checkpoint is kept.", newest.name()),
            });
            if ui
                .button(newest.button_text())
                .on_hover_text("Continues the run from its last checkpoint, in the same folder")
                .clicked()
            {
                commands.push(Command::ResumeRun(newest.dir.clone()));
            }
        });
        for older in state.resumable.iter().skip(1).take(SHOWN - 1) {
            ui.horizontal(|ui| {
                ui.weak(match older.progress_text() {
                    Some(p) => format!("Also interrupted: {} ({p})", older.name()),
                    None => format!("Also interrupted: {}", older.name()),
                });
                if ui
                    .small_button(format!("Resume {}", older.name()))
                    .clicked()
                {
                    commands.push(Command::ResumeRun(older.dir.clone()));
                }
            });
        }
        if state.resumable.len() > SHOWN {
            ui.weak(format!(
                "…and {} more interrupted runs",
                state.resumable.len() - SHOWN
            ));
        }
    } else if let Some(dir) = finished_shown(state) {
        ui.horizontal_wrapped(|ui| {
            let name = dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            ui.label(if state.finished_run.as_deref() == Some(dir) {
                format!("The last run, {name}, finished.")
            } else {
                format!("Showing the run {name}, which finished.")
            });
            continue_ui(ui, state, view, dir, commands);
        });
    }
    ui.add_space(4.0);
}

/// "Continue training…": opens a form with the number of extra epochs, which starts a new run
/// (next to `from`) whose model starts from `from`'s.
pub fn continue_ui(
    ui: &mut egui::Ui,
    state: &State,
    view: &mut View,
    from: &Path,
    commands: &mut Vec<Command>,
) {
    if !view.continue_open {
        let button = ui
            .add_enabled(
                state.continue_blocked.is_none(),
                egui::Button::new("Continue training…"),
            )
            .on_hover_text("Train this model for more epochs, in a new run folder; features come from the cache");
        let button = match &state.continue_blocked {
            Some(why) => button.on_disabled_hover_text(why),
            None => button,
        };
        if button.clicked() {
            view.continue_open = true;
        }
        return;
    }
    ui.horizontal(|ui| {
        let label = ui.label("Extra epochs");
        ui.add(
            egui::DragValue::new(&mut view.continue_epochs)
                .range(1..=100_000)
                .speed(0.2),
        )
        .labelled_by(label.id);
        if ui.button("Start continuing").clicked() {
            commands.push(Command::ContinueRun {
                from: from.to_path_buf(),
                epochs: view.continue_epochs,
            });
        }
        if ui.button("Hide").clicked() {
            view.continue_open = false;
        }
    });
}

/// The runs list: every run of the project with its template, date, status and headline result;
/// clicking a run's name makes it the current run; ticking two and "Compare" shows them side by
/// side. "Open run…" opens a run folder from anywhere; "Compare with a run folder…" compares the
/// current run with one.
pub fn runs_list_ui(
    ui: &mut egui::Ui,
    state: &State,
    view: &mut View,
    commands: &mut Vec<Command>,
) {
    // Ticks of runs no longer listed are dropped.
    view.compare_ticked
        .retain(|d| state.runs.iter().any(|r| &r.dir == d));
    let current = state.run.run_dir.as_deref();
    // The window's own run, training now, before its folder is listed.
    let training = state
        .run_active
        .then_some(current)
        .flatten()
        .filter(|d| !state.runs.iter().any(|r| r.dir == *d));
    let count = state.runs.len() + usize::from(training.is_some());
    egui::CollapsingHeader::new(egui::RichText::new(format!("Runs ({count})")).strong())
        .id_salt("runs_list")
        .default_open(true)
        .show(ui, |ui| {
            ui.horizontal(|ui| {
                ui.weak("Click a run to see it on Train, Evaluate, Preview and Export.");
                if ui
                    .button("Open run…")
                    .on_hover_text("Open a run folder from anywhere (a copied or moved one too)")
                    .clicked()
                {
                    commands.push(Command::OpenRunDialog);
                }
                if ui
                    .add_enabled(
                        state.run.run_dir.is_some(),
                        egui::Button::new("Compare with a run folder…"),
                    )
                    .on_hover_text("Compare the current run with a run folder from anywhere (another template too)")
                    .clicked()
                {
                    commands.push(Command::ChooseCompareRun);
                }
            });
            if state.runs.len() >= 2 {
                ui.horizontal(|ui| {
                    let ticked = view.compare_ticked.len();
                    let compare = ui
                        .add_enabled(ticked == 2, egui::Button::new("Compare the ticked runs"))
                        .on_disabled_hover_text("Tick two runs in the first column");
                    if compare.clicked()
                        && let [x, y] = view.compare_ticked.as_slice()
                    {
                        let (a, b) = crate::compare::in_order(&state.runs, x, y);
                        commands.push(Command::CompareRuns(a, b));
                    }
                    ui.weak(match ticked {
                        0 => "Tick two runs to compare them side by side.".to_string(),
                        1 => "Tick one more run.".to_string(),
                        _ => "The earlier run is A, the later B.".to_string(),
                    });
                });
            }
            if count == 0 {
                ui.weak("No runs yet.");
                return;
            }
            egui::Grid::new("runs_grid")
                .num_columns(6)
                .spacing([16.0, 4.0])
                .striped(true)
                .show(ui, |ui| {
                    for h in ["Compare", "Run", "Template", "Date", "Status", "Result"] {
                        ui.strong(h);
                    }
                    ui.end_row();
                    if let Some(dir) = training {
                        ui.label("");
                        ui.add(egui::Button::selectable(true, dir_name(dir)));
                        ui.label(template_title(state, &state.run.template));
                        ui.label("now");
                        ui.label("training");
                        ui.label("");
                        ui.end_row();
                    }
                    for run in &state.runs {
                        compare_tick_ui(ui, view, run);
                        let selected = current == Some(run.dir.as_path());
                        let name = ui
                            .add_enabled(
                                !state.run_active || selected,
                                egui::Button::selectable(selected, run.name()),
                            )
                            .on_hover_text(run.dir.display().to_string());
                        if name.clicked() && !selected {
                            commands.push(Command::ShowRun(run.dir.clone()));
                        }
                        ui.label(template_title(state, &run.template));
                        ui.label(&run.date);
                        let status = if state.run_active && selected {
                            "training"
                        } else {
                            run.status.text()
                        };
                        match run.status {
                            crate::runs::RunStatus::Failed => {
                                ui.colored_label(ui.visuals().error_fg_color, status)
                            }
                            _ => ui.label(status),
                        };
                        ui.label(run.metric_text());
                        ui.end_row();
                    }
                });
        });
}

/// The run's "Compare" tick box (its accessible label names the run); a third tick drops the
/// oldest.
fn compare_tick_ui(ui: &mut egui::Ui, view: &mut View, run: &crate::runs::RunSummary) {
    let was = view.compare_ticked.contains(&run.dir);
    let mut ticked = was;
    let label = format!("Compare {}", run.name());
    let response = ui
        .checkbox(&mut ticked, "")
        .on_hover_text("Tick two runs, then \u{201c}Compare the ticked runs\u{201d}");
    response.widget_info(|| egui::WidgetInfo::selected(egui::Role::CheckBox, true, ticked, &label));
    if ticked && !was {
        view.compare_ticked.push(run.dir.clone());
        while view.compare_ticked.len() > 2 {
            view.compare_ticked.remove(0);
        }
    } else if !ticked && was {
        view.compare_ticked.retain(|d| d != &run.dir);
    }
}

/// A template's title ("Image Classifier"), else its id.
pub fn template_title(state: &State, id: &str) -> String {
    state
        .templates
        .iter()
        .find(|t| t.id == id)
        .map(|t| t.title.clone())
        .unwrap_or_else(|| id.to_string())
}

fn dir_name(dir: &Path) -> String {
    dir.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}
