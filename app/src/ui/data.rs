//! The data screen: drop zones (or "Choose folder…") for training, validation and test data,
//! the column to predict (tables), then what the background scan found: counts per class,
//! thumbnails, health warnings; an activity project's recordings (`data_activity`).

use crate::command::{Command, DataSlot, Screen};
use crate::preview_data::PreviewKind;
use crate::state::{ScanState, State};
use crate::ui::view::View;
use crate::widgets::bars::class_counts_ui;
use crate::widgets::drop_zone::{drop_zone_ui, dropped_paths, hover_overlay};
use crate::widgets::format::plain_words;
use lathe_engine::data::{DataKind, DatasetSummary, Severity};
use lathe_engine::params::ParamValue;
use std::path::Path;

/// Thumbnails shown per class.
const THUMBS_PER_CLASS: usize = 6;
/// Paths listed per health issue.
const PATHS_PER_ISSUE: usize = 5;

pub fn data_ui(ui: &mut egui::Ui, state: &State, view: &mut View, commands: &mut Vec<Command>) {
    let Some(project) = &state.project else {
        return;
    };
    let hint = state
        .template()
        .map(|t| plain_words(&t.data_hint))
        .unwrap_or_default();
    let table = state.preview_kind() == PreviewKind::Table;
    ui.heading("Data");
    if let Some(t) = state.template() {
        ui.label(plain_words(&t.data_layout));
    }
    ui.add_space(6.0);
    let mut zones = Vec::new();
    for slot in DataSlot::ALL {
        let current = match slot {
            DataSlot::Train => {
                Some(project.data.train.as_path()).filter(|p| !p.as_os_str().is_empty())
            }
            DataSlot::Validation => project.data.validation.as_deref(),
            DataSlot::Test => project.data.test.as_deref(),
        }
        .map(|p| project.resolve(p));
        let slot_hint = match slot {
            DataSlot::Train => hint.as_str(),
            DataSlot::Validation => {
                "Optional: without it, a stratified part of the training data is held out."
            }
            DataSlot::Test => "Optional: data the model never trains on, to measure it.",
        };
        let zone = drop_zone_ui(
            ui,
            slot.title(),
            current.as_deref(),
            slot_hint,
            if table {
                "Choose file…"
            } else {
                "Choose folder…"
            },
        );
        if zone.choose_clicked {
            commands.push(Command::ChooseData(slot));
        }
        if zone.clear_clicked {
            commands.push(Command::SetData(slot, None));
        }
        typed_path_ui(ui, slot, table, view, commands);
        zones.push((slot, zone.rect));
        ui.add_space(4.0);
        if table && slot == DataSlot::Train {
            target_ui(ui, state, commands);
            ui.add_space(4.0);
        }
    }

    // Files dropped anywhere on this screen go to the zone under the pointer, else training.
    let dropped = dropped_paths(ui.ctx());
    if !dropped.is_empty() {
        let pointer = ui.input(|i| i.pointer.latest_pos());
        let slot = pointer
            .and_then(|p| zones.iter().find(|(_, r)| r.contains(p)).map(|(s, _)| *s))
            .unwrap_or(DataSlot::Train);
        commands.push(Command::DropData(slot, dropped));
    }
    hover_overlay(ui.ctx(), "Drop a folder to use it as data");

    ui.add_space(8.0);
    match &state.scan {
        ScanState::Idle => {}
        ScanState::Running { done, total } => {
            ui.horizontal(|ui| {
                ui.spinner();
                if *total > 0 {
                    ui.label(format!(
                        "Scanning {} / {} files…",
                        crate::ui::thousands(*done),
                        crate::ui::thousands(*total)
                    ));
                } else {
                    ui.label("Scanning…");
                }
            });
        }
        ScanState::Failed(e) => {
            // A table without a known target: the dropdown above says what to do, in plain words.
            let no_target =
                table && matches!(&state.table_columns, Some(Ok(c)) if c.target.is_none());
            if !no_target {
                ui.colored_label(ui.visuals().error_fg_color, e);
            }
        }
        ScanState::Done(summary) => {
            ui.horizontal(|ui| {
                if summary.has_errors() {
                    ui.colored_label(
                        ui.visuals().error_fg_color,
                        "Fix the errors below before training.",
                    );
                } else if ui.button("Next: Settings").clicked() {
                    commands.push(Command::Show(Screen::Settings));
                }
            });
            summary_ui(ui, summary, view);
            crate::ui::data_activity::recordings_ui(ui, state, commands);
        }
    }
}

fn typed_path_ui(
    ui: &mut egui::Ui,
    slot: DataSlot,
    table: bool,
    view: &mut View,
    commands: &mut Vec<Command>,
) {
    ui.horizontal(|ui| {
        let text = view.typed_paths.entry(slot.split()).or_default();
        let edit = ui.add(
            egui::TextEdit::singleline(text)
                .hint_text(if table {
                    "…or type a file path (~ is your home folder)"
                } else {
                    "…or type a folder path (~ is your home folder)"
                })
                .desired_width(420.0),
        );
        let enter = edit.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
        if (ui.button("Use").clicked() || enter) && !text.trim().is_empty() {
            let path = crate::file_dialog::typed_path(text, None);
            commands.push(Command::SetData(slot, Some(path)));
            text.clear();
        }
    });
}

