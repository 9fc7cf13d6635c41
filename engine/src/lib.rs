//! Lathe's engine: datasets and health checks, training sessions that stream events, evaluation,
//! export, and the headless `lathe` CLI. Used by the `lathe-studio` app; never imports a GUI.

pub mod allocator;
pub mod cli;
pub mod data;
pub mod device;
pub mod error;
pub mod eval;
pub mod export;
pub mod fsutil;
pub mod fuzz;
pub mod model;
pub mod params;
pub mod project;
pub mod task;
pub mod template;
pub mod train;

pub use error::{Error, Result};
pub use project::Project;
pub use template::Template;
pub use train::{Control, Event, Outcome, RunState, Session, SessionOptions};

/// This build's version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
