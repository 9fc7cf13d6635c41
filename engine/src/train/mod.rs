//! Training sessions: events, the run-state fold, pause/cancel control, the run folder, the
//! feature cache, the optimizer and the head-fitting loop.

pub mod context;
pub mod control;
pub mod cpu_time;
pub mod event;
pub mod extend;
pub mod feature_cache;
pub mod fit;
pub mod fit_logistic;
pub mod head_choice;
pub mod midway;
pub mod priority;
pub mod run_dir;
pub mod scan_report;
pub mod state;

pub use context::{RunContext, RunOptions, Waker};
pub use control::Control;
pub use event::{EpochMetrics, Event, Outcome, Phase};
pub use run_dir::RunDir;

pub use state::{History, RunState, Status};
