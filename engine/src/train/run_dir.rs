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
}
