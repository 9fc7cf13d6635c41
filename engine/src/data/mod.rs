//! Datasets: scanning user folders into labelled items, health checks, splits, image decoding
//! and augmentation.

pub mod augment;
pub mod health;
pub mod image_decode;
pub mod image_folder;
pub mod labels_file;
pub mod split;
pub mod summary;
pub mod table;
pub mod table_schema;

pub use summary::{ClassCount, DataKind, DatasetSummary, HealthIssue, Severity, SplitSummary};
