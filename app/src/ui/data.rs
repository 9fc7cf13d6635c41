//! The data screen: drop zones (or "Choose folder…") for training, validation and test data,
//! then what the background scan found: counts per class, thumbnails, health warnings.

use crate::command::{Command, DataSlot, Screen};
use crate::state::{ScanState, State};
use crate::ui::view::View;
use crate::widgets::bars::class_counts_ui;
use crate::widgets::drop_zone::{drop_zone_ui, dropped_paths, hover_overlay};
use lathe_engine::data::{DataKind, DatasetSummary, Severity};
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
        .map(|t| t.data_hint.clone())
        .unwrap_or_default();
    ui.heading("Data");
    if let Some(t) = state.template() {
        ui.label(&t.data_layout);
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
            if state.preview_kind() == crate::preview_data::PreviewKind::Table {
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
        typed_path_ui(ui, slot, view, commands);
        zones.push((slot, zone.rect));
        ui.add_space(4.0);
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
            ui.colored_label(ui.visuals().error_fg_color, e);
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
        }
    }
}

fn typed_path_ui(ui: &mut egui::Ui, slot: DataSlot, view: &mut View, commands: &mut Vec<Command>) {
    ui.horizontal(|ui| {
        let text = view.typed_paths.entry(slot.split()).or_default();
        let edit = ui.add(
            egui::TextEdit::singleline(text)
                .hint_text("…or type a folder path")
                .desired_width(420.0),
        );
        let enter = edit.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
        if (ui.button("Use").clicked() || enter) && !text.trim().is_empty() {
            commands.push(Command::SetData(slot, Some(text.trim().into())));
            text.clear();
        }
    });
}

/// The scan's findings.
pub fn summary_ui(ui: &mut egui::Ui, summary: &DatasetSummary, view: &mut View) {
    ui.add_space(4.0);
    let errors = summary.errors().count();
    let warnings = summary.warnings().count();
    ui.label(format!(
        "{} classes · {} · {} error(s), {} warning(s)",
        summary.labels.len(),
        summary
            .splits
            .iter()
            .map(|s| format!("{} {}", crate::ui::thousands(s.num_examples as u64), s.name))
            .collect::<Vec<_>>()
            .join(", "),
        errors,
        warnings
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
    for split in &summary.splits {
        ui.add_space(8.0);
        ui.strong(format!(
            "{} — {} examples{}",
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
        } else {
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
