//! How one previewed file's prediction is drawn, per task: top classes with bars (images),
//! every label with the ones above the threshold marked (multi-label), the waveform over the
//! top classes (sound), and the image with its boxes drawn over it plus a list (detector).

use crate::preview_data::{PreviewImage, Waveform};
use crate::state::PreviewItem;
use crate::ui::view::View;
use crate::widgets::bars::bar_row_ui;
use lathe_engine::task::{PredictedBox, Prediction};

/// Predictions shown per input (single-label classifiers).
pub const TOP_K: usize = 5;
/// Width of a probability bar.
const BAR_WIDTH: f32 = 220.0;
/// Narrowest label column of probability bars (so the bars of several inputs line up).
const LABEL_WIDTH: f32 = 90.0;
/// Largest size an image with boxes is drawn at.
const DETECTION_VIEW: egui::Vec2 = egui::vec2(640.0, 480.0);
/// Height of a waveform.
const WAVEFORM_HEIGHT: f32 = 110.0;

/// Box colours, one per label (picked by the label's name).
const PALETTE: [egui::Color32; 8] = [
    egui::Color32::from_rgb(255, 92, 92),
    egui::Color32::from_rgb(72, 200, 96),
    egui::Color32::from_rgb(80, 150, 255),
    egui::Color32::from_rgb(255, 196, 40),
    egui::Color32::from_rgb(220, 100, 255),
    egui::Color32::from_rgb(40, 210, 210),
    egui::Color32::from_rgb(255, 140, 40),
    egui::Color32::from_rgb(255, 120, 200),
];

/// Ranked classes as rows of label, bar and percentage; `marked` labels are drawn strong with a
/// full-colour bar and the others faded (multi-label).
pub fn class_bars_ui(
    ui: &mut egui::Ui,
    id: impl std::hash::Hash + std::fmt::Debug,
    ranked: &[(String, f32)],
    k: usize,
    marked: Option<&[String]>,
) {
    let color = ui.visuals().selection.bg_fill;
    let faded = ui.visuals().weak_text_color().gamma_multiply(0.6);
    egui::Grid::new(id)
        .num_columns(2)
        .min_col_width(LABEL_WIDTH)
        .spacing([12.0, 4.0])
        .show(ui, |ui| {
            for (label, prob) in ranked.iter().take(k) {
                let percent = format!("{:.1}%", prob * 100.0);
                match marked {
                    Some(m) if m.contains(label) => {
                        ui.strong(label);
                        ui.horizontal(|ui| {
                            bar_row_ui(ui, *prob, BAR_WIDTH, color, &format!("{percent}  applies"))
                        });
                    }
                    Some(_) => {
                        ui.label(label);
                        ui.horizontal(|ui| bar_row_ui(ui, *prob, BAR_WIDTH, faded, &percent));
                    }
                    None => {
                        ui.label(label);
                        ui.horizontal(|ui| bar_row_ui(ui, *prob, BAR_WIDTH, color, &percent));
                    }
                }
                ui.end_row();
            }
        });
}

fn error_ui(ui: &mut egui::Ui, e: &str) {
    ui.colored_label(ui.visuals().error_fg_color, e);
}

fn file_name(item: &PreviewItem) -> String {
    item.input
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| item.input.display().to_string())
}

/// An image classifier's prediction: thumbnail, top label, top classes.
pub fn image_item_ui(ui: &mut egui::Ui, view: &mut View, item: &PreviewItem) {
    ui.horizontal_top(|ui| {
        view.thumbnails.show(ui, &item.input, 128.0);
        ui.vertical(|ui| {
            ui.monospace(item.input.display().to_string());
            match &item.result {
                Ok(p) => {
                    ui.strong(format!("Prediction: {}", p.label));
                    if let Some(v) = p.value {
                        ui.label(format!("value {v:.4}"));
                    }
                    class_bars_ui(
                        ui,
                        ("probs", item.input.display().to_string()),
                        &p.ranked,
                        TOP_K,
                        None,
                    );
                }
                Err(e) => error_ui(ui, e),
            }
        });
    });
}

