//! Scanning a folder with one subfolder per class into labelled files. Shared by every
//! folder-per-class template (images, sound, text): the caller passes which extensions count and
//! a probe that checks one file's bytes. Unreadable files become warnings; nothing is fatal
//! unless no usable file is left.

use crate::data::summary::{ClassCount, HealthIssue, SplitSummary};
use crate::error::{Error, Result};
use crate::fsutil::sorted_entries;
use rayon::prelude::*;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Files larger than this are refused during scanning (a class folder is not the place for them).
pub const MAX_FILE_BYTES: u64 = 512 * 1024 * 1024;

/// One usable file with its class.
#[derive(Clone, Debug, PartialEq)]
pub struct LabeledFile {
    pub path: PathBuf,
    /// Index into [`ScannedSplit::labels`].
    pub label: usize,
    /// BLAKE3 of the file content: finds duplicates and leakage and keys the feature cache.
    pub hash: [u8; 32],
}

/// A scanned split before health checks across splits.
#[derive(Clone, Debug, Default)]
pub struct ScannedSplit {
    pub name: String,
    pub root: PathBuf,
    /// Class names (folder names), sorted.
    pub labels: Vec<String>,
    pub files: Vec<LabeledFile>,
    pub issues: Vec<HealthIssue>,
    pub num_skipped: usize,
}

impl ScannedSplit {
    /// Counts per class with a few examples each, for the summary.
    pub fn summary(&self) -> SplitSummary {
        self.summary_of(&self.name, &self.files, self.num_skipped)
    }

    /// [`ScannedSplit::summary`] of a subset of this split's files, under another name.
    fn summary_of(&self, name: &str, files: &[LabeledFile], num_skipped: usize) -> SplitSummary {
        let classes = self
            .labels
            .iter()
            .enumerate()
            .map(|(i, label)| {
                let of_class = files.iter().filter(|f| f.label == i);
                ClassCount {
                    label: label.clone(),
                    count: of_class.clone().count(),
                    examples: of_class.take(8).map(|f| f.path.clone()).collect(),
                }
            })
            .collect();
        SplitSummary {
            name: name.to_string(),
            root: self.root.clone(),
            classes,
            num_examples: files.len(),
            num_skipped,
        }
    }

    /// Summaries of the training data and its validation data, as training will use them:
    /// `validation` when one was given, else the automatic split held out of `self` (then the
    /// training summary counts only the files left to train on, so "train" and "validation"
    /// add up to the folder).
    pub fn train_validation_summaries(
        &self,
        validation: Option<&ScannedSplit>,
        train_files: &[LabeledFile],
        validation_files: &[LabeledFile],
    ) -> Vec<SplitSummary> {
        match validation {
            Some(v) => vec![self.summary(), v.summary()],
            None if validation_files.is_empty() => vec![self.summary()],
            None => vec![
                self.summary_of(&self.name, train_files, self.num_skipped),
                self.summary_of("validation (automatic split)", validation_files, 0),
            ],
        }
    }

    /// Re-labels files to the index space of `labels` (e.g. the training classes); files whose
    /// class is not in `labels` are dropped and reported once per class.
    pub fn relabel(&mut self, labels: &[String]) {
        let map: Vec<Option<usize>> = self
            .labels
            .iter()
            .map(|l| labels.iter().position(|t| t == l))
            .collect();
        for (i, target) in map.iter().enumerate() {
            if target.is_none() {
                let dropped = self.files.iter().filter(|f| f.label == i).count();
                if dropped > 0 {
                    let name = &self.labels[i];
                    self.issues.push(HealthIssue::warning(
                        "unknown_class",
                        format!(
                            "class \"{name}\" in the {} data has no training examples; its {dropped} files are skipped",
                            self.name
                        ),
                        vec![self.root.join(name)],
                    ));
                    self.num_skipped += dropped;
                }
            }
        }
        self.files
            .retain_mut(|f| match map.get(f.label).copied().flatten() {
                Some(t) => {
                    f.label = t;
                    true
                }
                None => false,
            });
        self.labels = labels.to_vec();
    }
}

/// Checks one file's bytes; `Err(reason)` skips the file with a warning.
pub type Probe = dyn Fn(&Path, &[u8]) -> std::result::Result<(), String> + Sync;

