//! How a previewed motion recording is drawn (activity models): its sensor channels over time,
//! the strip under them coloured by the activity predicted for each window, and the session's
//! overall prediction with its class bars.

use crate::state::PreviewItem;
use crate::ui::preview_results::{TOP_K, class_bars_ui};
use crate::widgets::recording_plot::{activity_strip_ui, recording_plot_ui, stretches};

/// Height of a previewed recording's plot.
const PLOT_HEIGHT: f32 = 200.0;

pub fn activity_item_ui(ui: &mut egui::Ui, labels: &[String], item: &PreviewItem) {
    ui.monospace(item.input.display().to_string());
    if let Some(preview) = &item.activity {
        match &preview.recording {
            Ok(rec) => {
                let id = format!("preview_recording_{}", item.input.display());
                let transform = recording_plot_ui(ui, &id, rec, PLOT_HEIGHT);
                let parts = stretches(&preview.windows, labels, rec.sample_rate);
                if !parts.is_empty() {
                    activity_strip_ui(ui, &transform, &parts);
                    ui.weak(format!(
                        "{} windows of {} samples; each band is the activity of the windows centred there",
                        preview.windows.len(),
                        preview.windows.first().map_or(0, |w| w.end - w.start)
                    ));
                }
            }
            Err(e) => {
                ui.colored_label(ui.visuals().error_fg_color, e);
            }
        }
    }
    match &item.result {
        Ok(p) => {
            let confidence = p.ranked.first().map_or(0.0, |r| r.1);
            ui.strong(format!("Session: {} ({:.0}%)", p.label, 100.0 * confidence));
            class_bars_ui(
                ui,
                ("activity", item.input.display().to_string()),
                &p.ranked,
                TOP_K,
                None,
            );
        }
        Err(e) => {
            ui.colored_label(ui.visuals().error_fg_color, e);
        }
    }
}
