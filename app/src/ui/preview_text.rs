//! A text model's Preview: type text and see the top labels with probability bars. Predictions
//! follow the typing: a short pause after the last keystroke sends the text to a background
//! job, and the last result stays on screen until the next arrives.

use crate::command::Command;
use crate::state::State;
use crate::ui::preview_results::{TOP_K, class_bars_ui};
use crate::ui::view::View;
use std::time::{Duration, Instant};

/// Widest the text box grows (long lines are hard to read).
const TEXT_WIDTH: f32 = 760.0;
/// Quiet time after the last keystroke before the text is predicted.
pub const DEBOUNCE: Duration = Duration::from_millis(300);

pub fn text_preview_ui(
    ui: &mut egui::Ui,
    state: &State,
    view: &mut View,
    commands: &mut Vec<Command>,
) {
    let label = ui.label("Text to classify");
    let edit = ui.add(
        egui::TextEdit::multiline(&mut view.typed_text)
            .hint_text("Type or paste a message, a review, a mail… predictions follow as you type.")
            .desired_rows(6)
            .desired_width(ui.available_width().min(TEXT_WIDTH)),
    );
    let edit = edit.labelled_by(label.id);
    if edit.changed() {
        view.text_edited = Some(Instant::now());
    }
    if let Some(at) = view.text_edited {
        let waited = at.elapsed();
        if waited >= DEBOUNCE {
            view.text_edited = None;
            commands.push(Command::PredictText(view.typed_text.clone()));
        } else {
            ui.ctx().request_repaint_after(DEBOUNCE - waited);
        }
    }
    ui.horizontal(|ui| {
        if ui.button("Clear").clicked() {
            view.typed_text.clear();
            view.text_edited = None;
            commands.push(Command::PredictText(String::new()));
        }
        if state.predicting || view.text_edited.is_some() {
            ui.spinner();
        }
    });
    ui.add_space(8.0);
    match &state.text_preview {
        None => {
            ui.weak("Predictions appear here.");
        }
        Some(preview) => match &preview.result {
            Ok(p) => {
                ui.strong(format!("Prediction: {}", p.label));
                class_bars_ui(ui, "text-probs", &p.ranked, TOP_K, None);
                if preview.text != view.typed_text {
                    ui.weak("(for the text as it was a moment ago)");
                }
            }
            Err(e) => {
                ui.colored_label(ui.visuals().error_fg_color, e);
            }
        },
    }
}
