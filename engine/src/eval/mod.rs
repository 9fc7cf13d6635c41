//! Evaluation: metrics and report plots.

pub mod epoch;
pub mod map;
pub mod metrics;
pub mod multilabel;
pub mod plots;
pub mod regression;
pub mod tabular_plots;
pub mod usefulness;

pub use metrics::{ClassMetrics, ClassificationReport, SampleResult};
pub use multilabel::MultiLabelReport;