/// The column a table model predicts: a dropdown of the training table's columns. Choosing one
/// sets the `target` parameter, which scans the data again.
fn target_ui(ui: &mut egui::Ui, state: &State, commands: &mut Vec<Command>) {
    let Some(Ok(columns)) = &state.table_columns else {
        return;
    };
    ui.horizontal(|ui| {
        let label = ui.strong("Column to predict");
        target_combo_ui(ui, columns, label.id, commands);
        if columns.target.is_none() {
            ui.colored_label(
                ui.visuals().error_fg_color,
                match state.param("target") {
                    Some(ParamValue::Text(t)) if !t.trim().is_empty() => format!(
                        "This table has no column \u{201c}{}\u{201d}: choose the column the model should predict.",
                        t.trim()
                    ),
                    _ => "Choose the column the model should predict.".to_string(),
                },
            );
        } else {
            ui.weak("The model learns to predict this column from the others.");
        }
    });
}

/// The dropdown of a table's columns; picking one sets the `target` parameter (shared with the
/// Settings screen).
pub fn target_combo_ui(
    ui: &mut egui::Ui,
    columns: &crate::state::TableColumns,
    label: egui::Id,
    commands: &mut Vec<Command>,
) {
    let current = columns.target.as_deref();
    egui::ComboBox::from_id_salt("target_column")
        .selected_text(current.unwrap_or("Choose a column…"))
        .width(220.0)
        .show_ui(ui, |ui| {
            for c in &columns.columns {
                if ui
                    .selectable_label(current == Some(c.as_str()), c)
                    .clicked()
                    && current != Some(c.as_str())
                {
                    commands.push(Command::SetParam {
                        key: "target".into(),
                        value: ParamValue::Text(c.clone()),
                    });
                }
            }
        })
        .response
        .labelled_by(label)
        .widget_info(|| egui::WidgetInfo::labeled(egui::Role::ComboBox, true, "Column to predict"));
}

/// The scan's findings.
pub fn summary_ui(ui: &mut egui::Ui, summary: &DatasetSummary, view: &mut View) {
    ui.add_space(4.0);
    let errors = summary.errors().count();
    let warnings = summary.warnings().count();
    ui.label(format!(
        "{} classes · {} · {}, {}",
        summary.labels.len(),
        summary
            .splits
            .iter()
            .map(|s| format!("{} {}", crate::ui::thousands(s.num_examples as u64), s.name))
            .collect::<Vec<_>>()
            .join(", "),
        crate::ui::count(errors, "error"),
        crate::ui::count(warnings, "warning")
    ));
    if !summary.facts.is_empty() {
        ui.horizontal_wrapped(|ui| {
            for (k, v) in &summary.facts {
                ui.weak(format!("{k}: {v}"));
            }
        });
    }
    if !summary.issues.is_empty() {
        ui.add_space(6.0);
        ui.strong("Health");
        for issue in &summary.issues {
            let (icon, color) = match issue.severity {
                Severity::Error => ("Error:", ui.visuals().error_fg_color),
                Severity::Warning => ("Warning:", ui.visuals().warn_fg_color),
            };
            ui.colored_label(color, format!("{icon} {}", issue.message));
            ui.indent(("issue", &issue.code, &issue.message), |ui| {
                for p in issue.paths.iter().take(PATHS_PER_ISSUE) {
                    ui.label(
                        egui::RichText::new(p.display().to_string())
                            .monospace()
                            .small(),
                    );
                }
                if issue.paths.len() > PATHS_PER_ISSUE {
                    ui.weak(format!("…and {} more", issue.paths.len() - PATHS_PER_ISSUE));
                }
            });
        }
    }
    // Activity data counts sessions (recordings), not samples, and lists no example files: its
    // Session menu below picks any.
    let noun = if summary.facts.contains_key("sessions") {
        "sessions"
    } else {
        "examples"
    };
    for split in &summary.splits {
        ui.add_space(8.0);
        ui.strong(format!(
            "{} — {} {noun}{}",
            split.name,
            crate::ui::thousands(split.num_examples as u64),
            if split.num_skipped > 0 {
                format!(", {} skipped", split.num_skipped)
            } else {
                String::new()
            }
        ));
        let counts: Vec<(String, usize)> = split
            .classes
            .iter()
            .map(|c| (c.label.clone(), c.count))
            .collect();
        class_counts_ui(ui, &format!("counts_{}", split.name), &counts);
        if summary.kind == DataKind::Images {
            egui::CollapsingHeader::new(format!("Examples ({})", split.name))
                .default_open(split.name == "train")
                .show(ui, |ui| {
                    for class in &split.classes {
                        ui.horizontal(|ui| {
                            ui.add_sized([120.0, 48.0], egui::Label::new(&class.label).truncate());
                            for p in class.examples.iter().take(THUMBS_PER_CLASS) {
                                view.thumbnails.show(ui, p, 48.0);
                            }
                        });
                    }
                });
        } else if noun == "examples" {
            for class in &split.classes {
                if let Some(p) = class.examples.first() {
                    ui.weak(format!("{}: {}", class.label, file_name(p)));
                }
            }
        }
    }
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}
