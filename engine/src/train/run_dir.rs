//! The run folder: one per training, holding `events.jsonl`, `project.lock.toml`,
//! `checkpoints/`, `model/`, `report.json` and `report/*.png`.

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// A run folder's event log (one JSON event per line).
pub const EVENTS: &str = "events.jsonl";
/// A run folder's project with every parameter as used.
pub const LOCK_FILE: &str = "project.lock.toml";
/// The checkpoint of the last finished epoch, in `checkpoints/`.
pub const LAST_CHECKPOINT: &str = "last.safetensors";
/// The object detector's per-epoch checkpoint (head + trainable blocks + optimizer), in `checkpoints/`.
pub const DETECTOR_CHECKPOINT: &str = "detector_last.safetensors";
/// A model folder's configuration (labels, task, preprocessing).
pub const MODEL_CONFIG: &str = "config.json";
/// A model folder's weights.
pub const MODEL_WEIGHTS: &str = "model.safetensors";

/// Paths inside a run folder.
#[derive(Clone, Debug, PartialEq)]
pub struct RunDir {
    pub root: PathBuf,
}

impl RunDir {
    /// Creates a new run folder. An existing folder is only reused if it is empty: a finished
    /// run is never overwritten.
    pub fn create(root: &Path) -> Result<Self> {
        if root.exists() {
            let non_empty = std::fs::read_dir(root)
                .map(|mut d| d.next().is_some())
                .unwrap_or(true);
            if non_empty {
                return Err(Error::project(
                    "run folder already exists and is not empty; choose another --out (runs are never overwritten)",
                    Some(root),
                ));
            }
        }
        let dir = Self {
            root: root.to_path_buf(),
        };
        for sub in [dir.checkpoints(), dir.report_dir()] {
            std::fs::create_dir_all(&sub).map_err(|e| Error::io("creating run folder", &sub, e))?;
        }
        Ok(dir)
    }

    /// Opens an interrupted run for `--resume`: it must hold a lock file and no finished model.
    pub fn open_for_resume(root: &Path) -> Result<Self> {
        let dir = Self {
            root: root.to_path_buf(),
        };
        if !dir.lock_file().is_file() {
            return Err(Error::project(
                "not a Lathe run folder (no project.lock.toml); give the folder of the run to resume",
                Some(root),
            ));
        }
        if dir.model().join("config.json").is_file() {
            return Err(Error::project(
                "this run already finished; start a new run (or continue training from it)",
                Some(root),
            ));
        }
        for sub in [dir.checkpoints(), dir.report_dir()] {
            std::fs::create_dir_all(&sub).map_err(|e| Error::io("creating run folder", &sub, e))?;
        }
        Ok(dir)
    }

    /// A fresh folder name under `base/runs/`: `<template>-<UTC timestamp>`.
    pub fn default_root(base: &Path, template: &str) -> PathBuf {
        let stamp = utc_stamp(std::time::SystemTime::now());
        let mut candidate = base.join("runs").join(format!("{template}-{stamp}"));
        let mut n = 2;
        while candidate.exists() {
            candidate = base.join("runs").join(format!("{template}-{stamp}-{n}"));
            n += 1;
        }
        candidate
    }

    pub fn events(&self) -> PathBuf {
        self.root.join(EVENTS)
    }
    pub fn lock_file(&self) -> PathBuf {
        self.root.join(LOCK_FILE)
    }
    pub fn checkpoints(&self) -> PathBuf {
        self.root.join("checkpoints")
    }
    pub fn model(&self) -> PathBuf {
        self.root.join("model")
    }
    pub fn report_json(&self) -> PathBuf {
        self.root.join("report.json")
    }
    pub fn report_dir(&self) -> PathBuf {
        self.root.join("report")
    }
}

/// Where a run folder was when it was written: the `run_dir` of the first `started` event in its
/// `events.jsonl`. A folder that was copied or moved records the old place.
pub fn recorded_root(root: &Path) -> Option<PathBuf> {
    let text = std::fs::read_to_string(root.join(EVENTS)).ok()?;
    text.lines().find_map(
        |line| match serde_json::from_str::<crate::train::event::Event>(line) {
            Ok(crate::train::event::Event::Started { run_dir, .. }) => Some(run_dir),
            _ => None,
        },
    )
}

