//! The screens, one file each, and the frame around them (top bar with the project's tabs,
//! notices). Every function draws from `&State` and turns clicks into [`Command`]s.

pub mod data;
pub mod evaluate;
pub mod export;
pub mod picker;
pub mod preview;
pub mod preview_results;
pub mod preview_table;
pub mod preview_text;
pub mod runs;
pub mod settings;
pub mod train;
pub mod view;

use crate::command::{Command, Screen};
use crate::state::State;
use crate::ui::view::View;

/// Draws the whole window.
pub fn studio_ui(ui: &mut egui::Ui, state: &State, view: &mut View, commands: &mut Vec<Command>) {
    egui::Panel::top("top_bar").show(ui, |ui| top_bar_ui(ui, state, commands));
    if runs::banner_wanted(state) {
        egui::Panel::top("runs_banner").show(ui, |ui| runs::banner_ui(ui, state, view, commands));
    }
    if let Some(notice) = &state.notice {
        egui::Panel::bottom("notice").show(ui, |ui| {
            ui.horizontal(|ui| {
                let color = if notice.error {
                    ui.visuals().error_fg_color
                } else {
                    ui.visuals().text_color()
                };
                ui.colored_label(color, &notice.text);
                if ui.small_button("Dismiss").clicked() {
                    commands.push(Command::DismissNotice);
                }
            });
        });
    }
    egui::CentralPanel::default().show(ui, |ui| {
        egui::ScrollArea::vertical()
            .auto_shrink([false, false])
            .show(ui, |ui| match state.screen {
                Screen::Templates => picker::picker_ui(ui, state, commands),
                Screen::Data => data::data_ui(ui, state, view, commands),
                Screen::Settings => settings::settings_ui(ui, state, commands),
                Screen::Train => train::train_ui(ui, state, view, commands),
                Screen::Evaluate => evaluate::evaluate_ui(ui, state, view, commands),
                Screen::Preview => preview::preview_ui(ui, state, view, commands),
                Screen::Export => export::export_ui(ui, state, commands),
            });
    });
}

fn top_bar_ui(ui: &mut egui::Ui, state: &State, commands: &mut Vec<Command>) {
    ui.horizontal(|ui| {
        ui.heading("Lathe Studio");
        let Some(project) = &state.project else {
            return;
        };
        ui.separator();
        let title = state.template().map(|t| t.title.as_str()).unwrap_or("");
        let name = match &project.file {
            Some(f) => f.display().to_string(),
            None => format!("{title} (unsaved)"),
        };
        ui.label(if state.dirty {
            format!("{name} (modified)")
        } else {
            name
        });
        ui.separator();
        for screen in Screen::TABS {
            if ui
                .selectable_label(state.screen == screen, screen.title())
                .clicked()
            {
                commands.push(Command::Show(screen));
            }
        }
        ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
            if ui.button("Close").clicked() {
                commands.push(Command::CloseProject);
            }
            if ui.button("Open project…").clicked() {
                commands.push(Command::OpenProjectDialog);
            }
            if ui.button("Save project").clicked() {
                commands.push(Command::SaveProject);
            }
        });
    });
}

pub use crate::widgets::format::thousands;

/// "1:05" or "1:02:03".
pub fn duration_text(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_well() {
        assert_eq!(thousands(6000), "6,000");
        assert_eq!(thousands(1_204_000), "1,204,000");
        assert_eq!(thousands(12), "12");
        assert_eq!(duration_text(65.4), "1:05");
        assert_eq!(duration_text(3723.0), "1:02:03");
    }
}