/// A multi-label prediction: every label with its bar, those that apply marked.
pub fn multi_label_item_ui(ui: &mut egui::Ui, view: &mut View, item: &PreviewItem) {
    ui.horizontal_top(|ui| {
        view.thumbnails.show(ui, &item.input, 128.0);
        ui.vertical(|ui| {
            ui.monospace(item.input.display().to_string());
            match &item.result {
                Ok(p) => {
                    let applies = p.labels.clone().unwrap_or_default();
                    if applies.is_empty() {
                        ui.strong("Labels: none reaches the model's threshold");
                    } else {
                        ui.strong(format!("Labels: {}", applies.join(", ")));
                    }
                    ui.weak("Every label; those at or above the threshold are marked \"applies\".");
                    class_bars_ui(
                        ui,
                        ("labels", item.input.display().to_string()),
                        &p.ranked,
                        usize::MAX,
                        Some(&applies),
                    );
                }
                Err(e) => error_ui(ui, e),
            }
        });
    });
}

/// A sound prediction: the waveform, then the top classes.
pub fn sound_item_ui(ui: &mut egui::Ui, item: &PreviewItem) {
    ui.monospace(item.input.display().to_string());
    match &item.waveform {
        Some(Ok(w)) => waveform_ui(ui, &file_name(item), w),
        Some(Err(e)) => error_ui(ui, e),
        None => {}
    }
    match &item.result {
        Ok(p) => {
            ui.strong(format!("Prediction: {}", p.label));
            class_bars_ui(
                ui,
                ("sound", item.input.display().to_string()),
                &p.ranked,
                TOP_K,
                None,
            );
        }
        Err(e) => error_ui(ui, e),
    }
}

/// The waveform as a min/max line per pixel column, with the duration under it.
pub fn waveform_ui(ui: &mut egui::Ui, name: &str, w: &Waveform) {
    let width = ui.available_width().clamp(200.0, 900.0);
    let (rect, response) =
        ui.allocate_exact_size(egui::vec2(width, WAVEFORM_HEIGHT), egui::Sense::hover());
    let duration = if w.duration_secs < 60.0 {
        format!("{:.1} s", w.duration_secs)
    } else {
        crate::ui::duration_text(w.duration_secs)
    };
    let label = format!("Waveform of {name}, {:.2} s", w.duration_secs);
    response.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Image, true, &label));
    if ui.is_rect_visible(rect) {
        let painter = ui.painter_at(rect);
        painter.rect_filled(rect, 4.0, ui.visuals().extreme_bg_color);
        let mid = rect.center().y;
        let half = rect.height() / 2.0 - 4.0;
        painter.hline(
            rect.x_range(),
            mid,
            egui::Stroke::new(1.0, ui.visuals().weak_text_color().gamma_multiply(0.4)),
        );
        let ppp = ui.ctx().pixels_per_point();
        let columns = (rect.width() * ppp).round() as usize;
        let color = ui.visuals().selection.stroke.color;
        let stroke = egui::Stroke::new(1.0 / ppp, color);
        // Quiet sounds stay visible: scale to the loudest sample, never above 4× gain.
        let peak = w
            .mins
            .iter()
            .chain(&w.maxs)
            .fold(0.0f32, |m, v| m.max(v.abs()))
            .max(0.25);
        for (c, (lo, hi)) in w.columns(columns).into_iter().enumerate() {
            let x = rect.left() + (c as f32 + 0.5) / ppp;
            let top = mid - hi / peak * half;
            let bottom = mid - lo / peak * half;
            // At least one physical pixel tall, so silence still draws a line.
            let bottom = bottom.max(top + 1.0 / ppp);
            painter.vline(x, top..=bottom, stroke);
        }
    }
    let mut note = format!("{duration} (16 kHz mono, as the model hears it; nothing plays)");
    if w.truncated {
        note.push_str(&format!(
            "; only the first {} minutes are drawn",
            crate::preview_data::WAVEFORM_MAX_SECS / 60
        ));
    }
    ui.weak(note);
}

/// A detector's prediction: the image with boxes and labels over it, then the list of boxes.
pub fn detection_item_ui(ui: &mut egui::Ui, view: &mut View, item: &PreviewItem) {
    ui.monospace(item.input.display().to_string());
    let boxes: &[PredictedBox] = match &item.result {
        Ok(p) => &p.boxes,
        Err(e) => {
            error_ui(ui, e);
            &[]
        }
    };
    // The list goes beside the image, or under it in a narrow window.
    let beside = ui.available_width() >= DETECTION_VIEW.x + 360.0;
    let list = |ui: &mut egui::Ui| {
        if let Ok(p) = &item.result {
            box_list_ui(ui, &item.input.display().to_string(), p);
        }
    };
    let image = |ui: &mut egui::Ui, view: &mut View| match &item.image {
        Some(Ok(img)) => boxes_on_image_ui(ui, view, item, img, boxes),
        Some(Err(e)) => error_ui(ui, e),
        None => {}
    };
    if beside {
        ui.horizontal_top(|ui| {
            image(ui, view);
            ui.add_space(12.0);
            ui.vertical(list);
        });
    } else {
        image(ui, view);
        list(ui);
    }
}

