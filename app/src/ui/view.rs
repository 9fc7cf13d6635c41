//! `View`: the UI-only state the screens keep between frames (text being typed, thumbnails,
//! uploaded textures, open forms) — owned by the app, drawn by `ui/`, never by the engine.

use crate::thumbnails::Thumbnails;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

/// UI-only state of the screens: text being typed, thumbnails.
pub struct View {
    pub thumbnails: Thumbnails,
    /// Path typed into a data slot's text field.
    pub typed_paths: BTreeMap<&'static str, String>,
    /// Path typed on the preview screen.
    pub typed_preview: String,
    /// Text typed on a text model's preview screen.
    pub typed_text: String,
    /// When the typed text last changed and has not been sent for prediction yet.
    pub text_edited: Option<Instant>,
    /// The table row being edited on a table model's preview screen (a value per column).
    pub row_values: Vec<String>,
    /// The table row last picked from the grid.
    pub picked_row: Option<usize>,
    /// Uploaded preview images (detector previews), by file.
    pub preview_textures: BTreeMap<PathBuf, egui::TextureHandle>,
    /// The "Continue training…" form is open.
    pub continue_open: bool,
    /// Extra epochs typed into it.
    pub continue_epochs: i64,
    /// The path field of the built-in file browser.
    pub dialog_path: String,
    /// The file name field of the built-in file browser (saving).
    pub dialog_name: String,
    /// Files selected in the built-in file browser.
    pub dialog_selected: Vec<PathBuf>,
    /// Samples whose Mistakes-view details were asked for.
    pub details_requested: std::collections::BTreeSet<PathBuf>,
    /// Mistakes shown per evaluation (more on "Show more").
    pub mistakes_shown: BTreeMap<String, usize>,
    /// Runs ticked in the runs list for comparing (two at most, the last ticked last).
    pub compare_ticked: Vec<PathBuf>,
    /// The Export screen's form, as typed.
    pub export_form: crate::export_form::ExportForm,
    /// Enlarged images (a sample opened on the Explore screen).
    pub large_images: Thumbnails,
    /// The sample opened on the Explore screen (an index into its exploration's samples).
    pub explore_selected: Option<usize>,
    /// The Explore screen's near-duplicate threshold (cosine similarity).
    pub explore_similarity: f32,
    /// Items shown per Explore list (more on "Show more").
    pub explore_shown: BTreeMap<&'static str, usize>,
}
