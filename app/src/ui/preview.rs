//! The Preview screen: try the trained model. What it takes depends on the task — dropped
//! images, sound files or motion recordings, typed text, or a picked table row — and the predictions are drawn
//! for the task too (see [`super::preview_results`]). Predictions run on background jobs.

use crate::command::Command;
use crate::preview_data::PreviewKind;
use crate::state::State;
use crate::ui::preview_results;
use crate::ui::view::View;
use crate::widgets::drop_zone::{drop_zone_ui, dropped_paths, hover_overlay};

pub fn preview_ui(ui: &mut egui::Ui, state: &State, view: &mut View, commands: &mut Vec<Command>) {
    ui.heading("Preview");
    let kind = state.preview_kind();
    let model = &state.model;
    if model.loading {
        ui.horizontal(|ui| {
            ui.spinner();
            ui.label("Loading the model…");
        });
        return;
    }
    if let Some(e) = &model.error {
        ui.colored_label(ui.visuals().error_fg_color, e);
        return;
    }
    if !model.loaded {
        let what = match kind {
            PreviewKind::Text => "type text here",
            PreviewKind::Table => "pick a row of your table here",
            PreviewKind::Sound => "drop sound files here",
            PreviewKind::Activity => "drop motion recordings (CSV or JSON) here",
            _ => "drop images here",
        };
        ui.label(format!(
            "Train a model first (or open a finished run); then {what} to try it."
        ));
        return;
    }
    match kind {
        PreviewKind::Text => super::preview_text::text_preview_ui(ui, state, view, commands),
        PreviewKind::Table => super::preview_table::table_preview_ui(ui, state, view, commands),
        _ => files_ui(ui, state, view, commands, kind),
    }
}

/// Dropped (or chosen, or typed) files and their predictions.
fn files_ui(
    ui: &mut egui::Ui,
    state: &State,
    view: &mut View,
    commands: &mut Vec<Command>,
    kind: PreviewKind,
) {
    let noun = kind.noun();
    let zone = drop_zone_ui(
        ui,
        "Try the model",
        None,
        &format!("Drop one or more {noun} here, or choose files. Nothing is added to your data."),
        "Choose files…",
    );
    if zone.choose_clicked {
        commands.push(Command::ChoosePreviewFiles);
    }
    ui.horizontal(|ui| {
        let edit = ui.add(
            egui::TextEdit::singleline(&mut view.typed_preview)
                .hint_text("…or type a file path (~ is your home folder)")
                .desired_width(420.0),
        );
        let enter = edit.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
        if (ui.button("Predict").clicked() || enter) && !view.typed_preview.trim().is_empty() {
            let path = crate::file_dialog::typed_path(&view.typed_preview, None);
            commands.push(Command::Predict(vec![path]));
            view.typed_preview.clear();
        }
    });
    let dropped = dropped_paths(ui.ctx());
    if !dropped.is_empty() {
        commands.push(Command::Predict(dropped));
    }
    hover_overlay(
        ui.ctx(),
        &format!("Drop {noun} to preview the model's predictions"),
    );
    if state.predicting {
        ui.horizontal(|ui| {
            ui.spinner();
            ui.label("Predicting…");
        });
    }
    for item in &state.previews {
        ui.add_space(8.0);
        match kind {
            PreviewKind::Detector => preview_results::detection_item_ui(ui, view, item),
            PreviewKind::Sound => preview_results::sound_item_ui(ui, item),
            PreviewKind::Activity => {
                super::preview_activity::activity_item_ui(ui, &state.model.labels, item);
            }
            PreviewKind::MultiLabel => preview_results::multi_label_item_ui(ui, view, item),
            _ => preview_results::image_item_ui(ui, view, item),
        }
    }
}
