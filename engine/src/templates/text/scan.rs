//! The text classifier's data: every split scanned (class folders of `.txt` files, or a table
//! with text and label columns), relabelled to the training classes, the health checks, the
//! seeded stratified validation split, and the summary the scan shows.

use crate::data::image_folder::{LabeledFile, ScannedSplit};
use crate::data::text_data::{self, Columns};
use crate::data::{DataKind, DatasetSummary, HealthIssue, health, split};
use crate::error::Result;
use crate::task::{ResolvedData, ScanProgress};
use crate::train::Control;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// The scanned splits of a text dataset, relabelled to the training classes.
pub struct TextSplits {
    pub labels: Vec<String>,
    pub train: Vec<LabeledFile>,
    pub validation: Vec<LabeledFile>,
    pub test: Vec<LabeledFile>,
    /// Text of every example, by its path (`file.txt` or `table.csv:LINE`).
    pub texts: HashMap<PathBuf, String>,
    pub summary: DatasetSummary,
}

impl TextSplits {
    pub(super) fn texts_of<'a>(&'a self, files: &[LabeledFile]) -> Vec<&'a str> {
        files
            .iter()
            .map(|f| self.texts.get(&f.path).map(String::as_str).unwrap_or(""))
            .collect()
    }
}

/// Scans every split, runs the health checks and splits validation off training if needed.
pub fn scan_splits(
    data: &ResolvedData,
    columns: &Columns,
    validation_split: f64,
    progress: ScanProgress<'_>,
    control: &Control,
) -> Result<TextSplits> {
    let check = || control.check_cancelled();
    let mut load = |root: &Path, name: &str| {
        text_data::load(
            root,
            name,
            columns,
            &mut |d, t| progress(d as u64, t as u64),
            &check,
        )
    };
    let train = load(&data.train, "train")?;
    let mut validation = data
        .validation
        .as_ref()
        .map(|p| load(p, "validation"))
        .transpose()?;
    let mut test = data.test.as_ref().map(|p| load(p, "test")).transpose()?;
    let labels = train.split.labels.clone();
    for s in validation.iter_mut().chain(test.iter_mut()) {
        s.split.relabel(&labels);
    }
    let others: Vec<&ScannedSplit> = validation
        .iter()
        .chain(test.iter())
        .map(|s| &s.split)
        .collect();
    let mut issues: Vec<HealthIssue> = train.split.issues.clone();
    for s in &others {
        issues.extend(s.issues.iter().cloned());
    }
    issues.extend(health::check(&train.split, &others, "text"));
    let (train_files, validation_files) = match &validation {
        Some(v) => (train.split.files.clone(), v.split.files.clone()),
        None => split::stratified(
            &train.split.files,
            labels.len(),
            validation_split,
            data.seed,
        ),
    };
    let mut splits = train.split.train_validation_summaries(
        validation.as_ref().map(|v| &v.split),
        &train_files,
        &validation_files,
    );
    if let Some(t) = &test {
        splits.push(t.split.summary());
    }
    let mut texts = train.texts;
    for s in validation.into_iter().chain(test.iter().cloned()) {
        texts.extend(s.texts);
    }
    let mut facts = BTreeMap::new();
    let n = train_files.len().max(1);
    let chars: usize = train_files
        .iter()
        .map(|f| texts.get(&f.path).map(|t| t.chars().count()).unwrap_or(0))
        .sum();
    facts.insert("mean_characters".into(), format!("{}", chars / n));
    facts.insert(
        "format".into(),
        if data.train.is_dir() {
            "class folders of .txt files"
        } else {
            "table"
        }
        .into(),
    );
    let summary = DatasetSummary {
        kind: DataKind::Text,
        labels: labels.clone(),
        splits,
        issues,
        facts,
    };
    Ok(TextSplits {
        labels,
        train: train_files,
        validation: validation_files,
        test: test.map(|t| t.split.files).unwrap_or_default(),
        texts,
        summary,
    })
}
