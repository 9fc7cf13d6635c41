//! A table model's Preview: the first rows of the test (or validation, or training) table in a
//! small grid — click one to predict it — and a form with the row's values to edit and predict
//! again. Classifiers show class bars, regressors the predicted value.

use crate::command::Command;
use crate::state::State;
use crate::ui::preview_results::{TOP_K, class_bars_ui};
use crate::ui::view::View;

pub fn table_preview_ui(
    ui: &mut egui::Ui,
    state: &State,
    view: &mut View,
    commands: &mut Vec<Command>,
) {
    let rows = match &state.table_rows {
        None => {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label("Reading the table…");
            });
            return;
        }
        Some(Err(e)) => {
            ui.colored_label(ui.visuals().error_fg_color, e);
            return;
        }
        Some(Ok(rows)) => rows,
    };
    if view.row_values.len() != rows.columns.len() {
        view.row_values = rows.rows.first().cloned().unwrap_or_default();
        view.row_values.resize(rows.columns.len(), String::new());
        view.picked_row = None;
    }
    ui.label(format!(
        "Click a row of the {} data ({}) to predict it, or edit the values below.",
        rows.split,
        rows.path.display()
    ));
    ui.add_space(4.0);
    egui::ScrollArea::horizontal()
        .id_salt("preview-rows")
        .show(ui, |ui| {
            egui::Grid::new("preview-rows-grid")
                .striped(true)
                .spacing([14.0, 4.0])
                .show(ui, |ui| {
                    ui.strong("Row");
                    for (i, c) in rows.columns.iter().enumerate() {
                        if rows.is_target(i) {
                            ui.strong(format!("{c} (actual)"));
                        } else {
                            ui.strong(c);
                        }
                    }
                    ui.end_row();
                    for (r, cells) in rows.rows.iter().enumerate() {
                        let picked = view.picked_row == Some(r);
                        if ui
                            .selectable_label(picked, format!("Row {}", r + 1))
                            .clicked()
                        {
                            view.picked_row = Some(r);
                            view.row_values = cells.clone();
                            commands.push(Command::PredictRow(cells.clone()));
                        }
                        for cell in cells {
                            ui.label(cell);
                        }
                        ui.end_row();
                    }
                });
        });
    ui.add_space(8.0);
    ui.horizontal_top(|ui| {
        ui.vertical(|ui| {
            ui.strong(match view.picked_row {
                Some(r) => format!("Values (from row {}; edit them and predict again)", r + 1),
                None => "Values".to_string(),
            });
            egui::Grid::new("preview-row-form")
                .num_columns(2)
                .spacing([12.0, 4.0])
                .show(ui, |ui| {
                    for (i, c) in rows.columns.iter().enumerate() {
                        if rows.is_target(i) {
                            continue;
                        }
                        let label = ui.label(c);
                        if let Some(v) = view.row_values.get_mut(i) {
                            ui.add(
                                egui::TextEdit::singleline(v)
                                    .hint_text("missing")
                                    .desired_width(160.0),
                            )
                            .labelled_by(label.id);
                        }
                        ui.end_row();
                    }
                });
            ui.horizontal(|ui| {
                if ui.button("Predict this row").clicked() {
                    commands.push(Command::PredictRow(view.row_values.clone()));
                }
                if state.predicting {
                    ui.spinner();
                }
            });
        });
        ui.add_space(24.0);
        ui.vertical(|ui| match &state.row_prediction {
            None => {
                ui.weak("Pick a row to see its prediction.");
            }
            Some(Ok(p)) => match p.value {
                Some(v) => {
                    ui.strong(format!("Predicted value: {}", format_value(v)));
                }
                None => {
                    ui.strong(format!("Prediction: {}", p.label));
                    class_bars_ui(ui, "row-probs", &p.ranked, TOP_K, None);
                }
            },
            Some(Err(e)) => {
                ui.colored_label(ui.visuals().error_fg_color, e);
            }
        });
    });
}

/// A regressor's value with as many digits as its size asks for.
fn format_value(v: f64) -> String {
    if v.abs() >= 1000.0 {
        format!("{v:.1}")
    } else if v.abs() >= 1.0 {
        format!("{v:.3}")
    } else {
        format!("{v:.4}")
    }
}
