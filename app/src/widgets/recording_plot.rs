//! A motion recording drawn over time (egui_plot): one line per sensor channel with a legend,
//! seconds on the x axis; and the strip under it that colours each prediction window by the
//! activity predicted there, aligned with the plot's time axis.

use egui_plot::{Legend, Line, Plot, PlotPoints, PlotTransform};
use lathe_engine::templates::activity::recording::Recording;

/// Most points drawn per channel (longer recordings are thinned evenly).
const MAX_POINTS: usize = 3000;
/// Height of the predicted-activity strip.
const STRIP_HEIGHT: f32 = 26.0;

/// Channel colours, then activity colours (cycled).
pub const PALETTE: [egui::Color32; 8] = [
    egui::Color32::from_rgb(31, 119, 180),
    egui::Color32::from_rgb(255, 127, 14),
    egui::Color32::from_rgb(44, 160, 44),
    egui::Color32::from_rgb(214, 39, 40),
    egui::Color32::from_rgb(148, 103, 189),
    egui::Color32::from_rgb(140, 86, 75),
    egui::Color32::from_rgb(227, 119, 194),
    egui::Color32::from_rgb(23, 190, 207),
];

/// The colour of item `i` of a list.
pub fn color_of(i: usize) -> egui::Color32 {
    PALETTE
        .get(i % PALETTE.len())
        .copied()
        .unwrap_or(egui::Color32::GRAY)
}

/// "Recording walking/003.csv: 3 channels, 12.0 s": the plot's accessible label.
pub fn plot_label(rec: &Recording) -> String {
    format!(
        "Recording {}: {} channel{}, {:.1} s",
        rec.name,
        rec.columns.len(),
        if rec.columns.len() == 1 { "" } else { "s" },
        rec.duration_secs()
    )
}

/// Draws the recording's channels over time; returns the plot's transform (for aligning a strip).
pub fn recording_plot_ui(
    ui: &mut egui::Ui,
    id: &str,
    rec: &Recording,
    height: f32,
) -> PlotTransform {
    let rate = rec.sample_rate.max(1e-9);
    let len = rec.len();
    let step = len.div_ceil(MAX_POINTS).max(1);
    let duration = rec.duration_secs();
    let response = Plot::new(id)
        .height(height)
        .legend(Legend::default().position(egui_plot::Corner::RightTop))
        .allow_scroll(false)
        .allow_zoom(false)
        .allow_drag(false)
        .allow_boxed_zoom(false)
        .allow_double_click_reset(false)
        .y_axis_min_width(48.0)
        .x_axis_label("seconds")
        .include_x(0.0)
        .include_x(duration)
        .show(ui, |plot_ui| {
            plot_ui.set_plot_bounds_x(0.0..=duration.max(1e-6));
            for (k, name) in rec.columns.iter().enumerate() {
                let points: PlotPoints = rec
                    .channel(k)
                    .enumerate()
                    .step_by(step)
                    .map(|(i, v)| [i as f64 / rate, f64::from(v)])
                    .collect::<Vec<_>>()
                    .into();
                plot_ui.line(
                    Line::new(name.as_str(), points)
                        .color(color_of(k))
                        .width(1.2),
                );
            }
        });
    let label = plot_label(rec);
    response
        .response
        .widget_info(|| egui::WidgetInfo::labeled(egui::Role::Image, true, &label));
    response.transform
}

/// One stretch of the recording with one predicted activity.
#[derive(Clone, Debug, PartialEq)]
pub struct Stretch {
    pub start_secs: f64,
    pub end_secs: f64,
    pub label: String,
    /// The activity's index (its colour).
    pub index: usize,
}

/// Consecutive windows with the same prediction merged into stretches. Windows overlap, so each
/// stands for the time nearest its centre: from halfway between its centre and the previous
/// window's to halfway to the next one's (the first from its start, the last to its end).
pub fn stretches(
    windows: &[crate::recordings::WindowPrediction],
    labels: &[String],
    rate: f64,
) -> Vec<Stretch> {
    let rate = rate.max(1e-9);
    let mut out: Vec<Stretch> = Vec::new();
    let centre = |w: &crate::recordings::WindowPrediction| (w.start + w.end) as f64 / 2.0;
    for (i, w) in windows.iter().enumerate() {
        let from = match i.checked_sub(1).and_then(|p| windows.get(p)) {
            Some(prev) => (centre(prev) + centre(w)) / 2.0,
            None => w.start as f64,
        };
        let to = windows
            .get(i + 1)
            .map_or(w.end as f64, |next| (centre(w) + centre(next)) / 2.0);
        let (s, e) = (from / rate, to / rate);
        match out.last_mut() {
            Some(last) if last.label == w.label => last.end_secs = e,
            _ => out.push(Stretch {
                start_secs: s,
                end_secs: e,
                label: w.label.clone(),
                index: labels.iter().position(|l| *l == w.label).unwrap_or(0),
            }),
        }
    }
    out
}

/// The predicted activity under a plot drawn by [`recording_plot_ui`]: a coloured band per
/// stretch, named inside when it fits. Accessible as "Predicted activity: walking 0.0–6.0 s, …".
pub fn activity_strip_ui(ui: &mut egui::Ui, transform: &PlotTransform, parts: &[Stretch]) {
    let frame = *transform.frame();
    let (rect, response) = ui.allocate_exact_size(
        egui::vec2(ui.available_width(), STRIP_HEIGHT),
        egui::Sense::hover(),
    );
    let label = format!(
        "Predicted activity: {}",
        parts
            .iter()
            .map(|s| format!("{} {:.1}–{:.1} s", s.label, s.start_secs, s.end_secs))
            .collect::<Vec<_>>()
            .join(", ")
    );
    response.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Image, true, &label));
    if !ui.is_rect_visible(rect) {
        return;
    }
    let painter = ui.painter_at(rect);
    let strip = egui::Rect::from_x_y_ranges(frame.x_range(), rect.y_range());
    painter.rect_filled(strip, 2.0, ui.visuals().extreme_bg_color);
    for s in parts {
        let x0 = transform
            .position_from_point_x(s.start_secs)
            .max(strip.left());
        let x1 = transform
            .position_from_point_x(s.end_secs)
            .min(strip.right());
        if x1 <= x0 {
            continue;
        }
        let band =
            egui::Rect::from_x_y_ranges(x0..=x1, strip.y_range()).shrink2(egui::vec2(0.5, 0.0));
        let color = color_of(s.index);
        painter.rect_filled(band, 2.0, color.gamma_multiply(0.75));
        let font = egui::TextStyle::Body.resolve(ui.style());
        let galley = painter.layout_no_wrap(s.label.clone(), font, egui::Color32::WHITE);
        if galley.size().x + 8.0 < band.width() {
            painter.galley(
                band.center() - galley.size() / 2.0,
                galley,
                egui::Color32::WHITE,
            );
        }
    }
}
