//! The Data screen's part for an activity project: a menu of the training sessions and the
//! picked one drawn over time (its sensor channels, sample rate and duration). The sessions per
//! activity are the scan's bars above it.

use crate::command::Command;
use crate::state::State;
use crate::widgets::recording_plot::recording_plot_ui;

/// Height of the recording plot.
const PLOT_HEIGHT: f32 = 240.0;

pub fn recordings_ui(ui: &mut egui::Ui, state: &State, commands: &mut Vec<Command>) {
    let Some(recordings) = &state.recordings else {
        return;
    };
    ui.add_space(10.0);
    ui.strong("A recording");
    let sessions = match &recordings.sessions {
        None => {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label("Listing the recordings…");
            });
            return;
        }
        Some(Err(e)) => {
            ui.colored_label(ui.visuals().error_fg_color, e);
            return;
        }
        Some(Ok(s)) => s,
    };
    let selected = sessions.get(recordings.selected);
    ui.horizontal(|ui| {
        let label = ui.label("Session");
        egui::ComboBox::from_id_salt("recording_session")
            .selected_text(
                selected
                    .map(|r| r.name.as_str())
                    .unwrap_or("Choose a session…"),
            )
            .width(280.0)
            .height(400.0)
            .show_ui(ui, |ui| {
                for (i, r) in sessions.iter().enumerate() {
                    if ui
                        .selectable_label(i == recordings.selected, &r.name)
                        .clicked()
                        && i != recordings.selected
                    {
                        commands.push(Command::ShowRecording(i));
                    }
                }
            })
            .response
            .labelled_by(label.id)
            .widget_info(|| egui::WidgetInfo::labeled(egui::Role::ComboBox, true, "Session"));
        ui.weak(format!(
            "{} of {} sessions in the training data",
            recordings.selected + 1,
            sessions.len()
        ));
    });
    match &recordings.shown {
        None => {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label("Reading the recording…");
            });
        }
        Some(Err(e)) => {
            ui.colored_label(ui.visuals().error_fg_color, e);
        }
        Some(Ok(rec)) => {
            ui.label(format!(
                "{} · {} · {:.1} Hz{} · {:.1} s ({} samples)",
                selected.map(|r| r.label.as_str()).unwrap_or(""),
                rec.columns.join(", "),
                rec.sample_rate,
                if rec.rate_measured {
                    " (from its timestamps)"
                } else {
                    " (the sample_rate setting)"
                },
                rec.duration_secs(),
                crate::ui::thousands(rec.len() as u64)
            ));
            recording_plot_ui(ui, "recording_plot", rec, PLOT_HEIGHT);
        }
    }
}
