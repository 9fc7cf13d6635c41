//! Datasets: scanning user folders into labelled items, health checks, splits, image decoding
//! and augmentation.

pub mod annotation_formats;
pub mod annotations;
pub mod audio_augment;
pub mod audio_decode;
pub mod audio_facts;
pub mod audio_frontend;
pub mod augment;
pub mod box_augment;
pub mod boxes;
pub mod class_splits;
pub mod contain;
pub mod device_resize;
pub mod health;
pub mod image_decode;
pub mod image_folder;
pub mod labels_file;
pub mod mp4_check;
pub mod split;
pub mod summary;
pub mod table;
pub mod table_schema;
pub mod text_data;

pub use summary::{ClassCount, DataKind, DatasetSummary, HealthIssue, Severity, SplitSummary};
