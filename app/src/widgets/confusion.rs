//! The confusion matrix as a clickable heatmap: rows are true classes, columns predictions,
//! shaded by the share of the row; clicking a cell selects it (the screen lists its samples).

/// Width of the matrix's row labels.
pub const LABEL_WIDTH: f32 = 130.0;

/// Draws the matrix; returns the (true, predicted) cell clicked this frame.
pub fn confusion_ui(
    ui: &mut egui::Ui,
    id: &str,
    labels: &[String],
    matrix: &[Vec<usize>],
    selected: Option<(usize, usize)>,
) -> Option<(usize, usize)> {
    confusion_ui_within(ui, id, labels, matrix, selected, 480.0)
}

/// [`confusion_ui`] with the cells sharing `grid` points of width (each 14 to 48 wide), besides
/// the row labels ([`LABEL_WIDTH`]).
pub fn confusion_ui_within(
    ui: &mut egui::Ui,
    id: &str,
    labels: &[String],
    matrix: &[Vec<usize>],
    selected: Option<(usize, usize)>,
    grid: f32,
) -> Option<(usize, usize)> {
    let k = labels.len().min(matrix.len());
    if k == 0 {
        return None;
    }
    let cell = (grid / k as f32).clamp(14.0, 48.0);
    let label_width = LABEL_WIDTH;
    let header_height = 90.0;
    let size = egui::vec2(
        label_width + cell * k as f32,
        header_height + cell * k as f32,
    );
    let (rect, _) = ui.allocate_exact_size(size, egui::Sense::hover());
    let origin = rect.left_top() + egui::vec2(label_width, header_height);
    let text_color = ui.visuals().text_color();
    let font = egui::FontId::proportional(if cell < 20.0 { 10.0 } else { 12.0 });
    let good = egui::Color32::from_rgb(52, 168, 83);
    let bad = egui::Color32::from_rgb(219, 68, 55);
    let empty = ui.visuals().faint_bg_color;
    let mut clicked = None;
    for (t, row) in matrix.iter().enumerate().take(k) {
        let y = origin.y + t as f32 * cell;
        let name = labels.get(t).map(String::as_str).unwrap_or("");
        ui.painter().text(
            egui::pos2(origin.x - 6.0, y + cell / 2.0),
            egui::Align2::RIGHT_CENTER,
            truncate(name, 18),
            font.clone(),
            text_color,
        );
        let row_total: usize = row.iter().sum();
        for p in 0..k {
            let count = row.get(p).copied().unwrap_or(0);
            let cell_rect = egui::Rect::from_min_size(
                egui::pos2(origin.x + p as f32 * cell, y),
                egui::vec2(cell, cell),
            )
            .shrink(1.0);
            let response = ui.interact(
                cell_rect,
                ui.scope_id().with((id, t, p)),
                egui::Sense::click(),
            );
            let predicted = labels.get(p).map(String::as_str).unwrap_or("");
            let info = format!("true {name}, predicted {predicted}: {count}");
            response
                .widget_info(|| egui::WidgetInfo::labeled(egui::Role::Button, true, info.clone()));
            let share = if row_total > 0 {
                count as f32 / row_total as f32
            } else {
                0.0
            };
            let base = if t == p { good } else { bad };
            let fill = if count == 0 {
                empty
            } else {
                lerp_color(empty, base, 0.25 + 0.75 * share)
            };
            ui.painter().rect_filled(cell_rect, 2.0, fill);
            if selected == Some((t, p)) || response.hovered() {
                ui.painter().rect_stroke(
                    cell_rect,
                    2.0,
                    egui::Stroke::new(2.0, ui.visuals().strong_text_color()),
                    egui::StrokeKind::Inside,
                );
            }
            if cell >= 18.0 && count > 0 {
                ui.painter().text(
                    cell_rect.center(),
                    egui::Align2::CENTER_CENTER,
                    count.to_string(),
                    font.clone(),
                    if share > 0.5 {
                        egui::Color32::WHITE
                    } else {
                        text_color
                    },
                );
            }
            if response.clicked() {
                clicked = Some((t, p));
            }
            response.on_hover_text(info);
        }
    }
    // Column labels, slanted so long class names fit.
    for (p, name) in labels.iter().enumerate().take(k) {
        let x = origin.x + p as f32 * cell + cell / 2.0;
        let galley = ui
            .painter()
            .layout_no_wrap(truncate(name, 14), font.clone(), text_color);
        let pos = egui::pos2(x - 4.0, origin.y - 6.0);
        let shape = egui::epaint::TextShape::new(pos, galley, text_color)
            .with_angle(-std::f32::consts::FRAC_PI_4);
        ui.painter().add(shape);
    }
    ui.painter().text(
        rect.left_top(),
        egui::Align2::LEFT_TOP,
        "rows: true class, columns: predicted",
        egui::FontId::proportional(11.0),
        ui.visuals().weak_text_color(),
    );
    clicked
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n - 1).collect();
        t.push('…');
        t
    }
}

fn lerp_color(a: egui::Color32, b: egui::Color32, t: f32) -> egui::Color32 {
    let mix = |x: u8, y: u8| (x as f32 + (y as f32 - x as f32) * t).round() as u8;
    egui::Color32::from_rgb(mix(a.r(), b.r()), mix(a.g(), b.g()), mix(a.b(), b.b()))
}
