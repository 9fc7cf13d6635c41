//! The app's modal dialogs: the built-in file browser (used where the system's file dialog does
//! not answer, see [`crate::file_dialog`]), the unsaved-changes prompt and the question before an
//! export replaces an existing file. All draw from `&State` and answer with [`Command`]s; the
//! browser's folder listings come from jobs.

use crate::command::Command;
use crate::file_dialog::{DialogMode, Entry, home_dir, save_target, size_text};
use crate::state::{FileBrowser, State, Unsaved};
use crate::ui::view::View;

/// Height of the browser's list of entries.
const LIST_HEIGHT: f32 = 340.0;

/// The built-in file browser: a path field (Enter goes there; `~` is the home folder), Up and
/// Home, the folder's subfolders and files, a file name field when saving, Cancel (Escape) and
/// the accept button (Enter when no field has the focus).
pub fn file_browser_ui(
    ctx: &egui::Context,
    browser: &FileBrowser,
    view: &mut View,
    commands: &mut Vec<Command>,
) {
    let request = &browser.request;
    let mode = request.mode;
    let shown = browser.shown_dir().to_path_buf();
    let modal = egui::Modal::new(egui::Id::unique("file_browser")).show(ctx, |ui| {
        ui.set_width(660.0);
        ui.heading(&request.title);
        ui.add_space(4.0);
        let mut submitted = false;
        ui.horizontal(|ui| {
            let up = shown.parent().map(std::path::Path::to_path_buf);
            if ui
                .add_enabled(up.is_some(), egui::Button::new("Up"))
                .on_hover_text("The folder above")
                .clicked()
                && let Some(up) = up
            {
                commands.push(Command::BrowseTo(up));
            }
            if let Some(home) = home_dir()
                && ui.button("Home").clicked()
            {
                commands.push(Command::BrowseTo(home));
            }
            let label = ui.label("Path");
            let edit = ui
                .add(
                    egui::TextEdit::singleline(&mut view.dialog_path)
                        .desired_width(f32::INFINITY)
                        .hint_text("a folder or file; ~ is your home folder"),
                )
                .labelled_by(label.id);
            if edit.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter)) {
                commands.push(Command::BrowseTyped(view.dialog_path.clone()));
                submitted = true;
            }
        });
        ui.add_space(4.0);
        egui::Frame::group(ui.style()).show(ui, |ui| {
            egui::ScrollArea::vertical()
                .id_salt(("browser_list", &shown))
                .max_height(LIST_HEIGHT)
                .min_scrolled_height(LIST_HEIGHT)
                .auto_shrink([false, false])
                .show(ui, |ui| match &browser.listing {
                    None => {
                        ui.horizontal(|ui| {
                            ui.spinner();
                            ui.label("Listing…");
                        });
                    }
                    Some(Err(e)) => {
                        ui.colored_label(ui.visuals().error_fg_color, e);
                    }
                    Some(Ok(listing)) if listing.entries.is_empty() => {
                        ui.label("This folder is empty.");
                    }
                    Some(Ok(listing)) => {
                        for entry in &listing.entries {
                            entry_ui(ui, entry, mode, view, commands);
                        }
                    }
                });
        });
        let mut show_hidden = browser.show_hidden;
        if ui.checkbox(&mut show_hidden, "Show hidden files").changed() {
            commands.push(Command::BrowseHidden(show_hidden));
        }
        let save_path = (mode == DialogMode::Save)
            .then(|| save_target(&shown, &view.dialog_name, request))
            .flatten();
        if mode == DialogMode::Save {
            ui.horizontal(|ui| {
                let label = ui.label("File name");
                let edit = ui
                    .add(egui::TextEdit::singleline(&mut view.dialog_name).desired_width(320.0))
                    .labelled_by(label.id);
                if edit.lost_focus()
                    && ui.input(|i| i.key_pressed(egui::Key::Enter))
                    && let Some(p) = &save_path
                {
                    commands.push(Command::BrowseTyped(p.display().to_string()));
                    submitted = true;
                }
            });
        }
        if let Some(problem) = &browser.problem {
            ui.colored_label(ui.visuals().error_fg_color, problem);
        }
        if let Some(existing) = &browser.replace {
            ui.horizontal(|ui| {
                ui.colored_label(
                    ui.visuals().warn_fg_color,
                    format!("{} exists already.", existing.display()),
                );
                if ui.button("Replace it").clicked() {
                    commands.push(Command::BrowseChosen(vec![existing.clone()]));
                }
            });
        }
        ui.add_space(6.0);
        ui.horizontal(|ui| {
            let (label, answer) = accept(mode, &shown, view, save_path.as_ref());
            let listed = matches!(browser.listing, Some(Ok(_)));
            let enter = !submitted
                && ui.input(|i| i.key_pressed(egui::Key::Enter))
                && ui.ctx().memory(|m| m.focused().is_none());
            let can = listed && answer.is_some();
            if (ui.add_enabled(can, egui::Button::new(label)).clicked() || (enter && can))
                && let Some(answer) = answer
            {
                commands.push(answer);
            }
            if ui.button("Cancel").clicked() {
                commands.push(Command::BrowseCancel);
            }
            ui.weak(match mode {
                DialogMode::Folder => "Open a folder by clicking it, then choose it.",
                DialogMode::FolderOrFile => "Choose this folder, or click a file and choose it.",
                DialogMode::File => "Click a file, then choose it (or double-click it).",
                DialogMode::Files => "Click files to select them, then choose them.",
                DialogMode::Save => "Type a file name, then save.",
            });
        });
    });
    if modal.should_close() {
        commands.push(Command::BrowseCancel);
    }
}

