//! The Explore screen, the data explorer (Edge Impulse's is the model): a map of the run's samples
//! — the first two principal components of their features, one colour per class, with a legend;
//! hover a point for its file, click it to open the sample enlarged — beside three lists: likely
//! mislabels, outliers and near-duplicates, each with the Mistakes view's fix-a-label actions.
//! The exploration itself runs on a job (`Command::Explore`); this screen draws its progress and
//! its result.

use crate::command::Command;
use crate::state::{ExploreState, State};
use crate::ui::label_fix::{current_path, file_name, fix_label_ui};
use crate::ui::view::View;
use crate::widgets::scatter::{class_color, scatter_ui};
use lathe_engine::explore::{Exploration, Sample};
use lathe_engine::train::Status;
use std::path::PathBuf;

/// The near-duplicate threshold the screen starts with (cosine similarity of the features).
pub const DEFAULT_SIMILARITY: f32 = 0.95;
/// Items of a list shown at first, and added by each "Show more".
const PAGE: usize = 12;
/// Size of the map.
const MAP_SIZE: egui::Vec2 = egui::vec2(560.0, 440.0);
/// Side of a list item's thumbnail.
const THUMB: f32 = 64.0;
/// Side of the opened sample's image.
const LARGE: f32 = 280.0;

pub fn explore_ui(ui: &mut egui::Ui, state: &State, view: &mut View, commands: &mut Vec<Command>) {
    ui.heading("Explore");
    crate::ui::evaluate::shown_run_ui(ui, state, commands);
    crate::ui::evaluate::retrain_note_ui(ui, state);
    if let Some(template) = state.template()
        && !lathe_engine::templates::explore::supports_task(&template.task)
    {
        ui.add_space(8.0);
        ui.label(format!(
            "The data explorer works on image classifiers so far: a {} run cannot be explored yet.",
            template.title
        ));
        return;
    }
    let run_dir = match &state.run.run_dir {
        Some(dir) if state.run.status == Status::Completed && !state.run_active => dir,
        _ => {
            ui.add_space(8.0);
            ui.label(if state.run_active {
                "The map of the data appears when training finishes."
            } else {
                "Train a model (or open a finished run) to explore its data: a map of the samples' \
                 features, likely mislabels, outliers and near-duplicates."
            });
            return;
        }
    };
    match state
        .exploration
        .as_ref()
        .filter(|e| e.run_dir() == run_dir)
    {
        None => {
            // Explored when first shown; the job reports back.
            commands.push(Command::Explore);
            ui.spinner();
        }
        Some(ExploreState::Running {
            step, done, total, ..
        }) => {
            ui.add_space(8.0);
            ui.horizontal(|ui| {
                ui.spinner();
                let count = if *total > 0 {
                    format!(" {done} / {total}")
                } else {
                    String::new()
                };
                ui.label(format!("{}…{count}", step.title()));
            });
            if *total > 0 {
                ui.add(egui::ProgressBar::new(*done as f32 / *total as f32).desired_width(320.0));
            }
        }
        Some(ExploreState::Failed { error, .. }) => {
            ui.add_space(8.0);
            ui.colored_label(
                ui.visuals().error_fg_color,
                format!("The data could not be explored: {error}"),
            );
            if ui.button("Try again").clicked() {
                commands.push(Command::Explore);
            }
        }
        Some(ExploreState::Ready { exploration, .. }) => {
            exploration_ui(ui, exploration, state, view, commands)
        }
    }
}

fn exploration_ui(
    ui: &mut egui::Ui,
    e: &Exploration,
    state: &State,
    view: &mut View,
    commands: &mut Vec<Command>,
) {
    ui.horizontal_wrapped(|ui| {
        ui.weak(&e.features);
        if ui
            .button("Compute again")
            .on_hover_text("Read the data folders and the features again (after moving files)")
            .clicked()
        {
            commands.push(Command::Explore);
        }
    });
    let moved = state
        .label_fixes
        .iter()
        .filter(|f| e.samples.iter().any(|s| s.input == f.from))
        .count();
    if moved > 0 {
        ui.colored_label(
            ui.visuals().warn_fg_color,
            format!(
                "{moved} file{} moved since this map was made: Compute again to see the data as it \
                 is now.",
                if moved == 1 { "" } else { "s" }
            ),
        );
    }
    for note in &e.notes {
        ui.weak(note);
    }
    moved_files_ui(ui, state, commands);
    if view.explore_selected.is_some_and(|i| i >= e.samples.len()) {
        view.explore_selected = None;
    }
    ui.add_space(6.0);
    ui.horizontal_top(|ui| {
        ui.vertical(|ui| {
            ui.set_width(MAP_SIZE.x);
            map_ui(ui, e, state, view);
            if let Some(i) = view.explore_selected {
                ui.add_space(8.0);
                opened_ui(ui, e, i, state, view, commands);
            }
        });
        ui.add_space(16.0);
        ui.vertical(|ui| {
            let folders = state.label_folders();
            mislabels_ui(ui, e, &folders, state, view, commands);
            ui.add_space(6.0);
            outliers_ui(ui, e, &folders, state, view, commands);
            ui.add_space(6.0);
            duplicates_ui(ui, e, &folders, state, view, commands);
        });
    });
}

