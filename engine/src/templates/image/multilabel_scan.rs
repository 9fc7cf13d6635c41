//! Scanning multi-label image data: a folder of images plus a labels file (`labels.csv` or
//! `.json`, see [`crate::data::labels_file`]) that maps each image to any number of labels.
//! Health checks: unreadable images and entries naming missing images are warnings, images the
//! labels file does not mention are ignored with a warning, a label with fewer than 2 images is
//! an error, duplicates and train/test leakage as for single-label data.

use crate::data::image_folder::{self, LabeledFile, ScannedSplit};
use crate::data::summary::{ClassCount, SplitSummary};
use crate::data::{DataKind, DatasetSummary, HealthIssue, health, labels_file};
use crate::error::{Error, Result};
use crate::task::{ResolvedData, ScanProgress};
use crate::templates::image::scan::image_scan;
use crate::train::Control;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};

/// One scanned folder: its images (label index unused, 0) and each image's label names.
pub struct MultiLabelFolder {
    pub split: ScannedSplit,
    pub names: HashMap<PathBuf, Vec<String>>,
}

/// The scanned splits of a multi-label dataset, with targets as indices into `labels`.
pub struct MultiLabelSplits {
    pub labels: Vec<String>,
    pub train: Vec<LabeledFile>,
    pub validation: Vec<LabeledFile>,
    pub test: Vec<LabeledFile>,
    /// Label indices of every image of every split (empty: a negative example).
    pub targets: HashMap<PathBuf, Vec<u32>>,
    pub summary: DatasetSummary,
}

/// Where the labels file of `root` is: `labels_file` relative to the folder, or absolute.
pub fn labels_path(root: &Path, labels_file: &str) -> PathBuf {
    let p = Path::new(labels_file);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        root.join(p)
    }
}

/// Scans `root` with its labels file.
pub fn scan_folder(
    root: &Path,
    labels_file_name: &str,
    name: &str,
    progress: &mut dyn FnMut(usize, usize),
    check: &dyn Fn() -> Result<()>,
) -> Result<MultiLabelFolder> {
    if !root.is_dir() {
        return Err(Error::data(
            "no such folder; give the folder that holds the images and the labels file",
            root,
        ));
    }
    let path = labels_path(root, labels_file_name);
    if !path.is_file() {
        return Err(Error::data(
            format!(
                "no labels file here; write {labels_file_name} (a CSV with columns `image,labels`, labels separated by `;`) or set labels_file"
            ),
            path,
        ));
    }
    let entries = labels_file::read(&path)?;
    let mut issues = Vec::new();
    let mut seen = HashSet::new();
    let mut candidates = Vec::new();
    let mut names = HashMap::new();
    let (mut missing, mut repeated) = (Vec::new(), Vec::new());
    for e in entries {
        let file = root.join(&e.image);
        if !seen.insert(file.clone()) {
            repeated.push(file);
            continue;
        }
        if !file.is_file() {
            missing.push(file);
            continue;
        }
        names.insert(file.clone(), e.labels);
        candidates.push((file, 0));
    }
    if !missing.is_empty() {
        issues.push(HealthIssue::warning(
            "missing_image",
            format!(
                "{} entries of {} name images that do not exist; they were skipped",
                missing.len(),
                path.display()
            ),
            missing,
        ));
    }
    if !repeated.is_empty() {
        issues.push(HealthIssue::warning(
            "repeated_entry",
            format!(
                "{} images appear more than once in {}; the first entry was used",
                repeated.len(),
                path.display()
            ),
            repeated,
        ));
    }
    let mut listing_issues = Vec::new();
    let unlisted: Vec<PathBuf> = image_folder::list_files(root, &mut listing_issues)
        .into_iter()
        .filter(|f| *f != path && !names.contains_key(f) && is_image_name(f))
        .collect();
    if !unlisted.is_empty() {
        issues.push(HealthIssue::warning(
            "unlisted_image",
            format!("{} images are not in {} and were ignored; add them with their labels (or none) to use them", unlisted.len(), path.display()),
            unlisted,
        ));
    }
    let probed = image_folder::probe_files(&candidates, &image_scan(name), progress, check)?;
    issues.extend(probed.issues);
    let split = ScannedSplit {
        name: name.into(),
        root: root.to_path_buf(),
        labels: vec![String::new()],
        files: probed.files,
        issues,
        num_skipped: probed.num_skipped,
    };
    Ok(MultiLabelFolder { split, names })
}

fn is_image_name(p: &Path) -> bool {
    p.extension().is_some_and(|e| {
        crate::data::image_decode::IMAGE_EXTENSIONS
            .contains(&e.to_string_lossy().to_lowercase().as_str())
    })
}

fn split_summary(
    name: &str,
    root: &Path,
    files: &[LabeledFile],
    targets: &HashMap<PathBuf, Vec<u32>>,
    labels: &[String],
    skipped: usize,
) -> SplitSummary {
    let classes = labels
        .iter()
        .enumerate()
        .map(|(i, label)| {
            let of: Vec<&LabeledFile> = files
                .iter()
                .filter(|f| {
                    targets
                        .get(&f.path)
                        .is_some_and(|t| t.contains(&(i as u32)))
                })
                .collect();
            ClassCount {
                label: label.clone(),
                count: of.len(),
                examples: of.iter().take(8).map(|f| f.path.clone()).collect(),
            }
        })
        .collect();
    SplitSummary {
        name: name.into(),
        root: root.to_path_buf(),
        classes,
        num_examples: files.len(),
        num_skipped: skipped,
    }
}