fn label_color(label: &str) -> egui::Color32 {
    let h = label
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    PALETTE[h as usize % PALETTE.len()]
}

fn boxes_on_image_ui(
    ui: &mut egui::Ui,
    view: &mut View,
    item: &PreviewItem,
    img: &PreviewImage,
    boxes: &[PredictedBox],
) {
    let texture = view
        .preview_textures
        .entry(item.input.clone())
        .or_insert_with(|| {
            ui.ctx().load_texture(
                format!("preview:{}", item.input.display()),
                (*img.image).clone(),
                egui::TextureOptions::LINEAR,
            )
        })
        .clone();
    let [ow, oh] = img.original;
    let (ow, oh) = (ow.max(1) as f32, oh.max(1) as f32);
    let fit = (DETECTION_VIEW.x.min(ui.available_width()) / ow).min(DETECTION_VIEW.y / oh);
    // Small images are scaled up (up to 4×) so their boxes can be read.
    let scale = fit.min(4.0);
    let size = egui::vec2(ow * scale, oh * scale);
    let (rect, response) = ui.allocate_exact_size(size, egui::Sense::hover());
    let label = format!("{} with {} boxes", file_name(item), boxes.len());
    response.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Image, true, &label));
    if !ui.is_rect_visible(rect) {
        return;
    }
    let painter = ui.painter_at(rect);
    painter.image(
        texture.id(),
        rect,
        egui::Rect::from_min_max(egui::pos2(0.0, 0.0), egui::pos2(1.0, 1.0)),
        egui::Color32::WHITE,
    );
    let font = egui::FontId::proportional(13.0);
    // Least confident first, so the most confident box and its tag end up on top.
    for b in boxes.iter().rev() {
        let color = label_color(&b.label);
        let r = egui::Rect::from_center_size(
            rect.min + egui::vec2(b.x * scale, b.y * scale),
            egui::vec2(b.width * scale, b.height * scale),
        );
        painter.rect_stroke(
            r,
            0.0,
            egui::Stroke::new(2.0, color),
            egui::StrokeKind::Middle,
        );
        let text = format!("{} {:.0}%", b.label, b.confidence * 100.0);
        let galley = painter.layout_no_wrap(text, font.clone(), egui::Color32::BLACK);
        let tag_size = galley.size() + egui::vec2(6.0, 2.0);
        // The tag sits on the box's top edge, inside the image.
        let mut tag_min = egui::pos2(r.left() - 1.0, r.top() - tag_size.y);
        if tag_min.y < rect.top() {
            tag_min.y = r.top();
        }
        tag_min.x = tag_min
            .x
            .clamp(rect.left(), (rect.right() - tag_size.x).max(rect.left()));
        let tag = egui::Rect::from_min_size(tag_min, tag_size);
        painter.rect_filled(tag, 2.0, color);
        painter.galley(tag.min + egui::vec2(3.0, 1.0), galley, egui::Color32::BLACK);
    }
}

fn box_list_ui(ui: &mut egui::Ui, id: &str, p: &Prediction) {
    if p.boxes.is_empty() {
        ui.label("No objects found above the confidence threshold.");
        return;
    }
    ui.strong(format!(
        "{} {}",
        p.boxes.len(),
        if p.boxes.len() == 1 { "box" } else { "boxes" }
    ));
    egui::Grid::new(("boxes", id))
        .num_columns(4)
        .striped(true)
        .spacing([16.0, 4.0])
        .show(ui, |ui| {
            for h in ["Label", "Confidence", "Centre (x, y)", "Size (w × h)"] {
                ui.strong(h);
            }
            ui.end_row();
            for b in &p.boxes {
                ui.horizontal(|ui| {
                    let (r, _) =
                        ui.allocate_exact_size(egui::vec2(10.0, 10.0), egui::Sense::hover());
                    ui.painter().rect_filled(r, 2.0, label_color(&b.label));
                    ui.label(&b.label);
                });
                ui.label(format!("{:.1}%", b.confidence * 100.0));
                ui.label(format!("{:.0}, {:.0}", b.x, b.y));
                ui.label(format!("{:.0} × {:.0}", b.width, b.height));
                ui.end_row();
            }
        });
}