/// The files moved to another class folder (here or on Evaluate), each with Undo.
fn moved_files_ui(ui: &mut egui::Ui, state: &State, commands: &mut Vec<Command>) {
    if state.label_fixes.is_empty() {
        return;
    }
    let busy = state.fixing || state.run_active;
    egui::CollapsingHeader::new(format!("Moved files ({})", state.label_fixes.len()))
        .id_salt("explore-moved")
        .default_open(true)
        .show(ui, |ui| {
            for fix in &state.label_fixes {
                ui.horizontal(|ui| {
                    let file = file_name(&fix.to);
                    ui.label(format!(
                        "{file}: moved from {} to {}",
                        fix.old_label, fix.new_label
                    ));
                    let undo = ui.add_enabled(!busy, egui::Button::new("Undo"));
                    undo.widget_info(|| {
                        egui::WidgetInfo::labeled(
                            egui::Role::Button,
                            !busy,
                            format!("Undo moving {file}"),
                        )
                    });
                    if undo
                        .on_hover_text(format!("Move it back to {}", fix.from.display()))
                        .clicked()
                    {
                        commands.push(Command::UndoFix(fix.to.clone()));
                    }
                });
            }
        });
}

/// The legend, the map and its caption; a click opens a sample.
fn map_ui(ui: &mut egui::Ui, e: &Exploration, state: &State, view: &mut View) {
    ui.horizontal_wrapped(|ui| {
        for (c, label) in e.labels.iter().enumerate() {
            let count = e.samples.iter().filter(|s| s.label == c).count();
            let text = format!("{label} ({count})");
            // One item never breaks: the dot and its text go to the next row together.
            let font = egui::TextStyle::Body.resolve(ui.style());
            let width = ui
                .painter()
                .layout_no_wrap(text.clone(), font, egui::Color32::WHITE)
                .size()
                .x;
            // (item spacing before the dot and between the dot and its text)
            if ui.available_size_before_wrap().x < 14.0 + 2.0 * ui.spacing().item_spacing.x + width
            {
                ui.end_row();
            }
            let (rect, _) = ui.allocate_exact_size(egui::vec2(12.0, 12.0), egui::Sense::hover());
            ui.painter()
                .circle_filled(rect.center(), 5.0, class_color(c));
            ui.add(egui::Label::new(text).extend());
            ui.add_space(6.0);
        }
    });
    let classes: Vec<usize> = e.samples.iter().map(|s| s.label).collect();
    let marked: Vec<usize> = e.mislabels.iter().map(|m| m.sample).collect();
    let n = e.samples.len();
    let label = format!(
        "Map of {n} sample{} in {} classes: the first two principal components of their features",
        if n == 1 { "" } else { "s" },
        e.labels.len()
    );
    let map = scatter_ui(
        ui,
        &e.map,
        &classes,
        MAP_SIZE,
        view.explore_selected,
        &marked,
        &label,
    );
    if let Some(sample) = map.hovered.and_then(|i| e.samples.get(i)) {
        let path = current_path(state, &sample.input).to_path_buf();
        let class = e.labels.get(sample.label).cloned().unwrap_or_default();
        map.response.on_hover_ui_at_pointer(|ui| {
            view.thumbnails.show(ui, &path, 96.0);
            ui.monospace(file_name(&path));
            ui.label(format!("labelled {class} \u{b7} {}", sample.split));
        });
    }
    if let Some(i) = map.clicked {
        view.explore_selected = Some(i);
    }
    ui.weak(format!(
        "Across: the first principal component ({:.0}% of the variance); up: the second ({:.0}%). \
         Hover a point to see its file, click it to open the sample; ringed points are likely \
         mislabels.",
        e.explained[0] * 100.0,
        e.explained[1] * 100.0
    ));
}

