//! The start screen: one card per template (icon, title, blurb, data layout), "Open project…"
//! and the recent projects.

use crate::command::Command;
use crate::state::State;
use lathe_engine::Template;

const CARD_SIZE: egui::Vec2 = egui::vec2(300.0, 150.0);

pub fn picker_ui(ui: &mut egui::Ui, state: &State, commands: &mut Vec<Command>) {
    ui.add_space(8.0);
    ui.heading("Choose a template");
    ui.label("Pick what you want to build. You can change every setting later.");
    ui.add_space(8.0);
    ui.horizontal_wrapped(|ui| {
        ui.spacing_mut().item_spacing = egui::vec2(12.0, 12.0);
        for t in &state.templates {
            if card_ui(ui, t).clicked() {
                commands.push(Command::NewProject {
                    template: t.id.clone(),
                });
            }
        }
    });
    ui.add_space(16.0);
    ui.separator();
    ui.horizontal(|ui| {
        if ui.button("Open project…").clicked() {
            commands.push(Command::OpenProjectDialog);
        }
        if ui
            .button("Open run…")
            .on_hover_text("Open a run folder (it holds events.jsonl, report.json and model/)")
            .clicked()
        {
            commands.push(Command::OpenRunDialog);
        }
    });
    if !state.recent.is_empty() {
        ui.add_space(8.0);
        ui.strong("Recent projects");
        for file in &state.recent {
            if ui.link(file.display().to_string()).clicked() {
                commands.push(Command::OpenProject(file.clone()));
            }
        }
    }
}

/// A short badge text for a template's icon name (the default fonts have no emoji).
pub fn icon_glyph(icon: &str) -> String {
    match icon {
        "image" => "IMG".into(),
        "text" => "TXT".into(),
        "sound" => "SND".into(),
        "table" => "TAB".into(),
        "detection" | "viewfinder" => "DET".into(),
        "tags" => "TAG".into(),
        other => other.chars().take(3).collect::<String>().to_uppercase(),
    }
}

/// A clickable card; its accessible name is the template's title.
fn card_ui(ui: &mut egui::Ui, t: &Template) -> egui::Response {
    let (rect, response) = ui.allocate_exact_size(CARD_SIZE, egui::Sense::click());
    response
        .widget_info(|| egui::WidgetInfo::labeled(egui::Role::Button, ui.is_enabled(), &t.title));
    if ui.is_rect_visible(rect) {
        let visuals = ui.style().interact(&response);
        let painter = ui.painter();
        painter.rect(
            rect,
            8.0,
            ui.visuals().faint_bg_color,
            visuals.bg_stroke,
            egui::StrokeKind::Inside,
        );
        let inner = rect.shrink(12.0);
        let text = ui.visuals().text_color();
        let weak = ui.visuals().weak_text_color();
        let icon = egui::Rect::from_min_size(inner.left_top(), egui::vec2(44.0, 30.0));
        painter.rect_filled(icon, 6.0, ui.visuals().selection.bg_fill);
        painter.text(
            icon.center(),
            egui::Align2::CENTER_CENTER,
            icon_glyph(&t.icon),
            egui::FontId::monospace(13.0),
            egui::Color32::WHITE,
        );
        painter.text(
            egui::pos2(icon.right() + 10.0, inner.top() + 4.0),
            egui::Align2::LEFT_TOP,
            &t.title,
            egui::FontId::proportional(18.0),
            text,
        );
        let wrap = inner.width();
        let blurb = painter.layout(
            t.blurb.clone(),
            egui::FontId::proportional(14.0),
            text,
            wrap,
        );
        let blurb_pos = egui::pos2(inner.left(), icon.bottom() + 8.0);
        let blurb_height = blurb.size().y;
        painter.galley(blurb_pos, blurb, text);
        let hint = painter.layout(
            t.data_layout.clone(),
            egui::FontId::proportional(12.0),
            weak,
            wrap,
        );
        painter.galley(
            egui::pos2(inner.left(), blurb_pos.y + blurb_height + 8.0),
            hint,
            weak,
        );
    }
    response.on_hover_cursor(egui::CursorIcon::PointingHand)
}
