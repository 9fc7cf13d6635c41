//! One recording read for drawing (the app's data screen and preview): the sessions a data
//! source holds — a folder per activity of one file per session, or one table with session and
//! label columns — and one session's sensor values with its sample rate and duration.

use super::params::ActivityParams;
use super::records::{Records, column_roles, parse_rows, rate_of, read_records};
use super::scan::RECORDING_EXTENSIONS;
use crate::error::{Error, Result};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Where one session is: a file of its own, or a session id in a table.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordingRef {
    pub label: String,
    /// `walking/003.csv`, or `table.csv#ID`.
    pub name: String,
    pub path: PathBuf,
    /// The session id, in a table of sessions.
    pub session: Option<String>,
}

/// One session's sensor values, ready to plot.
#[derive(Clone, Debug, PartialEq)]
pub struct Recording {
    pub name: String,
    /// The sensor columns, one channel each.
    pub columns: Vec<String>,
    /// `[len, channels]` row-major.
    pub samples: Vec<f32>,
    pub sample_rate: f64,
    /// The rate was measured from the recording's timestamps (else: the `sample_rate` parameter).
    pub rate_measured: bool,
}

impl Recording {
    pub fn len(&self) -> usize {
        self.samples.len() / self.columns.len().max(1)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn duration_secs(&self) -> f64 {
        self.len() as f64 / self.sample_rate.max(1e-9)
    }

    /// The values of channel `k` over time.
    pub fn channel(&self, k: usize) -> impl Iterator<Item = f32> + '_ {
        self.samples
            .iter()
            .skip(k)
            .step_by(self.columns.len().max(1))
            .copied()
    }
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Every session of a data source (a folder of activity folders, or a table), by activity then
/// name; files are listed, not read, in the folder layout.
pub fn list(source: &Path, p: &ActivityParams) -> Result<Vec<RecordingRef>> {
    let mut out = Vec::new();
    if source.is_file() {
        let records = read_records(source)?;
        let roles = column_roles(&records, p, true, source)?;
        let col = |c: &Option<String>| {
            c.as_ref()
                .and_then(|c| records.columns.iter().position(|x| x == c))
        };
        let (Some(si), Some(li)) = (col(&roles.session), col(&roles.label)) else {
            return Ok(out);
        };
        let mut seen = BTreeSet::new();
        for (_, cells) in &records.rows {
            let (Some(id), Some(label)) = (cells.get(si), cells.get(li)) else {
                continue;
            };
            if !id.is_empty() && seen.insert(id.clone()) {
                out.push(RecordingRef {
                    label: label.clone(),
                    name: format!("{}#{id}", file_name(source)),
                    path: source.to_path_buf(),
                    session: Some(id.clone()),
                });
            }
        }
        out.sort_by(|a, b| (&a.label, &a.name).cmp(&(&b.label, &b.name)));
        return Ok(out);
    }
    for class_dir in crate::fsutil::sorted_entries(source)? {
        if !class_dir.is_dir() {
            continue;
        }
        let label = file_name(&class_dir);
        for file in crate::fsutil::sorted_entries(&class_dir)? {
            let ext = file
                .extension()
                .map(|e| e.to_string_lossy().to_lowercase())
                .unwrap_or_default();
            if file.is_file() && RECORDING_EXTENSIONS.contains(&ext.as_str()) {
                out.push(RecordingRef {
                    label: label.clone(),
                    name: format!("{label}/{}", file_name(&file)),
                    path: file,
                    session: None,
                });
            }
        }
    }
    Ok(out)
}

/// Reads one listed session.
pub fn read(r: &RecordingRef, p: &ActivityParams) -> Result<Recording> {
    let records = read_records(&r.path)?;
    let table = r.session.is_some();
    read_session(
        &records,
        p,
        table,
        r.session.as_deref(),
        r.name.clone(),
        &r.path,
    )
}

/// Reads a dropped recording file (the Preview): the whole file, or its first session when it is
/// a table of sessions.
pub fn read_file(path: &Path, p: &ActivityParams) -> Result<Recording> {
    let records = read_records(path)?;
    let table = column_roles(&records, p, true, path).is_ok();
    read_session(&records, p, table, None, file_name(path), path)
}

/// The rows of `session` (a table's first session when `None`), parsed as training parses them.
fn read_session(
    records: &Records,
    p: &ActivityParams,
    table: bool,
    session: Option<&str>,
    name: String,
    path: &Path,
) -> Result<Recording> {
    let roles = column_roles(records, p, table, path)?;
    let si = roles
        .session
        .as_ref()
        .and_then(|c| records.columns.iter().position(|x| x == c));
    let (rows, name): (Vec<usize>, String) = match si {
        Some(si) => {
            let id = session
                .map(str::to_string)
                .or_else(|| records.rows.first().and_then(|r| r.1.get(si).cloned()))
                .unwrap_or_default();
            let rows = (0..records.rows.len())
                .filter(|&k| {
                    records
                        .rows
                        .get(k)
                        .and_then(|r| r.1.get(si))
                        .is_some_and(|c| *c == id)
                })
                .collect();
            let name = if session.is_some() {
                name
            } else {
                format!("{name}#{id}")
            };
            (rows, name)
        }
        None => ((0..records.rows.len()).collect(), name),
    };
    let parsed = parse_rows(records, &roles, &rows);
    if parsed.kept.is_empty() {
        return Err(Error::data(
            "no row of this recording has a number in every sensor column",
            path,
        ));
    }
    let measured = roles
        .timestamp
        .as_ref()
        .and_then(|t| rate_of(&parsed.times, t))
        .map(|(r, _)| r);
    Ok(Recording {
        name,
        columns: roles.sensors,
        samples: parsed.values,
        sample_rate: measured.unwrap_or(p.sample_rate),
        rate_measured: measured.is_some(),
    })
}
