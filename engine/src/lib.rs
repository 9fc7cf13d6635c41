//! Lathe's engine: datasets and health checks, training sessions that stream events, evaluation,
//! export, and the headless `lathe` CLI. Used by the `lathe-studio` app; never imports a GUI.

pub mod allocator;
#[cfg(feature = "cli")]
pub mod cli;
pub mod data;
pub mod device;
pub mod error;
pub mod eval;
pub mod explore;
pub mod export;
pub mod fit;
pub mod fsutil;
pub mod fuzz;
pub mod learners;
pub mod nets;
pub mod ops;
pub mod params;
pub mod project;
pub mod session;
pub mod task;
pub mod template;
pub mod templates;
pub mod train;

pub use error::{Error, Result};
pub use project::Project;
pub use session::{Session, SessionOptions};
pub use template::Template;
pub use train::{Control, Event, Outcome, RunState};

/// This build's version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
