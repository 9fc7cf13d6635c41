//! Drop zones for files and folders, and the overlay shown while files hover over the window.

use std::path::{Path, PathBuf};

/// What the user did with a drop zone this frame.
pub struct DropZone {
    /// Where it is (drops are routed to the zone under the pointer).
    pub rect: egui::Rect,
    pub choose_clicked: bool,
    pub clear_clicked: bool,
}

/// A framed zone: title, the current path (or the hint), "Choose…" and "Clear" buttons.
pub fn drop_zone_ui(
    ui: &mut egui::Ui,
    title: &str,
    current: Option<&Path>,
    hint: &str,
    choose_label: &str,
) -> DropZone {
    let hovering = ui.input(|i| !i.raw.hovered_files.is_empty());
    let stroke = if hovering {
        egui::Stroke::new(2.0, ui.visuals().selection.bg_fill)
    } else {
        egui::Stroke::new(1.0, ui.visuals().widgets.noninteractive.bg_stroke.color)
    };
    let mut choose_clicked = false;
    let mut clear_clicked = false;
    let response = egui::Frame::group(ui.style())
        .stroke(stroke)
        .corner_radius(8.0)
        .inner_margin(12.0)
        .show(ui, |ui| {
            ui.set_min_width(ui.available_width().min(900.0));
            ui.horizontal(|ui| {
                ui.strong(title);
                ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                    if current.is_some() && ui.button("Clear").clicked() {
                        clear_clicked = true;
                    }
                    if ui.button(choose_label).clicked() {
                        choose_clicked = true;
                    }
                });
            });
            match current {
                Some(p) => {
                    ui.label(egui::RichText::new(p.display().to_string()).monospace());
                }
                None => {
                    ui.weak(hint);
                }
            }
        });
    DropZone {
        rect: response.response.rect,
        choose_clicked,
        clear_clicked,
    }
}

/// Paths dropped on the window this frame.
pub fn dropped_paths(ctx: &egui::Context) -> Vec<PathBuf> {
    ctx.input(|i| {
        i.raw
            .dropped_files
            .iter()
            .map(|f| f.path().to_path_buf())
            .filter(|p| !p.as_os_str().is_empty())
            .collect()
    })
}

/// Dims the window and shows `text` while files hover over it.
pub fn hover_overlay(ctx: &egui::Context, text: &str) {
    let names: Vec<String> = ctx.input(|i| {
        i.raw
            .hovered_files
            .iter()
            .filter_map(|f| f.path.as_ref())
            .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .take(3)
            .collect()
    });
    if !ctx.input(|i| !i.raw.hovered_files.is_empty()) {
        return;
    }
    let painter = ctx.layer_painter(egui::LayerId::new(
        egui::Order::Foreground,
        egui::Id::unique("drop_overlay"),
    ));
    let screen = ctx.content_rect();
    painter.rect_filled(screen, 0.0, egui::Color32::from_black_alpha(160));
    let mut message = text.to_string();
    if !names.is_empty() {
        message.push('\n');
        message.push_str(&names.join(", "));
    }
    painter.text(
        screen.center(),
        egui::Align2::CENTER_CENTER,
        message,
        egui::FontId::proportional(22.0),
        egui::Color32::WHITE,
    );
}
