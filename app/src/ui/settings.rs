//! The settings form, generated from the task's parameter specs: one row per parameter,
//! grouped as the task groups them, with the template's defaults, ranges and help.

use crate::command::{Command, Screen};
use crate::state::State;
use crate::widgets::format::plain_words;
use lathe_engine::params::{ParamKind, ParamSpec, ParamValue};

/// Devices offered (the engine reports which work on this machine when training starts).
const DEVICES: [&str; 4] = ["cpu", "auto", "cuda", "metal"];

pub fn settings_ui(ui: &mut egui::Ui, state: &State, commands: &mut Vec<Command>) {
    let Some(project) = &state.project else {
        return;
    };
    ui.heading("Settings");
    ui.label("Defaults come from the template; changed values are saved in the project.");
    ui.add_space(6.0);
    egui::CollapsingHeader::new("Run")
        .default_open(true)
        .show(ui, |ui| {
            egui::Grid::new("run_settings")
                .num_columns(2)
                .spacing([16.0, 6.0])
                .show(ui, |ui| {
                    let label = ui.label("Seed");
                    let mut seed = project.seed;
                    if ui
                        .add(egui::DragValue::new(&mut seed))
                        .labelled_by(label.id)
                        .on_hover_text("The same seed gives the same split and the same model.")
                        .changed()
                    {
                        commands.push(Command::SetSeed(seed));
                    }
                    ui.end_row();
                    ui.label("Device");
                    egui::ComboBox::from_id_salt("device")
                        .selected_text(&project.device)
                        .show_ui(ui, |ui| {
                            for d in DEVICES {
                                if ui.selectable_label(project.device == d, d).clicked() {
                                    commands.push(Command::SetDevice(d.to_string()));
                                }
                            }
                        })
                        .response
                        .widget_info(|| {
                            egui::WidgetInfo::labeled(egui::Role::ComboBox, true, "Device")
                        });
                    ui.end_row();
                });
        });
    let mut groups: Vec<&str> = Vec::new();
    for s in &state.specs {
        if !groups.contains(&s.group.as_str()) {
            groups.push(&s.group);
        }
    }
    for group in groups {
        egui::CollapsingHeader::new(group)
            .default_open(true)
            .show(ui, |ui| {
                egui::Grid::new(("params", group))
                    .num_columns(3)
                    .spacing([16.0, 6.0])
                    .striped(true)
                    .show(ui, |ui| {
                        for spec in state.specs.iter().filter(|s| s.group == group) {
                            param_row_ui(ui, state, spec, commands);
                            ui.end_row();
                        }
                    });
            });
    }
    ui.add_space(8.0);
    if ui.button("Next: Train").clicked() {
        commands.push(Command::Show(Screen::Train));
    }
}

fn param_row_ui(ui: &mut egui::Ui, state: &State, spec: &ParamSpec, commands: &mut Vec<Command>) {
    let help = plain_words(&spec.help);
    let label = ui.label(&spec.label).on_hover_text(&help);
    let value = state
        .param(&spec.key)
        .unwrap_or_else(|| spec.default.clone());
    let mut changed: Option<ParamValue> = None;
    let mut reset = false;
    ui.horizontal(|ui| {
        // A table's target: a dropdown of its columns, once the data has been read.
        if spec.key == "target"
            && let Some(Ok(columns)) = &state.table_columns
        {
            crate::ui::data::target_combo_ui(ui, columns, label.id, commands);
        } else {
            changed = value_ui(ui, spec, &value, label.id);
        }
        let overridden = state
            .project
            .as_ref()
            .is_some_and(|p| p.params.contains_key(&spec.key));
        if overridden
            && ui
                .small_button("Reset")
                .on_hover_text("Back to the template's default")
                .clicked()
        {
            reset = true;
        }
    });
    ui.weak(&help);
    if let Some(value) = changed {
        commands.push(Command::SetParam {
            key: spec.key.clone(),
            value,
        });
    }
    if reset {
        commands.push(Command::ResetParam(spec.key.clone()));
    }
}

/// The editor of one parameter's value; the new value when it changed.
fn value_ui(
    ui: &mut egui::Ui,
    spec: &ParamSpec,
    value: &ParamValue,
    label: egui::Id,
) -> Option<ParamValue> {
    match (&spec.kind, value) {
        (ParamKind::Bool, ParamValue::Bool(b)) => {
            let mut b = *b;
            ui.checkbox(&mut b, "")
                .labelled_by(label)
                .changed()
                .then_some(ParamValue::Bool(b))
        }
        (ParamKind::Int { min, max }, ParamValue::Int(i)) => {
            let mut i = *i;
            ui.add(egui::DragValue::new(&mut i).range(*min..=*max))
                .labelled_by(label)
                .changed()
                .then_some(ParamValue::Int(i))
        }
        (ParamKind::Float { min, max }, ParamValue::Float(f)) => {
            let mut f = *f;
            let speed = ((max - min) / 1000.0).clamp(1e-6, 1.0);
            ui.add(
                egui::DragValue::new(&mut f)
                    .range(*min..=*max)
                    .speed(speed)
                    .max_decimals(6),
            )
            .labelled_by(label)
            .changed()
            .then_some(ParamValue::Float(f))
        }
        (ParamKind::Choice { options }, ParamValue::Text(current)) => {
            let mut picked = None;
            egui::ComboBox::from_id_salt(("choice", &spec.key))
                .selected_text(current.as_str())
                .show_ui(ui, |ui| {
                    for o in options {
                        if ui.selectable_label(o == current, o).clicked() {
                            picked = Some(ParamValue::Text(o.clone()));
                        }
                    }
                })
                .response
                .widget_info(|| egui::WidgetInfo::labeled(egui::Role::ComboBox, true, &spec.label));
            picked
        }
        (_, v) => {
            let mut text = v.display();
            ui.add(egui::TextEdit::singleline(&mut text).desired_width(240.0))
                .labelled_by(label)
                .changed()
                .then_some(ParamValue::Text(text))
        }
    }
}