/// One listed entry: a folder opens on click; a file the request takes is selected on click
/// (toggled when picking several) and chosen on double-click; other files are shown greyed.
fn entry_ui(
    ui: &mut egui::Ui,
    entry: &Entry,
    mode: DialogMode,
    view: &mut View,
    commands: &mut Vec<Command>,
) {
    ui.horizontal(|ui| {
        if entry.is_dir {
            if ui
                .selectable_label(false, format!("{}/", entry.name))
                .clicked()
            {
                commands.push(Command::BrowseTo(entry.path.clone()));
            }
            return;
        }
        if !entry.offered {
            ui.add_enabled(false, egui::Label::new(&entry.name));
        } else {
            let selected = view.dialog_selected.contains(&entry.path);
            let response = ui.selectable_label(selected, &entry.name);
            if response.double_clicked() && mode != DialogMode::Save {
                commands.push(Command::BrowseChosen(vec![entry.path.clone()]));
            } else if response.clicked() {
                match mode {
                    DialogMode::Files => {
                        if selected {
                            view.dialog_selected.retain(|p| p != &entry.path);
                        } else {
                            view.dialog_selected.push(entry.path.clone());
                        }
                    }
                    DialogMode::Save => view.dialog_name = entry.name.clone(),
                    _ => view.dialog_selected = vec![entry.path.clone()],
                }
            }
        }
        ui.weak(size_text(entry.size));
    });
}

/// The accept button's label and what it sends (`None`: nothing to accept yet).
fn accept(
    mode: DialogMode,
    shown: &std::path::Path,
    view: &View,
    save_path: Option<&std::path::PathBuf>,
) -> (&'static str, Option<Command>) {
    let selected = (!view.dialog_selected.is_empty())
        .then(|| Command::BrowseChosen(view.dialog_selected.clone()));
    match mode {
        DialogMode::Folder => (
            "Choose this folder",
            Some(Command::BrowseChosen(vec![shown.to_path_buf()])),
        ),
        DialogMode::FolderOrFile if selected.is_some() => ("Choose", selected),
        DialogMode::FolderOrFile => (
            "Choose this folder",
            Some(Command::BrowseChosen(vec![shown.to_path_buf()])),
        ),
        DialogMode::File | DialogMode::Files => ("Choose", selected),
        // Saving checks the name first (a file there is replaced only when confirmed).
        DialogMode::Save => (
            "Save",
            save_path.map(|p| Command::BrowseTyped(p.display().to_string())),
        ),
    }
}

/// The unsaved-changes prompt: Save (then do what was asked), Don't save, Cancel (Escape).
pub fn unsaved_ui(
    ctx: &egui::Context,
    state: &State,
    action: Unsaved,
    commands: &mut Vec<Command>,
) {
    let name = state
        .project
        .as_ref()
        .map(|p| match &p.file {
            Some(f) => f.display().to_string(),
            None => p.name.clone(),
        })
        .unwrap_or_default();
    let what = match action {
        Unsaved::Close => "closing it",
        Unsaved::Quit => "quitting",
        Unsaved::Open => "opening another project",
        Unsaved::OpenRun => "opening a run",
    };
    let modal = egui::Modal::new(egui::Id::unique("unsaved_changes")).show(ctx, |ui| {
        ui.set_max_width(460.0);
        ui.heading("Unsaved changes");
        ui.add_space(4.0);
        ui.label(format!(
            "The project \u{201c}{name}\u{201d} has changes that are not saved. Save them before {what}?"
        ));
        ui.add_space(8.0);
        ui.horizontal(|ui| {
            if ui.button("Save").clicked() {
                commands.push(Command::ConfirmSave);
            }
            if ui.button("Don't save").clicked() {
                commands.push(Command::ConfirmDiscard);
            }
            if ui.button("Cancel").clicked() {
                commands.push(Command::ConfirmCancel);
            }
        });
    });
    if modal.should_close() {
        commands.push(Command::ConfirmCancel);
    }
}

/// "Replace the existing file?": an export whose target exists waits here for an answer. Replace
/// exports again with `replace` set; Cancel (Escape) keeps the existing file.
pub fn replace_ui(
    ctx: &egui::Context,
    request: &crate::export_form::ExportRequest,
    existing: &std::path::Path,
    commands: &mut Vec<Command>,
) {
    let name = existing
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let folder = existing
        .parent()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let what = if request.format == "safetensors" {
        "folder"
    } else {
        "file"
    };
    let modal = egui::Modal::new(egui::Id::unique("replace_export")).show(ctx, |ui| {
        ui.set_max_width(520.0);
        ui.heading(format!("Replace the existing {what}?"));
        ui.add_space(4.0);
        ui.label(format!(
            "\u{201c}{name}\u{201d} already exists in {folder}. Replace it with this {} export?",
            crate::export_form::format_title(&request.format)
        ));
        ui.add_space(8.0);
        ui.horizontal(|ui| {
            if ui.button("Replace").clicked() {
                let mut again = request.clone();
                again.replace = true;
                commands.push(Command::Export(again));
            }
            if ui.button("Cancel").clicked() {
                commands.push(Command::KeepExisting);
            }
        });
    });
    if modal.should_close() {
        commands.push(Command::KeepExisting);
    }
}
