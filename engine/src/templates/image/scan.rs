//! Scanning an image dataset: class folders for train / validation / test, health checks, and
//! the automatic stratified validation split.

use crate::data::DataKind;
use crate::data::class_splits::{self, ClassSplits, SplitSources};
use crate::data::image_decode::{self, IMAGE_EXTENSIONS};
use crate::data::image_folder::FolderScan;
use crate::error::Result;
use crate::task::{ResolvedData, ScanProgress};
use crate::train::Control;
use std::path::Path;

/// The scanned splits of an image dataset.
pub type ImageSplits = ClassSplits;

fn image_probe(_: &Path, bytes: &[u8]) -> std::result::Result<(), String> {
    image_decode::probe(bytes).map(|_| ())
}

/// The folder-per-class scan settings for images.
pub fn image_scan(split: &str) -> FolderScan<'_> {
    FolderScan {
        split,
        extensions: IMAGE_EXTENSIONS,
        noun: "image",
        probe: &image_probe,
    }
}

/// Scans every split, runs the health checks and splits validation off training if needed.
pub fn scan_splits(
    data: &ResolvedData,
    validation_split: f64,
    seed: u64,
    progress: ScanProgress<'_>,
    control: &Control,
) -> Result<ImageSplits> {
    let sources = SplitSources {
        train: &data.train,
        validation: data.validation.as_deref(),
        test: data.test.as_deref(),
        scan: &image_scan,
        noun: "image",
        kind: DataKind::Images,
    };
    class_splits::scan(&sources, validation_split, seed, progress, &|| {
        control.check_cancelled()
    })
}