/// Scans train (and validation / test folders, each with its own labels file of the same name),
/// runs the health checks, and splits validation off training (seeded) when no folder is given.
pub fn scan_multilabel(
    data: &ResolvedData,
    labels_file_name: &str,
    validation_split: f64,
    progress: ScanProgress<'_>,
    control: &Control,
) -> Result<MultiLabelSplits> {
    let check = || control.check_cancelled();
    let mut scan = |root: &Path, name: &str| {
        scan_folder(
            root,
            labels_file_name,
            name,
            &mut |d, t| progress(d as u64, t as u64),
            &check,
        )
    };
    let train = scan(&data.train, "train")?;
    let validation = data
        .validation
        .as_ref()
        .map(|p| scan(p, "validation"))
        .transpose()?;
    let test = data.test.as_ref().map(|p| scan(p, "test")).transpose()?;

    let labels: Vec<String> = train
        .names
        .values()
        .flatten()
        .cloned()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let index: HashMap<&str, u32> = labels
        .iter()
        .enumerate()
        .map(|(i, l)| (l.as_str(), i as u32))
        .collect();
    let mut targets = HashMap::new();
    let mut unknown: BTreeSet<String> = BTreeSet::new();
    for folder in std::iter::once(&train)
        .chain(validation.iter())
        .chain(test.iter())
    {
        for (path, names) in &folder.names {
            let mut t: Vec<u32> = Vec::new();
            for n in names {
                match index.get(n.as_str()) {
                    Some(&i) => t.push(i),
                    None => {
                        unknown.insert(n.clone());
                    }
                }
            }
            targets.insert(path.clone(), t);
        }
    }
    let mut issues: Vec<HealthIssue> = train.split.issues.clone();
    for f in validation.iter().chain(test.iter()) {
        issues.extend(f.split.issues.iter().cloned());
    }
    if labels.is_empty() {
        issues.push(HealthIssue::error("no_labels", "the labels file gives no labels to any training image; list each image's labels separated by `;`", vec![labels_path(&data.train, labels_file_name)]));
    }
    if !unknown.is_empty() {
        issues.push(HealthIssue::warning(
            "unknown_label",
            format!(
                "labels not in the training data were ignored in validation/test: {}",
                unknown.into_iter().collect::<Vec<_>>().join(", ")
            ),
            vec![],
        ));
    }
    for (i, l) in labels.iter().enumerate() {
        let n = train
            .split
            .files
            .iter()
            .filter(|f| {
                targets
                    .get(&f.path)
                    .is_some_and(|t| t.contains(&(i as u32)))
            })
            .count();
        if n < 2 {
            issues.push(HealthIssue::error(
                "too_few_examples",
                format!("label \"{l}\" has {n} image{}, need at least 2; add images with this label or remove it from the labels file", if n == 1 { "" } else { "s" }),
                vec![labels_path(&data.train, labels_file_name)],
            ));
        }
    }
    let others: Vec<&ScannedSplit> = validation
        .iter()
        .chain(test.iter())
        .map(|f| &f.split)
        .collect();
    issues.extend(health::file_checks(&train.split, &others));

    let (train_files, validation_files) = match &validation {
        Some(v) => (train.split.files.clone(), v.split.files.clone()),
        None => {
            let mut files = train.split.files.clone();
            files.sort_by(|a, b| a.path.cmp(&b.path));
            let mut rng = rand::rngs::StdRng::seed_from_u64(data.seed ^ 0x5EED_5917);
            files.shuffle(&mut rng);
            let n_val = if files.len() >= 10 {
                ((files.len() as f64) * validation_split).round() as usize
            } else {
                0
            };
            let val = files.split_off(files.len() - n_val);
            (files, val)
        }
    };
    let mut splits = vec![split_summary(
        "train",
        &data.train,
        &train_files,
        &targets,
        &labels,
        train.split.num_skipped,
    )];
    if !validation_files.is_empty() {
        let name = if validation.is_some() {
            "validation"
        } else {
            "validation (automatic split)"
        };
        let root = data
            .validation
            .clone()
            .unwrap_or_else(|| data.train.clone());
        splits.push(split_summary(
            name,
            &root,
            &validation_files,
            &targets,
            &labels,
            0,
        ));
    }
    if let (Some(t), Some(root)) = (&test, &data.test) {
        splits.push(split_summary(
            "test",
            root,
            &t.split.files,
            &targets,
            &labels,
            t.split.num_skipped,
        ));
    }
    let summary = DatasetSummary {
        kind: DataKind::Images,
        labels: labels.clone(),
        splits,
        issues,
        facts: Default::default(),
    };
    Ok(MultiLabelSplits {
        labels,
        train: train_files,
        validation: validation_files,
        test: test.map(|t| t.split.files).unwrap_or_default(),
        targets,
        summary,
    })
}
