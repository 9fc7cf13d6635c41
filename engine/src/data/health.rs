//! Health checks across a dataset's splits: too few examples, class imbalance, duplicate
//! files, and the same file in training and test (leakage).

use crate::data::image_folder::{LabeledFile, ScannedSplit};
use crate::data::summary::HealthIssue;
use std::collections::HashMap;
use std::path::PathBuf;

/// Fewest training examples a class may have.
pub const MIN_EXAMPLES_PER_CLASS: usize = 2;
/// Largest/smallest class ratio above which imbalance is reported.
pub const MAX_IMBALANCE: f64 = 10.0;

/// Runs every check over the training split and the optional other splits.
pub fn check(train: &ScannedSplit, others: &[&ScannedSplit], noun: &str) -> Vec<HealthIssue> {
    let mut issues = Vec::new();
    let counts: Vec<usize> = (0..train.labels.len())
        .map(|i| train.files.iter().filter(|f| f.label == i).count())
        .collect();
    if train.labels.len() < 2 {
        issues.push(HealthIssue::error(
            "too_few_classes",
            format!(
                "found {} class folder(s) with {noun}s, need at least 2; put each class's {noun}s in its own subfolder",
                train.labels.len()
            ),
            vec![train.root.clone()],
        ));
    }
    for (label, &count) in train.labels.iter().zip(&counts) {
        if count < MIN_EXAMPLES_PER_CLASS {
            issues.push(HealthIssue::error(
                "too_few_examples",
                format!("class \"{label}\" has {count} {noun}, need at least {MIN_EXAMPLES_PER_CLASS}; add more or remove the folder"),
                vec![train.root.join(label)],
            ));
        }
    }
    if let (Some(max), Some(min)) = (counts.iter().max(), counts.iter().filter(|c| **c > 0).min())
        && *max as f64 > MAX_IMBALANCE * *min as f64
    {
        let big = counts
            .iter()
            .position(|c| c == max)
            .and_then(|i| train.labels.get(i));
        let small = counts
            .iter()
            .position(|c| c == min)
            .and_then(|i| train.labels.get(i));
        if let (Some(big), Some(small)) = (big, small) {
            issues.push(HealthIssue::warning(
                    "class_imbalance",
                    format!(
                        "classes are imbalanced: \"{big}\" has {max} {noun}s but \"{small}\" only {min} (more than {MAX_IMBALANCE}:1); the model may ignore \"{small}\", add examples to it"
                    ),
                    vec![train.root.join(small)],
                ));
        }
    }
    issues.extend(file_checks(train, others));
    issues
}

/// Duplicate files, identical files with different labels, and files shared between training and
/// validation/test. Labels only matter for the conflict check.
pub fn file_checks(train: &ScannedSplit, others: &[&ScannedSplit]) -> Vec<HealthIssue> {
    let mut issues = Vec::new();
    let mut all: Vec<(&str, &LabeledFile)> = train.files.iter().map(|f| ("train", f)).collect();
    for s in others {
        all.extend(s.files.iter().map(|f| (s.name.as_str(), f)));
    }
    let mut by_hash: HashMap<[u8; 32], Vec<(&str, &LabeledFile)>> = HashMap::new();
    for (split, f) in all {
        by_hash.entry(f.hash).or_default().push((split, f));
    }
    let mut groups: Vec<&Vec<(&str, &LabeledFile)>> =
        by_hash.values().filter(|g| g.len() > 1).collect();
    groups.sort_by(|a, b| a[0].1.path.cmp(&b[0].1.path));
    let mut duplicates: Vec<PathBuf> = Vec::new();
    let mut leaked: Vec<PathBuf> = Vec::new();
    let mut conflicting: Vec<PathBuf> = Vec::new();
    for group in groups {
        let in_train = group.iter().any(|(s, _)| *s == "train");
        let elsewhere = group.iter().any(|(s, _)| *s != "train");
        if in_train && elsewhere {
            leaked.extend(group.iter().map(|(_, f)| f.path.clone()));
        } else {
            duplicates.extend(group.iter().map(|(_, f)| f.path.clone()));
        }
        if group
            .iter()
            .any(|(s, f)| *s == group[0].0 && f.label != group[0].1.label)
        {
            conflicting.extend(group.iter().map(|(_, f)| f.path.clone()));
        }
    }
    if !duplicates.is_empty() {
        issues.push(HealthIssue::warning(
            "duplicate_files",
            format!("{} files are exact duplicates of another file; duplicates over-weight those examples", duplicates.len()),
            duplicates,
        ));
    }
    if !conflicting.is_empty() {
        issues.push(HealthIssue::warning(
            "conflicting_labels",
            format!(
                "{} identical files carry different labels; check which class they belong to",
                conflicting.len()
            ),
            conflicting,
        ));
    }
    if !leaked.is_empty() {
        issues.push(HealthIssue::warning(
            "train_test_leakage",
            format!(
                "{} files appear both in the training data and in the validation or test data; scores on those sets will be too optimistic, remove the copies",
                leaked.len()
            ),
            leaked,
        ));
    }
    issues
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::data::summary::Severity;

    fn file(name: &str, label: usize, content: u8) -> LabeledFile {
        LabeledFile {
            path: PathBuf::from(name),
            label,
            hash: [content; 32],
        }
    }

    fn split(name: &str, labels: &[&str], files: Vec<LabeledFile>) -> ScannedSplit {
        ScannedSplit {
            name: name.into(),
            root: PathBuf::from(name),
            labels: labels.iter().map(|s| s.to_string()).collect(),
            files,
            ..Default::default()
        }
    }

    #[test]
    fn finds_too_few_imbalance_duplicates_and_leakage() {
        let mut files: Vec<LabeledFile> = (0..22)
            .map(|i| file(&format!("a{i}"), 0, i as u8))
            .collect();
        files.push(file("b0", 1, 100));
        files.push(file("b1", 1, 100)); // duplicate of b0
        let train = split("train", &["a", "b"], files);
        let test = split("test", &["a", "b"], vec![file("t0", 0, 3)]); // same content as a3
        let issues = check(&train, &[&test], "image");
        let codes: Vec<&str> = issues.iter().map(|i| i.code.as_str()).collect();
        assert!(codes.contains(&"class_imbalance"), "{codes:?}");
        assert!(codes.contains(&"duplicate_files"), "{codes:?}");
        assert!(codes.contains(&"train_test_leakage"), "{codes:?}");
        assert!(issues.iter().all(|i| i.severity == Severity::Warning));

        let one = split(
            "train",
            &["a", "b"],
            vec![file("a0", 0, 1), file("a1", 0, 2), file("b0", 1, 3)],
        );
        let issues = check(&one, &[], "image");
        let e = issues
            .iter()
            .find(|i| i.code == "too_few_examples")
            .unwrap();
        assert_eq!(e.severity, Severity::Error);
        assert!(
            e.line()
                .contains("class \"b\" has 1 image, need at least 2"),
            "{}",
            e.line()
        );
    }
}
