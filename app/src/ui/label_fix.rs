//! The fix-a-label actions shared by the Mistakes view (Evaluate) and the explorer's lists: for a
//! sample of a folder dataset, **Move to <class>** (the suggested class) and a menu of the other
//! classes — the file moves into that class folder, never over another file — and once moved,
//! "Moved to <class>" with **Undo**.

use crate::command::Command;
use crate::state::State;
use std::path::{Path, PathBuf};

/// The file name of `path`.
pub fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Where the sample named `input` (as the report or exploration names it) is now: where a fix
/// moved it, else where it was.
pub fn current_path<'a>(state: &'a State, input: &'a Path) -> &'a Path {
    state
        .label_fixes
        .iter()
        .find(|f| f.from == input)
        .map_or(input, |f| f.to.as_path())
}

/// The actions for the sample `input`, filed under `label`: "Moved to …" and Undo once fixed;
/// otherwise "Move to `suggested`" (when given) and a menu of the other classes, when the file
/// sits in a class folder of `folders`; otherwise a line saying why it cannot be moved.
#[allow(clippy::too_many_arguments)]
pub fn fix_label_ui(
    ui: &mut egui::Ui,
    input: &Path,
    label: &str,
    suggested: Option<&str>,
    labels: &[String],
    folders: &[PathBuf],
    state: &State,
    commands: &mut Vec<Command>,
) {
    let busy = state.fixing || state.run_active;
    // A sample fixed here, or (the data read again since) the file a fix moved.
    if let Some(fix) = state
        .label_fixes
        .iter()
        .find(|f| f.from == input || f.to == input)
    {
        ui.horizontal(|ui| {
            ui.strong(format!("Moved to {}", fix.new_label));
            let undo = ui.add_enabled(!busy, egui::Button::new("Undo"));
            let file = file_name(&fix.to);
            undo.widget_info(|| {
                egui::WidgetInfo::labeled(egui::Role::Button, !busy, format!("Undo moving {file}"))
            });
            if undo
                .on_hover_text(format!("Move it back to {}", fix.from.display()))
                .clicked()
            {
                commands.push(Command::UndoFix(fix.to.clone()));
            }
        });
        return;
    }
    if crate::mistakes::class_root(input, label, folders).is_none() {
        ui.weak("Not in a class folder of this project's data");
        return;
    }
    let file = file_name(input);
    let fix_to = |class: &str| Command::FixLabel {
        input: input.to_path_buf(),
        label: label.to_string(),
        class: class.to_string(),
    };
    let suggested = suggested.filter(|s| *s != label);
    if let Some(class) = suggested {
        let button = ui
            .add_enabled(!busy, egui::Button::new(format!("Move to {class}")))
            .on_hover_text(format!(
                "Move the file into the {class} folder (its name kept, or a free one); \
                 train again afterwards"
            ));
        button.widget_info(|| {
            egui::WidgetInfo::labeled(egui::Role::Button, !busy, format!("Move {file} to {class}"))
        });
        if button.clicked() {
            commands.push(fix_to(class));
        }
    }
    let others: Vec<&String> = labels
        .iter()
        .filter(|l| l.as_str() != label && Some(l.as_str()) != suggested)
        .collect();
    if !others.is_empty() {
        let title = if suggested.is_some() {
            "Other class…"
        } else {
            "Move to another class…"
        };
        ui.add_enabled_ui(!busy, |ui| {
            ui.menu_button(title, |ui| {
                for class in others {
                    if ui.button(format!("Move to {class}")).clicked() {
                        commands.push(fix_to(class));
                    }
                }
            });
        });
    }
}