/// What a folder-per-class scan accepts.
pub struct FolderScan<'a> {
    /// `train`, `validation` or `test`.
    pub split: &'a str,
    /// Lower-case file extensions that count as data (others are skipped with a warning).
    pub extensions: &'a [&'a str],
    /// What the data is called in messages ("image", "sound file", "text file").
    pub noun: &'a str,
    /// Checks one file's bytes; `Err(reason)` skips it with a warning.
    pub probe: &'a Probe,
}

/// Scans `root` (one subfolder per class). `progress(done, total)` is called between chunks and
/// `check` between chunks may return an error (e.g. cancellation) to stop.
pub fn scan(
    root: &Path,
    spec: &FolderScan<'_>,
    progress: &mut dyn FnMut(usize, usize),
    check: &dyn Fn() -> Result<()>,
) -> Result<ScannedSplit> {
    if !root.exists() {
        return Err(Error::data(
            format!("{} folder does not exist; check the path", spec.split),
            root,
        ));
    }
    if !root.is_dir() {
        return Err(Error::data(
            format!(
                "{} data must be a folder with one subfolder per class",
                spec.split
            ),
            root,
        ));
    }
    let mut out = ScannedSplit {
        name: spec.split.into(),
        root: root.to_path_buf(),
        ..Default::default()
    };
    let mut loose = Vec::new();
    let mut candidates: Vec<(PathBuf, usize)> = Vec::new();
    for entry in sorted_entries(root)? {
        if entry.is_dir() {
            let Some(name) = entry.file_name().map(|n| n.to_string_lossy().into_owned()) else {
                continue;
            };
            let label = out.labels.len();
            out.labels.push(name);
            let mut files = Vec::new();
            let mut seen = HashSet::new();
            walk(&entry, 0, &mut seen, &mut files, &mut out.issues);
            for f in files {
                candidates.push((f, label));
            }
        } else {
            loose.push(entry);
        }
    }
    if !loose.is_empty() {
        out.issues.push(HealthIssue::warning(
            "loose_files",
            format!(
                "{} files sit directly in the {} folder, outside any class folder, and are ignored; move them into a class folder",
                loose.len(),
                spec.split
            ),
            loose,
        ));
    }

    // Extension filter first: cheap, and keeps unrelated files (notes, .DS_Store) out of the count.
    let mut wrong_ext = Vec::new();
    candidates.retain(|(p, _)| {
        let ok = p
            .extension()
            .map(|e| {
                spec.extensions
                    .contains(&e.to_string_lossy().to_lowercase().as_str())
            })
            .unwrap_or(false);
        if !ok {
            wrong_ext.push(p.clone());
        }
        ok
    });
    if !wrong_ext.is_empty() {
        out.num_skipped += wrong_ext.len();
        out.issues.push(HealthIssue::warning(
            "not_a_data_file",
            format!(
                "{} files are not {}s ({}) and were skipped",
                wrong_ext.len(),
                spec.noun,
                spec.extensions.join(", ")
            ),
            wrong_ext,
        ));
    }

    let probed = probe_files(&candidates, spec, progress, check)?;
    out.files = probed.files;
    out.num_skipped += probed.num_skipped;
    out.issues.extend(probed.issues);

    for (i, label) in out.labels.iter().enumerate() {
        if !out.files.iter().any(|f| f.label == i) {
            out.issues.push(HealthIssue::warning(
                "empty_class",
                format!(
                    "class folder \"{label}\" has no usable {}s and is ignored",
                    spec.noun
                ),
                vec![root.join(label)],
            ));
        }
    }
    // Drop empty classes so they never become outputs of the model.
    let keep: Vec<String> = out
        .labels
        .iter()
        .enumerate()
        .filter(|(i, _)| out.files.iter().any(|f| f.label == *i))
        .map(|(_, l)| l.clone())
        .collect();
    if keep.len() != out.labels.len() {
        let issues_before = out.issues.len();
        out.relabel(&keep);
        out.issues.truncate(issues_before);
    }
    Ok(out)
}

/// Files that passed the probe, and warnings for those that did not.
pub struct Probed {
    pub files: Vec<LabeledFile>,
    pub issues: Vec<HealthIssue>,
    pub num_skipped: usize,
}