/// A path a run recorded while its folder was at `recorded`, as seen from the folder now at
/// `root`: unchanged when it exists (or the folder has not moved), else the same path relative to
/// the folder (`../../data/train` stays `../../data/train` next to the copy) when that exists.
/// A run folder copied together with its data (a whole project folder) keeps working.
pub fn relocate(path: &Path, recorded: &Path, root: &Path) -> PathBuf {
    if path.as_os_str().is_empty() || path.exists() || recorded == root {
        return path.to_path_buf();
    }
    let root = std::path::absolute(root).unwrap_or_else(|_| root.to_path_buf());
    let moved = if path.is_absolute() {
        normalize(&root.join(relative_path(recorded, path)))
    } else {
        return path.to_path_buf();
    };
    if moved.exists() {
        moved
    } else {
        path.to_path_buf()
    }
}

/// The run folder's `project.lock.toml`, its data paths relocated ([`relocate`]) when the folder
/// was copied or moved since the run wrote them.
pub fn load_lock(root: &Path) -> Result<crate::project::Project> {
    let dir = RunDir {
        root: root.to_path_buf(),
    };
    let mut project = crate::project::Project::load(&dir.lock_file())?;
    if let Some(recorded) = recorded_root(root) {
        let here = std::path::absolute(root).unwrap_or_else(|_| root.to_path_buf());
        let data = &mut project.data;
        data.train = relocate(&data.train, &recorded, &here);
        data.validation = data
            .validation
            .take()
            .map(|p| relocate(&p, &recorded, &here));
        data.test = data.test.take().map(|p| relocate(&p, &recorded, &here));
    }
    Ok(project)
}

/// `to` relative to the folder `from` (both absolute): `../../data` for `/p/runs/r` → `/p/data`.
fn relative_path(from: &Path, to: &Path) -> PathBuf {
    let from_norm = normalize(from);
    let from: Vec<_> = from_norm.components().collect();
    let to_norm = normalize(to);
    let to: Vec<_> = to_norm.components().collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut out = PathBuf::new();
    for _ in common..from.len() {
        out.push("..");
    }
    for c in &to[common..] {
        out.push(c.as_os_str());
    }
    out
}

/// Removes `.` and resolves `..` lexically (no file system access).
fn normalize(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// `YYYYMMDD-HHMMSS` in UTC, without a date crate.
pub fn utc_stamp(t: std::time::SystemTime) -> String {
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}{m:02}{d:02}-{:02}{:02}{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// ISO-8601 UTC time, for manifests.
pub fn utc_iso(t: std::time::SystemTime) -> String {
    let s = utc_stamp(t);
    format!(
        "{}-{}-{}T{}:{}:{}Z",
        &s[0..4],
        &s[4..6],
        &s[6..8],
        &s[9..11],
        &s[11..13],
        &s[13..15]
    )
}

/// Howard Hinnant's days-from-epoch to (year, month, day).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn stamps_known_dates_and_refuses_to_overwrite() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_795_000_000);
        assert_eq!(utc_stamp(t), "20261118-110640");
        assert_eq!(utc_iso(t), "2026-11-18T11:06:40Z");
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::create(&dir.path().join("r")).unwrap();
        std::fs::write(run.events(), "x").unwrap();
        assert!(RunDir::create(&run.root).is_err());
    }

    #[test]
    fn paths_of_a_moved_run_are_found_relative_to_it() {
        assert_eq!(
            relative_path(Path::new("/p/runs/r"), Path::new("/p/data/train")),
            PathBuf::from("../../data/train")
        );
        let tmp = tempfile::tempdir().unwrap();
        let new = tmp.path().join("copy");
        std::fs::create_dir_all(new.join("runs/r")).unwrap();
        std::fs::create_dir_all(new.join("data/train")).unwrap();
        let recorded = Path::new("/gone/project/runs/r");
        let here = new.join("runs/r");
        assert_eq!(
            relocate(Path::new("/gone/project/data/train"), recorded, &here),
            new.join("data/train")
        );
        // Not found next to the copy either: the recorded path, so errors name it.
        assert_eq!(
            relocate(Path::new("/gone/project/other"), recorded, &here),
            PathBuf::from("/gone/project/other")
        );
        // A path that still exists is kept.
        assert_eq!(relocate(tmp.path(), recorded, &here), tmp.path());
    }
}