/// The opened sample: its image enlarged, what the explorer found about it, and fixing its label.
fn opened_ui(
    ui: &mut egui::Ui,
    e: &Exploration,
    i: usize,
    state: &State,
    view: &mut View,
    commands: &mut Vec<Command>,
) {
    let Some(sample) = e.samples.get(i) else {
        return;
    };
    let path = current_path(state, &sample.input).to_path_buf();
    let label = e.labels.get(sample.label).cloned().unwrap_or_default();
    let mislabel = e.mislabels.iter().find(|m| m.sample == i);
    egui::Frame::group(ui.style()).show(ui, |ui| {
        ui.horizontal_top(|ui| {
            view.large_images.show(ui, &path, LARGE);
            ui.vertical(|ui| {
                ui.strong(file_name(&path));
                ui.add(
                    egui::Label::new(egui::RichText::new(path.display().to_string()).weak()).wrap(),
                );
                ui.label(format!("labelled {label} \u{b7} {} split", sample.split));
                if let Some(m) = mislabel {
                    ui.label(format!(
                        "The cross-validated model says {} ({:.0}%; {:.0}% for {label})",
                        name(e, m.suggested),
                        m.confidence * 100.0,
                        m.label_probability * 100.0
                    ));
                }
                if let Some(o) = e.outliers.iter().find(|o| o.sample == i) {
                    ui.label(format!(
                        "{:.1}\u{d7} as far from the centre of {label} as a typical sample",
                        o.ratio
                    ));
                }
                let twins = e
                    .duplicates
                    .iter()
                    .filter(|p| p.similarity >= view.explore_similarity)
                    .filter(|p| p.a == i || p.b == i)
                    .count();
                if twins > 0 {
                    ui.label(format!(
                        "{twins} near-duplicate{} (see the list)",
                        if twins == 1 { "" } else { "s" }
                    ));
                }
                ui.add_space(4.0);
                let folders = state.label_folders();
                fix_label_ui(
                    ui,
                    &sample.input,
                    &label,
                    mislabel.map(|m| name(e, m.suggested)),
                    &e.labels,
                    &folders,
                    state,
                    commands,
                );
                if ui.button("Close").clicked() {
                    view.explore_selected = None;
                }
            });
        });
    });
}

fn name(e: &Exploration, class: usize) -> &str {
    e.labels.get(class).map_or("", String::as_str)
}

/// A list's header, opened by default when it has items.
fn list_header(
    ui: &mut egui::Ui,
    id: &str,
    title: String,
    open: bool,
    body: impl FnOnce(&mut egui::Ui),
) {
    egui::CollapsingHeader::new(egui::RichText::new(title).strong().size(16.0))
        .id_salt(("explore-list", id))
        .default_open(open)
        .show(ui, body);
}

/// How many items of a list are shown.
fn paged(view: &View, id: &'static str, len: usize) -> usize {
    view.explore_shown.get(id).copied().unwrap_or(PAGE).min(len)
}

/// "Show more" under a list that has more items than it shows.
fn show_more_ui(ui: &mut egui::Ui, view: &mut View, id: &'static str, shown: usize, len: usize) {
    if len > shown {
        let more = (len - shown).min(PAGE);
        if ui
            .button(format!("Show {more} more (of {} not shown)", len - shown))
            .clicked()
        {
            view.explore_shown.insert(id, shown + PAGE);
        }
    }
}

fn mislabels_ui(
    ui: &mut egui::Ui,
    e: &Exploration,
    folders: &[PathBuf],
    state: &State,
    view: &mut View,
    commands: &mut Vec<Command>,
) {
    let title = format!("Likely mislabels ({})", e.mislabels.len());
    list_header(ui, "mislabels", title, true, |ui| {
        match &e.cross_validation {
            Some(cv) => ui.weak(format!(
                "A logistic model cross-validated on the features ({} folds; {:.0}% of the \
                 samples right) gives these another class with at least 60% confidence. Most \
                 certain first.",
                cv.folds,
                cv.accuracy * 100.0
            )),
            None => ui.weak("Not checked: too few samples per class."),
        };
        if e.mislabels.is_empty() && e.cross_validation.is_some() {
            ui.label("None: the cross-validated model agrees with every label it is sure about.");
        }
        let shown = paged(view, "mislabels", e.mislabels.len());
        for m in &e.mislabels[..shown] {
            let Some(sample) = e.samples.get(m.sample) else {
                continue;
            };
            let line = format!(
                "labelled {}, looks like {} ({:.0}%)",
                name(e, sample.label),
                name(e, m.suggested),
                m.confidence * 100.0
            );
            item_ui(
                ui,
                e,
                m.sample,
                sample,
                &line,
                Some(name(e, m.suggested)),
                folders,
                state,
                view,
                commands,
            );
        }
        show_more_ui(ui, view, "mislabels", shown, e.mislabels.len());
    });
}

