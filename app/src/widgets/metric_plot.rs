//! Live training curves (egui_plot): train vs validation, from the run's bounded histories.

use egui_plot::{Legend, Line, Plot, PlotPoints};
use lathe_engine::train::History;

/// One curve.
pub struct Series<'a> {
    pub name: &'a str,
    pub history: &'a History,
    pub color: egui::Color32,
    pub width: f32,
}

/// A titled plot of `series` over epochs `0..=epochs`.
pub fn metric_plot_ui(
    ui: &mut egui::Ui,
    id: &str,
    title: &str,
    series: &[Series<'_>],
    epochs: usize,
    y_range: Option<(f64, f64)>,
    size: egui::Vec2,
) {
    ui.vertical(|ui| {
        ui.strong(title);
        let mut plot = Plot::new(id)
            .width(size.x)
            .height(size.y)
            .legend(Legend::default())
            .allow_scroll(false)
            .allow_zoom(false)
            .allow_drag(false)
            .allow_boxed_zoom(false)
            .x_axis_label("epoch")
            .include_x(0.0)
            .include_x(epochs.max(1) as f64);
        if let Some((lo, hi)) = y_range {
            plot = plot.include_y(lo).include_y(hi);
        }
        plot.show(ui, |plot_ui| {
            for s in series {
                if s.history.is_empty() {
                    continue;
                }
                let points: PlotPoints = s.history.points().to_vec().into();
                plot_ui.line(Line::new(s.name, points).color(s.color).width(s.width));
            }
        });
    });
}
