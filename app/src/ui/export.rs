//! The Export screen: one button per format this build writes for the model's task
//! (safetensors; Core ML for the templates the engine exports), where the files went, and
//! "Open folder".

use crate::command::Command;
use crate::state::State;

/// Formats the app knows how to offer, with what they are for.
const FORMATS: [(&str, &str, &str); 3] = [
    (
        "safetensors",
        "Export safetensors",
        "model.safetensors + config.json + preprocessor_config.json: loads in PyTorch / Hugging Face.",
    ),
    (
        "coreml",
        "Export Core ML",
        "A Core ML model for Apple apps.",
    ),
    (
        "onnx",
        "Export ONNX",
        "An ONNX model for ONNX Runtime: Windows, Linux, Android, the web and servers.",
    ),
];

pub fn export_ui(ui: &mut egui::Ui, state: &State, commands: &mut Vec<Command>) {
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
    for (format, button, about) in FORMATS {
        let task = state.template().map(|t| t.task.as_str());
        if !lathe_engine::templates::export::supports_task(format, task) {
            continue;
        }
        ui.horizontal(|ui| {
            if ui
                .add_enabled(!state.exporting, egui::Button::new(button))
                .clicked()
            {
                commands.push(Command::Export(format.to_string()));
            }
            ui.weak(about);
        });
    }
    if state.exporting {
        ui.horizontal(|ui| {
            ui.spinner();
            ui.label("Exporting…");
        });
    }
    if !state.exports.is_empty() {
        ui.add_space(8.0);
        ui.strong("Exported");
        for (format, path) in &state.exports {
            ui.horizontal(|ui| {
                ui.label(format!("{format}:"));
                ui.monospace(path.display().to_string());
                if ui
                    .button("Open folder")
                    .on_hover_text(path.display().to_string())
                    .clicked()
                {
                    commands.push(Command::OpenFolder(path.clone()));
                }
            });
        }
    }
}
