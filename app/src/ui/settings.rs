//! The settings form, generated from the task's parameter specs: a **Basic** section (what
//! Create ML shows: iterations, augmentations, the validation share, the algorithm or backbone,
//! the device) and an **Advanced** one, collapsed by default, with the rest grouped as the task
//! groups them. Fields that do not apply with the choices made (MLP fields for a logistic head)
//! are hidden; shares are edited as percentages ([`crate::settings_layout`]).

use crate::command::{Command, Screen};
use crate::settings_layout::{applies, from_percent, is_basic, is_share, to_percent};
use crate::state::State;
use crate::widgets::format::plain_words;
use lathe_engine::params::{ParamKind, ParamSpec, ParamValue};

pub fn settings_ui(ui: &mut egui::Ui, state: &State, commands: &mut Vec<Command>) {
    let Some(project) = &state.project else {
        return;
    };
    ui.heading("Settings");
    ui.label("Defaults come from the template; changed values are saved in the project.");
    ui.add_space(6.0);
    let template = project.template.as_str();
    let value = |k: &str| state.param(k);
    let shown: Vec<&ParamSpec> = state
        .specs
        .iter()
        .filter(|s| applies(template, &s.key, &value))
        .collect();
    let hidden: Vec<&str> = state
        .specs
        .iter()
        .filter(|s| !applies(template, &s.key, &value))
        .map(|s| s.label.as_str())
        .collect();
    ui.label(egui::RichText::new("Basic").strong().size(16.0));
    egui::Grid::new("basic_settings")
        .num_columns(3)
        .spacing([16.0, 6.0])
        .striped(true)
        .show(ui, |ui| {
            for spec in shown.iter().filter(|s| is_basic(template, &s.key)) {
                param_row_ui(ui, state, spec, commands);
                ui.end_row();
            }
            device_row_ui(ui, state, &project.device, commands);
            ui.end_row();
        });
    ui.add_space(8.0);
    let advanced: Vec<&ParamSpec> = shown
        .iter()
        .copied()
        .filter(|s| !is_basic(template, &s.key))
        .collect();
    egui::CollapsingHeader::new(egui::RichText::new("Advanced").strong().size(16.0))
        .id_salt("advanced_settings")
        .default_open(false)
        .show(ui, |ui| {
            let mut groups: Vec<&str> = Vec::new();
            for s in &advanced {
                if !groups.contains(&s.group.as_str()) {
                    groups.push(&s.group);
                }
            }
            // One grid, so every group's columns line up; a group's name heads its rows.
            egui::Grid::new("advanced_params")
                .num_columns(3)
                .spacing([16.0, 6.0])
                .striped(true)
                .show(ui, |ui| {
                    for group in groups {
                        ui.label(egui::RichText::new(group).strong());
                        ui.end_row();
                        for spec in advanced.iter().filter(|s| s.group == group) {
                            param_row_ui(ui, state, spec, commands);
                            ui.end_row();
                        }
                    }
                    ui.label(egui::RichText::new("Run").strong());
                    ui.end_row();
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
                    ui.weak("The same seed gives the same split and the same model.");
                    ui.end_row();
                });
            if !hidden.is_empty() {
                ui.add_space(4.0);
                ui.weak(format!(
                    "Not shown, as they do not apply with the choices above: {}.",
                    hidden.join(", ")
                ));
            }
        });
    ui.add_space(8.0);
    if ui.button("Next: Train").clicked() {
        commands.push(Command::Show(Screen::Train));
    }
}

/// The Device menu: only the devices this build can use. A project asking for another one (made
/// on a GPU machine) keeps its choice shown, with what to do about it.
fn device_row_ui(ui: &mut egui::Ui, state: &State, current: &str, commands: &mut Vec<Command>) {
    ui.label("Device");
    // `auto` always works (it falls back to the CPU); `cuda:1` where `cuda` does.
    let family = current.split(':').next().unwrap_or_default();
    let usable = matches!(current, "" | "auto") || state.devices.iter().any(|d| d == family);
    egui::ComboBox::from_id_salt("device")
        .selected_text(current)
        .show_ui(ui, |ui| {
            for d in &state.devices {
                if ui.selectable_label(current == d, d).clicked() {
                    commands.push(Command::SetDevice(d.clone()));
                }
            }
        })
        .response
        .widget_info(|| egui::WidgetInfo::labeled(egui::Role::ComboBox, true, "Device"));
    if usable {
        ui.weak(if state.devices.len() == 1 {
            "This build of Lathe trains on the CPU (no CUDA or Metal GPU found)."
        } else {
            "auto uses the GPU when it opens, else the CPU."
        });
    } else {
        ui.colored_label(
            ui.visuals().error_fg_color,
            format!("This build cannot use \"{current}\"; choose one of the devices listed."),
        );
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
    // One line; the whole sentence on hover (a long help must not widen the form).
    ui.add(egui::Label::new(egui::RichText::new(&help).weak()).truncate())
        .on_hover_text(&help);
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
        (ParamKind::Float { min, max }, ParamValue::Float(f)) if is_share(&spec.key) => {
            let mut percent = to_percent(*f);
            ui.add(
                egui::DragValue::new(&mut percent)
                    .range(to_percent(*min)..=to_percent(*max))
                    .speed(0.5)
                    .custom_formatter(|v, _| crate::settings_layout::percent_text(v))
                    .suffix(" %"),
            )
            .labelled_by(label)
            .changed()
            .then_some(ParamValue::Float(from_percent(percent)))
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
