//! Training curves (egui_plot): train vs validation over the epochs actually run, with the legend
//! above the plot (never over the curves), accuracies in percent, and a mark where a continued
//! run takes over from the run it continues.

use egui_plot::{Line, Plot, PlotPoints, VLine};

/// One curve: `[epoch, value]` points.
pub struct Series<'a> {
    pub name: &'a str,
    pub points: Vec<[f64; 2]>,
    pub color: egui::Color32,
    pub width: f32,
    /// Listed in the legend (the faint per-step loss is not).
    pub in_legend: bool,
    /// Drawn dashed (a second kind of curve in the same colour, as when comparing runs).
    pub dashed: bool,
}

/// How the y axis reads.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum YAxis {
    /// Plain values from 0 up.
    FromZero,
    /// Shares drawn as percentages, 0–100 %.
    Percent,
}

/// A titled plot of `series` with the x axis spanning exactly epochs `0..=epochs`; a dashed line at
/// `continued_at` marks where a continued run starts. The plot's accessible label names its title
/// and the x range it shows ("Loss: epochs 0 to 12").
#[allow(clippy::too_many_arguments)]
pub fn metric_plot_ui(
    ui: &mut egui::Ui,
    id: &str,
    title: &str,
    series: &[Series<'_>],
    epochs: f64,
    y_axis: YAxis,
    continued_at: Option<f64>,
    size: egui::Vec2,
) {
    ui.vertical(|ui| {
        ui.horizontal(|ui| {
            ui.strong(title);
            ui.add_space(12.0);
            for s in series
                .iter()
                .filter(|s| s.in_legend && !s.points.is_empty())
            {
                legend_entry_ui(ui, s.name, s.color, s.dashed);
            }
            if continued_at.is_some() {
                legend_entry_ui(ui, "continued here", continued_color(ui), true);
            }
        });
        let scale = match y_axis {
            YAxis::FromZero => 1.0,
            YAxis::Percent => 100.0,
        };
        let mut plot = Plot::new(id)
            .width(size.x)
            .height(size.y)
            .allow_scroll(false)
            .allow_zoom(false)
            .allow_drag(false)
            .allow_boxed_zoom(false)
            .allow_double_click_reset(false)
            .x_axis_label("epoch")
            .include_y(0.0);
        if y_axis == YAxis::Percent {
            plot = plot
                .include_y(100.0)
                .y_axis_formatter(|mark, _| format!("{}%", mark.value));
        }
        let x_max = epochs.max(1.0);
        let line_color = continued_color(ui);
        let response = plot.show(ui, |plot_ui| {
            plot_ui.set_plot_bounds_x(0.0..=x_max);
            if let Some(x) = continued_at {
                plot_ui.vline(
                    VLine::new("continued here", x)
                        .color(line_color)
                        .style(egui_plot::LineStyle::dashed_loose()),
                );
            }
            for s in series {
                if s.points.is_empty() {
                    continue;
                }
                let points: PlotPoints = s
                    .points
                    .iter()
                    .map(|p| [p[0], p[1] * scale])
                    .collect::<Vec<_>>()
                    .into();
                let mut line = Line::new(s.name, points).color(s.color).width(s.width);
                if s.dashed {
                    line = line.style(egui_plot::LineStyle::dashed_dense());
                }
                plot_ui.line(line);
            }
        });
        let x = response.transform.bounds().range_x();
        let label = format!(
            "{title}: epochs {} to {}",
            axis_number(*x.start()),
            axis_number(*x.end())
        );
        response
            .response
            .widget_info(|| egui::WidgetInfo::labeled(egui::Role::Image, true, &label));
    });
}

fn continued_color(ui: &egui::Ui) -> egui::Color32 {
    ui.visuals().weak_text_color()
}

/// "12" for whole numbers, "12.5" otherwise.
fn axis_number(x: f64) -> String {
    if (x - x.round()).abs() < 1e-9 {
        format!("{}", x.round())
    } else {
        format!("{x:.1}")
    }
}

/// A short thick line in the curve's colour (dashed for a dashed curve), then its name.
fn legend_entry_ui(ui: &mut egui::Ui, name: &str, color: egui::Color32, dashed: bool) {
    let (rect, _) = ui.allocate_exact_size(egui::vec2(18.0, 12.0), egui::Sense::hover());
    let stroke = egui::Stroke::new(3.0, color);
    if dashed {
        for dash in 0..3 {
            let x = rect.left() + dash as f32 * 7.0;
            ui.painter().line_segment(
                [
                    egui::pos2(x, rect.center().y),
                    egui::pos2((x + 4.0).min(rect.right()), rect.center().y),
                ],
                stroke,
            );
        }
    } else {
        ui.painter()
            .line_segment([rect.left_center(), rect.right_center()], stroke);
    }
    ui.label(name);
    ui.add_space(6.0);
}
