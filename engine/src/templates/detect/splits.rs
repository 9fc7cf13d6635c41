//! The detector's data: the annotations of training (and validation / test) read and checked,
//! a seeded share of the training images held out for validation, the health checks (no boxes
//! left, labels with too few boxes) and the dataset summary the scan shows.

use crate::data::annotations::{self, AnnotatedImage, Annotations};
use crate::data::{ClassCount, DataKind, DatasetSummary, HealthIssue, Severity, SplitSummary};
use crate::error::Result;
use crate::task::ResolvedData;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

/// The data of a detection run: training, validation and test images with their boxes.
pub struct DetectSplits {
    pub labels: Vec<String>,
    pub train: Vec<AnnotatedImage>,
    pub validation: Vec<AnnotatedImage>,
    pub test: Vec<AnnotatedImage>,
    pub train_set: Annotations,
    pub summary: DatasetSummary,
}

fn split_summary(
    name: &str,
    root: &Path,
    labels: &[String],
    images: &[AnnotatedImage],
    skipped: usize,
) -> SplitSummary {
    let mut classes: Vec<ClassCount> = labels
        .iter()
        .map(|l| ClassCount {
            label: l.clone(),
            count: 0,
            examples: Vec::new(),
        })
        .collect();
    for img in images {
        for o in &img.objects {
            if let Some(c) = classes.get_mut(o.label) {
                c.count += 1;
                if c.examples.len() < 3 && !c.examples.contains(&img.path) {
                    c.examples.push(img.path.clone());
                }
            }
        }
    }
    SplitSummary {
        name: name.into(),
        root: root.to_path_buf(),
        classes,
        num_examples: images.len(),
        num_skipped: skipped,
    }
}

/// Reads train (and validation / test) annotations and splits off validation images.
pub fn load_splits(data: &ResolvedData, validation_split: f64) -> Result<DetectSplits> {
    let train_set = annotations::load(&data.train, None)?;
    let labels = train_set.labels.clone();
    let mut issues: Vec<HealthIssue> = train_set.issues.clone();
    let mut train = train_set.images.clone();
    let validation = match &data.validation {
        Some(dir) => {
            let v = annotations::load(dir, Some(&labels))?;
            issues.extend(v.issues);
            v.images
        }
        None => {
            let n = ((train.len() as f64) * validation_split).round() as usize;
            let n = if validation_split > 0.0 && train.len() >= 4 {
                n.max(1)
            } else {
                0
            };
            let mut order: Vec<usize> = (0..train.len()).collect();
            order.shuffle(&mut StdRng::seed_from_u64(data.seed ^ 0x5EED_DE7E));
            let held: HashSet<usize> = order.into_iter().take(n).collect();
            let (v, t): (Vec<_>, Vec<_>) = train
                .into_iter()
                .enumerate()
                .partition(|(i, _)| held.contains(i));
            train = t.into_iter().map(|(_, x)| x).collect();
            v.into_iter().map(|(_, x)| x).collect()
        }
    };
    let test = match &data.test {
        Some(dir) => {
            let t = annotations::load(dir, Some(&labels))?;
            issues.extend(t.issues);
            t.images
        }
        None => Vec::new(),
    };
    if !train.iter().any(|i| !i.objects.is_empty())
        && !issues.iter().any(|i| i.severity == Severity::Error)
    {
        issues.push(HealthIssue::error(
            "no_boxes",
            "no training image with a box is left after the validation split; add annotated images",
            vec![train_set.file.clone()],
        ));
    }
    let counts = train_set.counts();
    for (label, count) in labels.iter().zip(&counts) {
        if *count < 2 {
            issues.push(HealthIssue::warning(
                "too_few_examples",
                format!("label \"{label}\" has {count} box; add more examples of it"),
                vec![train_set.file.clone()],
            ));
        }
    }
    let root = |p: &Option<PathBuf>| p.clone().unwrap_or_else(|| data.train.clone());
    let mut splits = vec![split_summary("train", &data.train, &labels, &train, 0)];
    if !validation.is_empty() {
        splits.push(split_summary(
            "validation",
            &root(&data.validation),
            &labels,
            &validation,
            0,
        ));
    }
    if let Some(t) = &data.test {
        splits.push(split_summary("test", t, &labels, &test, 0));
    }
    let mut facts = BTreeMap::new();
    facts.insert(
        "format".into(),
        match train_set.format {
            annotations::Format::CreateMl => "Create ML JSON".to_string(),
            annotations::Format::Coco => "COCO JSON".to_string(),
        },
    );
    facts.insert(
        "annotation_file".into(),
        train_set.file.display().to_string(),
    );
    facts.insert("boxes".into(), counts.iter().sum::<usize>().to_string());
    let summary = DatasetSummary {
        kind: DataKind::Detection,
        labels: labels.clone(),
        splits,
        issues,
        facts,
    };
    Ok(DetectSplits {
        labels,
        train,
        validation,
        test,
        train_set,
        summary,
    })
}
