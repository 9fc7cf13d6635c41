//! The screens, one file each, and the frame around them (top bar with the project's tabs,
//! notices, keyboard shortcuts, the modal dialogs). Every function draws from `&State` and turns
//! clicks and keys into [`Command`]s.

pub mod compare;
pub mod data;
pub mod data_activity;
pub mod dialogs;
pub mod evaluate;
pub mod explore;
pub mod export;
pub mod label_fix;
pub mod picker;
pub mod preview;
pub mod preview_activity;
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

/// The keyboard shortcuts: (modifiers, key, what it does). Listed in the order they are matched
/// (Ctrl+Shift+S before Ctrl+S).
pub const SHORTCUTS: [(egui::Modifiers, egui::Key, &str); 6] = [
    (
        egui::Modifiers::COMMAND.plus(egui::Modifiers::SHIFT),
        egui::Key::S,
        "Save project as…",
    ),
    (egui::Modifiers::COMMAND, egui::Key::S, "Save project"),
    (egui::Modifiers::COMMAND, egui::Key::O, "Open project…"),
    (egui::Modifiers::COMMAND, egui::Key::W, "Close project"),
    (egui::Modifiers::COMMAND, egui::Key::Q, "Quit"),
    (egui::Modifiers::COMMAND, egui::Key::Enter, "Start training"),
];

/// "Ctrl+S" (or "⌘S" on a Mac) for a shortcut of [`SHORTCUTS`] by its description.
pub fn shortcut_text(ctx: &egui::Context, what: &str) -> String {
    SHORTCUTS
        .iter()
        .find(|(_, _, w)| *w == what)
        .map(|(m, k, _)| ctx.format_shortcut(&egui::KeyboardShortcut::new(*m, *k)))
        .unwrap_or_default()
}

/// Turns pressed shortcuts into commands (none while a modal dialog is open).
fn shortcuts(ctx: &egui::Context, state: &State, commands: &mut Vec<Command>) {
    if state.modal_open() {
        return;
    }
    let has_project = state.project.is_some();
    for (modifiers, key, what) in SHORTCUTS {
        let command = match what {
            "Save project as…" if has_project => Command::SaveProjectAs,
            "Save project" if has_project => Command::SaveProject,
            "Open project…" => Command::OpenProjectDialog,
            "Close project" if has_project => Command::CloseProject,
            "Quit" => Command::Quit,
            "Start training" if state.ready_to_train() && !state.run_active => {
                Command::StartTraining
            }
            _ => continue,
        };
        if ctx.input_mut(|i| i.consume_shortcut(&egui::KeyboardShortcut::new(modifiers, key))) {
            commands.push(command);
        }
    }
}

/// Draws the whole window.
pub fn studio_ui(ui: &mut egui::Ui, state: &State, view: &mut View, commands: &mut Vec<Command>) {
    shortcuts(ui.ctx(), state, commands);
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
                Screen::Explore => explore::explore_ui(ui, state, view, commands),
                Screen::Preview => preview::preview_ui(ui, state, view, commands),
                Screen::Export => export::export_ui(ui, state, view, commands),
                Screen::Compare => compare::compare_ui(ui, state, commands),
            });
    });
    if let Some(browser) = &state.file_dialog {
        dialogs::file_browser_ui(ui.ctx(), browser, view, commands);
    } else if let Some(action) = state.confirm {
        dialogs::unsaved_ui(ui.ctx(), state, action, commands);
    } else if let Some((request, existing)) = &state.export_replace {
        dialogs::replace_ui(ui.ctx(), request, existing, commands);
    }
}

/// The File menu: open a project or a run, save, close, quit.
fn file_menu_ui(ui: &mut egui::Ui, state: &State, commands: &mut Vec<Command>) {
    let ctx = ui.ctx().clone();
    let has_project = state.project.is_some();
    let mut item = |ui: &mut egui::Ui, label: &str, shortcut: Option<&str>, enabled, command| {
        let mut button = egui::Button::new(label);
        if let Some(what) = shortcut {
            button = button.shortcut_text(shortcut_text(&ctx, what));
        }
        if ui.add_enabled(enabled, button).clicked() {
            commands.push(command);
        }
    };
    ui.menu_button("File", |ui| {
        item(
            ui,
            "Open project…",
            Some("Open project…"),
            true,
            Command::OpenProjectDialog,
        );
        item(ui, "Open run…", None, true, Command::OpenRunDialog);
        ui.separator();
        item(
            ui,
            "Save project",
            Some("Save project"),
            has_project,
            Command::SaveProject,
        );
        item(
            ui,
            "Save project as…",
            Some("Save project as…"),
            has_project,
            Command::SaveProjectAs,
        );
        item(
            ui,
            "Close project",
            Some("Close project"),
            has_project,
            Command::CloseProject,
        );
        ui.separator();
        item(ui, "Quit", Some("Quit"), true, Command::Quit);
    });
}

fn top_bar_ui(ui: &mut egui::Ui, state: &State, commands: &mut Vec<Command>) {
    ui.horizontal(|ui| {
        ui.heading("Lathe Studio");
        file_menu_ui(ui, state, commands);
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
            let ctx = ui.ctx().clone();
            let hint = |what: &str| format!("{what} ({})", shortcut_text(&ctx, what));
            if ui
                .button("Close")
                .on_hover_text(hint("Close project"))
                .clicked()
            {
                commands.push(Command::CloseProject);
            }
            if ui
                .button("Open project…")
                .on_hover_text(hint("Open project…"))
                .clicked()
            {
                commands.push(Command::OpenProjectDialog);
            }
            if ui
                .button("Save as…")
                .on_hover_text(hint("Save project as…"))
                .clicked()
            {
                commands.push(Command::SaveProjectAs);
            }
            if ui
                .button("Save project")
                .on_hover_text(hint("Save project"))
                .clicked()
            {
                commands.push(Command::SaveProject);
            }
        });
    });
}

pub use crate::widgets::format::{count, thousands};

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
        assert_eq!(count(1, "warning"), "1 warning");
        assert_eq!(count(0, "error"), "0 errors");
        assert_eq!(count(2_500, "warning"), "2,500 warnings");
        assert_eq!(duration_text(65.4), "1:05");
        assert_eq!(duration_text(3723.0), "1:02:03");
    }
}
