//! Scanning an image dataset: class folders for train / validation / test, health checks, and
//! the automatic stratified validation split.

use crate::data::image_decode::{self, IMAGE_EXTENSIONS};
use crate::data::image_folder::{self, FolderScan, LabeledFile, ScannedSplit};
use crate::data::{DataKind, DatasetSummary, HealthIssue, health, split};
use crate::error::{Error, Result};
use crate::task::{ResolvedData, ScanProgress};
use crate::train::Control;
use std::path::Path;

/// The scanned splits of a dataset, after relabelling to the training classes.
pub struct ImageSplits {
    pub labels: Vec<String>,
    pub train: Vec<LabeledFile>,
    pub validation: Vec<LabeledFile>,
    pub test: Vec<LabeledFile>,
    pub summary: DatasetSummary,
}

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
    let check = || {
        if control.is_cancelled() {
            Err(Error::Cancelled)
        } else {
            Ok(())
        }
    };
    let scan_one = |root: &Path, name: &str, progress: &mut dyn FnMut(u64, u64)| {
        image_folder::scan(
            root,
            &image_scan(name),
            &mut |d, t| progress(d as u64, t as u64),
            &check,
        )
    };
    let train = scan_one(&data.train, "train", progress)?;
    let mut validation = match &data.validation {
        Some(p) => Some(scan_one(p, "validation", progress)?),
        None => None,
    };
    let mut test = match &data.test {
        Some(p) => Some(scan_one(p, "test", progress)?),
        None => None,
    };
    let labels = train.labels.clone();
    for s in validation.iter_mut().chain(test.iter_mut()) {
        s.relabel(&labels);
    }
    let others: Vec<&ScannedSplit> = validation.iter().chain(test.iter()).collect();
    let mut issues: Vec<HealthIssue> = train.issues.clone();
    for s in &others {
        issues.extend(s.issues.iter().cloned());
    }
    issues.extend(health::check(&train, &others, "image"));

    let (train_files, validation_files) = match &validation {
        Some(v) => (train.files.clone(), v.files.clone()),
        None => split::stratified(&train.files, labels.len(), validation_split, seed),
    };
    let mut splits =
        train.train_validation_summaries(validation.as_ref(), &train_files, &validation_files);
    if let Some(t) = &test {
        splits.push(t.summary());
    }
    let summary = DatasetSummary {
        kind: DataKind::Images,
        labels: labels.clone(),
        splits,
        issues,
        facts: Default::default(),
    };
    Ok(ImageSplits {
        labels,
        train: train_files,
        validation: validation_files,
        test: test.map(|t| t.files).unwrap_or_default(),
        summary,
    })
}
