//! The splits of a folder-per-class dataset (images, sounds): every split scanned with the
//! family's [`FolderScan`], validation and test relabelled to the training classes, the health
//! checks, and the seeded stratified validation split when no validation folder is given.

use crate::data::image_folder::{self, FolderScan, LabeledFile, ScannedSplit};
use crate::data::{DataKind, DatasetSummary, HealthIssue, health, split};
use crate::error::Result;
use std::path::Path;

/// The scanned splits of a dataset, after relabelling to the training classes.
pub struct ClassSplits {
    pub labels: Vec<String>,
    pub train: Vec<LabeledFile>,
    pub validation: Vec<LabeledFile>,
    pub test: Vec<LabeledFile>,
    pub summary: DatasetSummary,
}

/// Where a dataset's splits are and how to read them.
pub struct SplitSources<'a> {
    pub train: &'a Path,
    pub validation: Option<&'a Path>,
    pub test: Option<&'a Path>,
    /// The family's scan settings for a split name ("train", "validation", "test").
    pub scan: &'a dyn Fn(&'a str) -> FolderScan<'a>,
    /// What one file is called in messages ("image", "sound file").
    pub noun: &'a str,
    pub kind: DataKind,
}

/// Scans every split, runs the health checks and splits validation off training if needed
/// (`validation_split` of it, stratified, seeded). `check` is called between files (cancel).
pub fn scan(
    src: &SplitSources<'_>,
    validation_split: f64,
    seed: u64,
    progress: &mut dyn FnMut(u64, u64),
    check: &dyn Fn() -> Result<()>,
) -> Result<ClassSplits> {
    let mut scan_one = |root: &Path, name: &'static str| {
        image_folder::scan(
            root,
            &(src.scan)(name),
            &mut |d, t| progress(d as u64, t as u64),
            check,
        )
    };
    let train = scan_one(src.train, "train")?;
    let mut validation = match src.validation {
        Some(p) => Some(scan_one(p, "validation")?),
        None => None,
    };
    let mut test = match src.test {
        Some(p) => Some(scan_one(p, "test")?),
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
    issues.extend(health::check(&train, &others, src.noun));
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
        kind: src.kind,
        labels: labels.clone(),
        splits,
        issues,
        facts: Default::default(),
    };
    Ok(ClassSplits {
        labels,
        train: train_files,
        validation: validation_files,
        test: test.map(|t| t.files).unwrap_or_default(),
        summary,
    })
}
