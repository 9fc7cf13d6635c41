//! Evaluation: metrics and report plots.

pub mod map;
pub mod metrics;
pub mod multilabel;
pub mod plots;
pub mod regression;
pub mod tabular_plots;

pub use metrics::{ClassMetrics, ClassificationReport, SampleResult};
pub use multilabel::MultiLabelReport;
