//! Lathe Studio, the desktop app: pick a template, drop your data, watch it train, evaluate,
//! preview and export. It drives `lathe-engine`'s public API (projects, scans, sessions,
//! events, models) and never imports candle; nothing heavy ever runs on the UI thread.

pub mod app;
pub mod choices;
pub mod command;
pub mod compare;
pub mod export_form;
pub mod file_dialog;
pub mod frame_stats;
pub mod jobs;
pub mod mistakes;
pub mod preview_data;
pub mod recordings;
pub mod report;
pub mod runs;
pub mod settings_layout;
pub mod state;
pub mod thumbnails;
pub mod ui;
pub mod widgets;

pub use app::Studio;
pub use command::{Command, DataSlot, Screen};
