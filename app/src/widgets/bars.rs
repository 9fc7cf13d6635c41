//! Horizontal bars with a label and a value: class counts on the data screen, probabilities on
//! the preview screen, precision/recall in tables.

/// One labelled bar: `fraction` (0–1) of `width` filled, `value_text` after it.
pub fn bar_row_ui(
    ui: &mut egui::Ui,
    fraction: f32,
    width: f32,
    color: egui::Color32,
    value_text: &str,
) {
    let height = ui.text_style_height(&egui::TextStyle::Body);
    let (rect, _) = ui.allocate_exact_size(egui::vec2(width, height), egui::Sense::hover());
    let painter = ui.painter();
    painter.rect_filled(rect, 3.0, ui.visuals().faint_bg_color);
    let mut filled = rect;
    filled.set_width(rect.width() * fraction.clamp(0.0, 1.0));
    painter.rect_filled(filled, 3.0, color);
    ui.label(value_text);
}

/// Class counts as a bar chart (label, bar, count), bars scaled to the largest class.
pub fn class_counts_ui(ui: &mut egui::Ui, id: &str, counts: &[(String, usize)]) {
    let max = counts.iter().map(|c| c.1).max().unwrap_or(0).max(1);
    let color = ui.visuals().selection.bg_fill;
    egui::Grid::new(id)
        .num_columns(2)
        .spacing([12.0, 4.0])
        .show(ui, |ui| {
            for (label, count) in counts {
                ui.label(label);
                ui.horizontal(|ui| {
                    bar_row_ui(
                        ui,
                        *count as f32 / max as f32,
                        240.0,
                        color,
                        &crate::widgets::format::thousands(*count as u64),
                    );
                });
                ui.end_row();
            }
        });
}