/// Reads, hashes and probes `(path, label)` candidates in parallel chunks; `progress(done,
/// total)` between chunks and `check` (cancellation) before each.
pub fn probe_files(
    candidates: &[(PathBuf, usize)],
    spec: &FolderScan<'_>,
    progress: &mut dyn FnMut(usize, usize),
    check: &dyn Fn() -> Result<()>,
) -> Result<Probed> {
    let mut out = Probed {
        files: Vec::new(),
        issues: Vec::new(),
        num_skipped: 0,
    };
    let total = candidates.len();
    progress(0, total);
    const CHUNK: usize = 256;
    for (chunk_index, chunk) in candidates.chunks(CHUNK).enumerate() {
        check()?;
        let results: Vec<std::result::Result<LabeledFile, (PathBuf, String)>> = chunk
            .par_iter()
            .map(|(path, label)| probe_file(path, *label, spec))
            .collect();
        for r in results {
            match r {
                Ok(f) => out.files.push(f),
                Err((path, reason)) => {
                    out.num_skipped += 1;
                    out.issues.push(HealthIssue::warning(
                        "unreadable_file",
                        format!("{reason}; the file was skipped"),
                        vec![path],
                    ));
                }
            }
        }
        progress(((chunk_index + 1) * CHUNK).min(total), total);
    }
    Ok(out)
}

/// Every file under `dir` (recursively, sorted, hidden entries and symlink loops skipped).
pub fn list_files(dir: &Path, issues: &mut Vec<HealthIssue>) -> Vec<PathBuf> {
    let mut files = Vec::new();
    walk(dir, 0, &mut HashSet::new(), &mut files, issues);
    files
}

fn probe_file(
    path: &Path,
    label: usize,
    spec: &FolderScan<'_>,
) -> std::result::Result<LabeledFile, (PathBuf, String)> {
    let fail = |reason: String| (path.to_path_buf(), reason);
    let meta = std::fs::metadata(path).map_err(|e| fail(format!("cannot read file ({e})")))?;
    if meta.len() == 0 {
        return Err(fail("file is empty".into()));
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(fail(format!(
            "file is {} MB, larger than the {} MB limit",
            meta.len() / 1_000_000,
            MAX_FILE_BYTES / 1_000_000
        )));
    }
    let bytes = std::fs::read(path).map_err(|e| fail(format!("cannot read file ({e})")))?;
    (spec.probe)(path, &bytes).map_err(fail)?;
    Ok(LabeledFile {
        path: path.to_path_buf(),
        label,
        hash: *blake3::hash(&bytes).as_bytes(),
    })
}

/// Recursively lists files under `dir` (sorted, hidden entries skipped), guarding against
/// symlink loops by remembering canonical folders and capping depth.
fn walk(
    dir: &Path,
    depth: usize,
    seen: &mut HashSet<PathBuf>,
    files: &mut Vec<PathBuf>,
    issues: &mut Vec<HealthIssue>,
) {
    const MAX_DEPTH: usize = 16;
    let canonical = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    if !seen.insert(canonical) {
        issues.push(HealthIssue::warning(
            "symlink_loop",
            "folder links back to a folder already scanned (a symlink loop) and was skipped",
            vec![dir.to_path_buf()],
        ));
        return;
    }
    if depth > MAX_DEPTH {
        issues.push(HealthIssue::warning(
            "too_deep",
            format!("folders nested deeper than {MAX_DEPTH} levels were skipped"),
            vec![dir.to_path_buf()],
        ));
        return;
    }
    let entries = match sorted_entries(dir) {
        Ok(e) => e,
        Err(e) => {
            issues.push(HealthIssue::warning(
                "unreadable_folder",
                format!("cannot list folder ({e})"),
                vec![dir.to_path_buf()],
            ));
            return;
        }
    };
    for entry in entries {
        if entry.is_dir() {
            walk(&entry, depth + 1, seen, files, issues);
        } else if entry.is_file() {
            files.push(entry);
        } else {
            issues.push(HealthIssue::warning(
                "not_a_file",
                "entry is not a regular file (broken link or device) and was skipped",
                vec![entry],
            ));
        }
    }
}
