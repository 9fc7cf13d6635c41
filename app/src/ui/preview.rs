//! The Preview screen: drop images (or choose files) and see the model's top predictions with
//! probability bars.

use crate::app::View;
use crate::command::Command;
use crate::state::State;
use crate::widgets::bars::bar_row_ui;
use crate::widgets::drop_zone::{drop_zone_ui, dropped_paths, hover_overlay};

/// Predictions shown per input.
const TOP_K: usize = 5;

pub fn preview_ui(ui: &mut egui::Ui, state: &State, view: &mut View, commands: &mut Vec<Command>) {
    ui.heading("Preview");
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
        ui.label("Train a model first (or open a finished run); then drop images here to try it.");
        return;
    }
    let zone = drop_zone_ui(
        ui,
        "Try the model",
        None,
        "Drop one or more images here, or choose files. Nothing is added to your data.",
        "Choose files…",
    );
    if zone.choose_clicked {
        commands.push(Command::ChoosePreviewFiles);
    }
    ui.horizontal(|ui| {
        ui.add(
            egui::TextEdit::singleline(&mut view.typed_preview)
                .hint_text("…or type a file path")
                .desired_width(420.0),
        );
        if ui.button("Predict").clicked() && !view.typed_preview.trim().is_empty() {
            commands.push(Command::Predict(vec![view.typed_preview.trim().into()]));
            view.typed_preview.clear();
        }
    });
    let dropped = dropped_paths(ui.ctx());
    if !dropped.is_empty() {
        commands.push(Command::Predict(dropped));
    }
    hover_overlay(ui.ctx(), "Drop images to preview the model's predictions");
    if state.predicting {
        ui.horizontal(|ui| {
            ui.spinner();
            ui.label("Predicting…");
        });
    }
    let color = ui.visuals().selection.bg_fill;
    for item in &state.previews {
        ui.add_space(8.0);
        ui.horizontal_top(|ui| {
            view.thumbnails.show(ui, &item.input, 128.0);
            ui.vertical(|ui| {
                ui.monospace(item.input.display().to_string());
                match &item.result {
                    Ok(p) => {
                        ui.strong(format!("Prediction: {}", p.label));
                        if let Some(v) = p.value {
                            ui.label(format!("value {v:.4}"));
                        }
                        egui::Grid::new(("probs", item.input.display().to_string()))
                            .num_columns(2)
                            .spacing([12.0, 4.0])
                            .show(ui, |ui| {
                                for (label, prob) in p.ranked.iter().take(TOP_K) {
                                    ui.label(label);
                                    ui.horizontal(|ui| {
                                        bar_row_ui(
                                            ui,
                                            *prob,
                                            220.0,
                                            color,
                                            &format!("{:.1}%", prob * 100.0),
                                        )
                                    });
                                    ui.end_row();
                                }
                            });
                    }
                    Err(e) => {
                        ui.colored_label(ui.visuals().error_fg_color, e);
                    }
                }
            });
        });
    }
}
