//! The Export screen, like Create ML's Output tab: the model's name and where it goes (a typed
//! path, `~` for the home folder, or "Choose…"), its metadata (author, license, description,
//! version — written into the Core ML model and the ONNX `metadata_props`), half-precision
//! weights, and one row per format the engine writes with the file it makes and what it weighs
//! (measured by a trial export), or why this model cannot be exported in it. An existing file is
//! never replaced without asking ([`crate::ui::dialogs::replace_ui`]).

use crate::command::Command;
use crate::export_form::{ExportForm, FORMATS, default_folder, default_name, format_title};
use crate::file_dialog::size_text;
use crate::state::State;
use crate::ui::view::View;

pub fn export_ui(ui: &mut egui::Ui, state: &State, view: &mut View, commands: &mut Vec<Command>) {
    ui.heading("Export");
    let Some(source) = &state.model.source else {
        ui.label("Train a model (or open a finished run) to export it.");
        return;
    };
    ui.horizontal(|ui| {
        ui.label("Trained model in");
        ui.monospace(source.join("model").display().to_string());
        if ui.button("Open folder").clicked() {
            commands.push(Command::OpenFolder(source.join("model")));
        }
    });
    ui.add_space(8.0);
    let name_default = default_name(state.project.as_ref().map(|p| p.name.as_str()));
    let folder_default = default_folder(source);
    view.export_form
        .fill_defaults(source, &name_default, &folder_default);
    form_ui(
        ui,
        &mut view.export_form,
        &name_default,
        &folder_default,
        commands,
    );
    let form = &view.export_form;
    let sizes = state
        .export_sizes
        .as_ref()
        .filter(|s| &s.source == source && s.fp16 == form.fp16);
    if sizes.is_none() && !state.exporting {
        commands.push(Command::MeasureExports { fp16: form.fp16 });
    }
    ui.add_space(10.0);
    let name = form.name_or(&name_default);
    if let Err(why) = &name {
        ui.colored_label(ui.visuals().error_fg_color, why);
    }
    let task = state.template().map(|t| t.task.clone());
    ui.horizontal(|ui| {
        ui.label("Into");
        ui.monospace(form.folder_or(&folder_default).display().to_string());
    });
    egui::Grid::new("export_formats")
        .num_columns(4)
        .spacing([16.0, 8.0])
        .striped(true)
        .show(ui, |ui| {
            ui.strong("Format");
            ui.strong("File");
            ui.strong("Size");
            ui.strong("");
            ui.end_row();
            for (format, button, about) in FORMATS {
                let offered =
                    lathe_engine::templates::export::supports_task(format, task.as_deref());
                let size = sizes.and_then(|s| s.sizes.get(format));
                let refused = match (offered, size) {
                    (false, _) => Some(format!(
                        "{} export is not available for {} models in this build.",
                        format_title(format),
                        state.template().map_or("these", |t| t.title.as_str())
                    )),
                    (true, Some(Err(e))) => Some(format!(
                        "This model cannot be exported as {}: {e}",
                        format_title(format)
                    )),
                    _ => None,
                };
                let request = form.request(format, &name_default, &folder_default);
                let enabled = !state.exporting && refused.is_none() && request.is_ok();
                let clicked = ui
                    .add_enabled(enabled, egui::Button::new(button))
                    .on_hover_text(about)
                    .clicked();
                if clicked && let Ok(r) = &request {
                    commands.push(Command::Export(r.clone()));
                }
                match &request {
                    Ok(r) => {
                        let file = r
                            .target
                            .file_name()
                            .map(|n| n.to_string_lossy().into_owned())
                            .unwrap_or_default();
                        let shown = if format == "safetensors" {
                            format!("{file}/")
                        } else {
                            file
                        };
                        ui.monospace(shown)
                            .on_hover_text(r.target.display().to_string());
                    }
                    Err(_) => {
                        ui.label("");
                    }
                }
                match (&refused, size) {
                    (Some(_), _) => ui.label("\u{2014}"),
                    (None, Some(Ok(bytes))) => ui.label(size_text(*bytes)),
                    (None, _) => ui.weak("measuring…"),
                };
                match &refused {
                    Some(why) => {
                        ui.colored_label(ui.visuals().error_fg_color, why);
                    }
                    None if format == "safetensors" && form.fp16 => {
                        ui.weak("fp16 does not apply: a folder keeps the trained f32 weights.");
                    }
                    None => {
                        ui.weak(about);
                    }
                }
                ui.end_row();
            }
        });
    if state.exporting {
        ui.horizontal(|ui| {
            ui.spinner();
            ui.label("Exporting…");
        });
    }
    if !state.exports.is_empty() {
        ui.add_space(8.0);
        ui.strong("Exported");
        for e in &state.exports {
            ui.horizontal(|ui| {
                ui.label(format!("{}:", e.format));
                ui.monospace(e.path.display().to_string());
                ui.label(size_text(e.bytes));
                // A safetensors export is a folder; Core ML and ONNX write a file.
                let folder = if e.format == "safetensors" {
                    Some(e.path.clone())
                } else {
                    e.path.parent().map(std::path::Path::to_path_buf)
                };
                if let Some(folder) = folder
                    && ui
                        .button("Open folder")
                        .on_hover_text(folder.display().to_string())
                        .clicked()
                {
                    commands.push(Command::OpenFolder(folder));
                }
            });
        }
    }
}

/// A labelled one-line text field.
fn field_ui(ui: &mut egui::Ui, label: &str, text: &mut String, hint: &str) -> egui::Response {
    let l = ui.label(label);
    ui.add_sized(
        [460.0, 22.0],
        egui::TextEdit::singleline(text).hint_text(hint),
    )
    .labelled_by(l.id)
}

/// Name, location, metadata and precision.
fn form_ui(
    ui: &mut egui::Ui,
    form: &mut ExportForm,
    name_default: &str,
    folder_default: &std::path::Path,
    commands: &mut Vec<Command>,
) {
    egui::Grid::new("export_form")
        .num_columns(3)
        .spacing([12.0, 6.0])
        .show(ui, |ui| {
            field_ui(ui, "Model name", &mut form.name, name_default)
                .on_hover_text("Names the files: NAME.mlmodel, NAME.onnx, the folder NAME");
            ui.label("");
            ui.end_row();
            field_ui(
                ui,
                "Save to",
                &mut form.folder,
                &folder_default.display().to_string(),
            )
            .on_hover_text("A folder; ~ is your home folder, and a relative path starts there");
            if ui.button("Choose…").clicked() {
                commands.push(Command::ChooseExportFolder);
            }
            ui.end_row();
            field_ui(ui, "Author", &mut form.author, "Made with Lathe");
            ui.label("");
            ui.end_row();
            field_ui(
                ui,
                "License",
                &mut form.license,
                "none (Core ML: the backbone's license note)",
            );
            ui.label("");
            ui.end_row();
            field_ui(
                ui,
                "Description",
                &mut form.description,
                "written from the model: its classes or columns",
            );
            ui.label("");
            ui.end_row();
            field_ui(ui, "Version", &mut form.version, "1.0");
            ui.label("");
            ui.end_row();
            ui.label("");
            ui.checkbox(&mut form.fp16, "Half-precision weights (fp16)")
                .on_hover_text(
                    "Half the size of Core ML and ONNX files (ONNX still computes in f32); a safetensors folder keeps f32",
                );
            ui.label("");
            ui.end_row();
        });
    ui.weak(
        "Author, license, description and version are written into the Core ML model and the ONNX metadata_props (and a safetensors folder's manifest.json); empty fields keep the defaults shown.",
    );
}