fn outliers_ui(
    ui: &mut egui::Ui,
    e: &Exploration,
    folders: &[PathBuf],
    state: &State,
    view: &mut View,
    commands: &mut Vec<Command>,
) {
    let title = format!("Outliers ({})", e.outliers.len());
    list_header(ui, "outliers", title, !e.outliers.is_empty(), |ui| {
        ui.weak(
            "The samples farthest from the centre of their class (standardized features), \
             relative to a typical sample of that class: odd pictures, something else entirely, \
             or a wrong label. Farthest first.",
        );
        let shown = paged(view, "outliers", e.outliers.len());
        for o in &e.outliers[..shown] {
            let Some(sample) = e.samples.get(o.sample) else {
                continue;
            };
            let line = format!(
                "labelled {}; {:.1}\u{d7} as far from its class centre as a typical one",
                name(e, sample.label),
                o.ratio
            );
            item_ui(
                ui, e, o.sample, sample, &line, None, folders, state, view, commands,
            );
        }
        show_more_ui(ui, view, "outliers", shown, e.outliers.len());
    });
}

fn duplicates_ui(
    ui: &mut egui::Ui,
    e: &Exploration,
    folders: &[PathBuf],
    state: &State,
    view: &mut View,
    commands: &mut Vec<Command>,
) {
    let threshold = view.explore_similarity;
    let pairs: Vec<&lathe_engine::explore::NearDuplicate> = e
        .duplicates
        .iter()
        .filter(|p| p.similarity >= threshold)
        .collect();
    let title = format!("Near-duplicates ({})", pairs.len());
    list_header(ui, "duplicates", title, !pairs.is_empty(), |ui| {
        ui.weak(
            "Pairs whose features point the same way (cosine similarity), within and across \
             splits. A pair across training and test flatters the test score; a pair with two \
             labels has one of them wrong.",
        );
        ui.horizontal(|ui| {
            ui.label("Similarity at least");
            ui.add(egui::Slider::new(&mut view.explore_similarity, 0.9..=1.0).fixed_decimals(3));
        });
        if pairs.is_empty() {
            ui.label("None at this similarity.");
        }
        let shown = paged(view, "duplicates", pairs.len());
        for pair in &pairs[..shown] {
            let (Some(a), Some(b)) = (e.samples.get(pair.a), e.samples.get(pair.b)) else {
                continue;
            };
            egui::Frame::group(ui.style()).show(ui, |ui| {
                let mut kind = format!("similarity {:.3}", pair.similarity);
                if pair.identical {
                    kind.push_str(" \u{b7} identical files");
                }
                if a.split != b.split {
                    kind.push_str(&format!(" \u{b7} {} and {}", a.split, b.split));
                } else {
                    kind.push_str(&format!(" \u{b7} both in {}", a.split));
                }
                ui.weak(kind);
                for (me, other, index) in [(a, b, pair.a), (b, a, pair.b)] {
                    // A pair with two labels: each may take the other's.
                    let suggested = (me.label != other.label).then(|| name(e, other.label));
                    let line = format!("labelled {} \u{b7} {}", name(e, me.label), me.split);
                    item_ui(
                        ui, e, index, me, &line, suggested, folders, state, view, commands,
                    );
                }
            });
        }
        show_more_ui(ui, view, "duplicates", shown, pairs.len());
    });
}

/// One listed sample: its thumbnail and name (a click opens it), a line about it, and the
/// fix-a-label actions.
#[allow(clippy::too_many_arguments)]
fn item_ui(
    ui: &mut egui::Ui,
    e: &Exploration,
    index: usize,
    sample: &Sample,
    line: &str,
    suggested: Option<&str>,
    folders: &[PathBuf],
    state: &State,
    view: &mut View,
    commands: &mut Vec<Command>,
) {
    let path = current_path(state, &sample.input).to_path_buf();
    ui.horizontal_top(|ui| {
        let thumb = view.thumbnails.show(ui, &path, THUMB);
        if ui
            .interact(thumb.rect, thumb.id.with("open"), egui::Sense::click())
            .clicked()
        {
            view.explore_selected = Some(index);
        }
        ui.vertical(|ui| {
            let file = file_name(&path);
            if ui
                .link(egui::RichText::new(&file).monospace())
                .on_hover_text(format!("Open it ({})", path.display()))
                .clicked()
            {
                view.explore_selected = Some(index);
            }
            ui.label(line);
            ui.horizontal_wrapped(|ui| {
                fix_label_ui(
                    ui,
                    &sample.input,
                    name(e, sample.label),
                    suggested,
                    &e.labels,
                    folders,
                    state,
                    commands,
                );
            });
        });
    });
    ui.add_space(4.0);
}
