//! A scatter map of samples: one dot per point in its class's colour, the hovered point ringed
//! (the caller shows what it is), a click picks the point under the pointer, the selected and
//! marked points ringed. Drawn with the painter (thousands of dots cost one pass); its AccessKit
//! label says what it shows ("Map of 25 samples …").

/// Class colours, told apart in light and dark themes (Tableau 10); classes past ten reuse them.
pub const CLASS_COLORS: [egui::Color32; 10] = [
    egui::Color32::from_rgb(78, 121, 167),
    egui::Color32::from_rgb(242, 142, 43),
    egui::Color32::from_rgb(225, 87, 89),
    egui::Color32::from_rgb(118, 183, 178),
    egui::Color32::from_rgb(89, 161, 79),
    egui::Color32::from_rgb(237, 201, 72),
    egui::Color32::from_rgb(176, 122, 161),
    egui::Color32::from_rgb(255, 157, 167),
    egui::Color32::from_rgb(156, 117, 95),
    egui::Color32::from_rgb(186, 176, 172),
];

/// The colour of class `class`.
pub fn class_color(class: usize) -> egui::Color32 {
    CLASS_COLORS[class % CLASS_COLORS.len()]
}

/// Radius of a dot, in points.
const DOT: f32 = 3.5;
/// How near the pointer must be to a dot to pick it, in points.
const PICK: f32 = 8.0;

/// What happened to the map this frame.
pub struct ScatterResponse {
    pub response: egui::Response,
    /// The point under the pointer.
    pub hovered: Option<usize>,
    /// The point clicked.
    pub clicked: Option<usize>,
}

/// Draws `points` (each with its class) in a `size` rectangle, scaled to fit; `selected` gets a
/// thick ring, `marked` a thin one. `label` is the map's accessible label.
pub fn scatter_ui(
    ui: &mut egui::Ui,
    points: &[[f32; 2]],
    classes: &[usize],
    size: egui::Vec2,
    selected: Option<usize>,
    marked: &[usize],
    label: &str,
) -> ScatterResponse {
    let (rect, response) = ui.allocate_exact_size(size, egui::Sense::click());
    let label = label.to_string();
    response.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Image, true, &label));
    let painter = ui.painter_at(rect);
    let visuals = ui.visuals();
    painter.rect_filled(rect, 4.0, visuals.extreme_bg_color);
    painter.rect_stroke(
        rect,
        4.0,
        visuals.widgets.noninteractive.bg_stroke,
        egui::StrokeKind::Inside,
    );
    let to_screen = screen_transform(points, rect.shrink(DOT * 3.0));
    // The axes through the origin (the data's mean), faint.
    let origin = to_screen([0.0, 0.0]);
    let faint = egui::Stroke::new(1.0, visuals.weak_text_color().gamma_multiply(0.3));
    if rect.x_range().contains(origin.x) {
        painter.vline(origin.x, rect.y_range(), faint);
    }
    if rect.y_range().contains(origin.y) {
        painter.hline(rect.x_range(), origin.y, faint);
    }
    let screen: Vec<egui::Pos2> = points.iter().map(|&p| to_screen(p)).collect();
    for (pos, class) in screen.iter().zip(classes) {
        painter.circle_filled(*pos, DOT, class_color(*class).gamma_multiply(0.85));
    }
    let ring = visuals.strong_text_color();
    for &i in marked {
        if let Some(pos) = screen.get(i) {
            painter.circle_stroke(*pos, DOT + 2.5, egui::Stroke::new(1.0, ring));
        }
    }
    let hovered = response.hover_pos().and_then(|pointer| {
        screen
            .iter()
            .enumerate()
            .map(|(i, p)| (i, p.distance_sq(pointer)))
            .filter(|(_, d)| *d <= PICK * PICK)
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(i, _)| i)
    });
    if let Some(pos) = hovered.and_then(|i| screen.get(i)) {
        painter.circle_stroke(*pos, DOT + 3.0, egui::Stroke::new(2.0, ring));
    }
    if let Some(pos) = selected.and_then(|i| screen.get(i)) {
        painter.circle_stroke(*pos, DOT + 4.0, egui::Stroke::new(2.5, ring));
    }
    let clicked = if response.clicked() { hovered } else { None };
    ScatterResponse {
        response,
        hovered,
        clicked,
    }
}

/// Maps data coordinates into `rect` (y up), keeping the aspect ratio so distances read true.
fn screen_transform(points: &[[f32; 2]], rect: egui::Rect) -> impl Fn([f32; 2]) -> egui::Pos2 {
    let (mut lo, mut hi) = ([f32::INFINITY; 2], [f32::NEG_INFINITY; 2]);
    for p in points
        .iter()
        .filter(|p| p[0].is_finite() && p[1].is_finite())
    {
        for a in 0..2 {
            lo[a] = lo[a].min(p[a]);
            hi[a] = hi[a].max(p[a]);
        }
    }
    // No finite point (the bounds are still ±∞; never NaN: non-finite points are skipped).
    if lo[0] > hi[0] {
        (lo, hi) = ([-1.0; 2], [1.0; 2]);
    }
    let span = [(hi[0] - lo[0]).max(1e-6), (hi[1] - lo[1]).max(1e-6)];
    let scale = (rect.width() / span[0]).min(rect.height() / span[1]);
    let centre = [(lo[0] + hi[0]) / 2.0, (lo[1] + hi[1]) / 2.0];
    let mid = rect.center();
    move |p: [f32; 2]| {
        egui::pos2(
            mid.x + (p[0] - centre[0]) * scale,
            mid.y - (p[1] - centre[1]) * scale,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_points_fill_the_rectangle_keeping_their_shape() {
        let rect = egui::Rect::from_min_size(egui::pos2(0.0, 0.0), egui::vec2(200.0, 100.0));
        let points = [[-2.0, 0.0], [2.0, 0.0], [0.0, 1.0]];
        let f = screen_transform(&points, rect);
        // The width limits: 4 data units across 200 points, so 1 unit = 50 points both ways.
        assert_eq!(f([0.0, 0.5]), egui::pos2(100.0, 50.0));
        assert_eq!(f([0.0, 1.0]), egui::pos2(100.0, 25.0));
        assert_eq!(f([2.0, 0.0]), egui::pos2(200.0, 75.0));
        // One point, or none: drawn in the middle.
        let one = screen_transform(&[[3.0, 3.0]], rect);
        assert_eq!(one([3.0, 3.0]), rect.center());
        assert!(screen_transform(&[], rect)([0.0, 0.0]).x.is_finite());
    }
}
