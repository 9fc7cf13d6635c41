//! `DatasetSummary`: what a scan found — splits, classes with counts and examples — and the
//! health checks that turn common data mistakes into warnings or errors before training starts.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// How serious a health finding is: warnings let training go on, errors stop it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Warning,
    Error,
}

/// One finding of the health checks, with the files it is about.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HealthIssue {
    pub severity: Severity,
    /// Stable machine-readable code: `unreadable_file`, `not_an_image`, `too_few_examples`,
    /// `class_imbalance`, `duplicate_files`, `train_test_leakage`, `empty_class`, …
    pub code: String,
    /// One line in plain words that says what to do.
    pub message: String,
    /// The files or folders concerned (possibly many; the UI shows the first few).
    pub paths: Vec<PathBuf>,
}

impl HealthIssue {
    pub fn warning(code: &str, message: impl Into<String>, paths: Vec<PathBuf>) -> Self {
        Self {
            severity: Severity::Warning,
            code: code.into(),
            message: message.into(),
            paths,
        }
    }

    pub fn error(code: &str, message: impl Into<String>, paths: Vec<PathBuf>) -> Self {
        Self {
            severity: Severity::Error,
            code: code.into(),
            message: message.into(),
            paths,
        }
    }

    /// The message with the first path appended, as printed by the CLI.
    pub fn line(&self) -> String {
        match self.paths.first() {
            Some(p) if self.paths.len() > 1 => {
                format!(
                    "{}: {} (and {} more)",
                    self.message,
                    p.display(),
                    self.paths.len() - 1
                )
            }
            Some(p) => format!("{}: {}", self.message, p.display()),
            None => self.message.clone(),
        }
    }
}

/// One class of one split.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassCount {
    pub label: String,
    pub count: usize,
    /// A few example files, for thumbnails.
    pub examples: Vec<PathBuf>,
}

/// One split (training, validation or test) as found on disk.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SplitSummary {
    /// `train`, `validation` or `test`.
    pub name: String,
    pub root: PathBuf,
    pub classes: Vec<ClassCount>,
    /// Usable examples.
    pub num_examples: usize,
    /// Files that were skipped (their reasons are in the issues).
    pub num_skipped: usize,
}

/// What kind of data the summary describes; decides how the app previews it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataKind {
    Images,
    Text,
    Sound,
    Table,
    Detection,
}

/// Everything a scan learned about a dataset.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DatasetSummary {
    pub kind: DataKind,
    /// Class labels in training order (sorted).
    pub labels: Vec<String>,
    pub splits: Vec<SplitSummary>,
    pub issues: Vec<HealthIssue>,
    /// Extra facts per kind (image sizes seen, text lengths, column types, …) for the summary screen.
    #[serde(default)]
    pub facts: BTreeMap<String, String>,
}

impl DatasetSummary {
    pub fn has_errors(&self) -> bool {
        self.issues.iter().any(|i| i.severity == Severity::Error)
    }

    pub fn errors(&self) -> impl Iterator<Item = &HealthIssue> {
        self.issues.iter().filter(|i| i.severity == Severity::Error)
    }

    pub fn warnings(&self) -> impl Iterator<Item = &HealthIssue> {
        self.issues
            .iter()
            .filter(|i| i.severity == Severity::Warning)
    }

    pub fn split(&self, name: &str) -> Option<&SplitSummary> {
        self.splits.iter().find(|s| s.name == name)
    }
}
