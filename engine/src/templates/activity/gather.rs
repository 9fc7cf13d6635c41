//! Reading each split's source — a folder of activity folders with one recording per file, or
//! one table with session and label columns — into sessions labelled by name, with the
//! per-recording warnings (unreadable files, missing columns, bad rows, mixed labels) and the
//! timestamp rates.

use super::params::ActivityParams;
use super::records::{
    ColumnRoles, Parsed, column_roles, is_missing, parse_rows, rate_of, read_records,
};
use super::scan::{RECORDING_EXTENSIONS, Session};
use crate::data::HealthIssue;
use crate::error::{Error, Result};
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

/// Which split a source feeds.
#[derive(Clone, Copy, PartialEq)]
pub(super) enum Split {
    Train,
    Validation,
    Test,
}

impl Split {
    fn name(self) -> &'static str {
        match self {
            Self::Train => "train",
            Self::Validation => "validation",
            Self::Test => "test",
        }
    }
}

/// Everything the scan gathers before labels are fixed.
pub(super) struct Gathered {
    pub(super) sessions: Vec<(Split, String, Session)>,
    pub(super) issues: Vec<HealthIssue>,
    pub(super) short: Vec<PathBuf>,
    pub(super) roles: Option<ColumnRoles>,
    pub(super) irregular: Vec<PathBuf>,
}

/// Reads one split's source (a folder of class folders, or one table) into sessions labelled by
/// name (the label index is filled in later).
pub(super) fn gather(
    source: &Path,
    split: Split,
    p: &ActivityParams,
    g: &mut Gathered,
    cancelled: &dyn Fn() -> Result<()>,
) -> Result<()> {
    if source.is_file() {
        return gather_table(source, split, p, g);
    }
    if !source.is_dir() {
        return Err(Error::data(
            format!(
                "no such {} folder or table; give a folder with one folder per activity, or a CSV with session and label columns",
                split.name()
            ),
            source,
        ));
    }
    for class_dir in crate::fsutil::sorted_entries(source)? {
        if !class_dir.is_dir() {
            continue;
        }
        let label = class_dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        for file in crate::fsutil::sorted_entries(&class_dir)? {
            cancelled()?;
            let ext = file
                .extension()
                .map(|e| e.to_string_lossy().to_lowercase())
                .unwrap_or_default();
            if !file.is_file() || !RECORDING_EXTENSIONS.contains(&ext.as_str()) {
                continue;
            }
            let records = match read_records(&file) {
                Ok(r) => r,
                Err(e) => {
                    g.issues.push(HealthIssue::warning(
                        "unreadable_file",
                        format!("cannot read this recording ({e}); it was skipped"),
                        vec![file.clone()],
                    ));
                    continue;
                }
            };
            if g.roles.is_none() {
                g.roles = Some(column_roles(&records, p, false, &file)?);
            }
            let Some(roles) = g.roles.clone() else {
                continue;
            };
            if let Some(m) = roles.sensors.iter().find(|s| !records.columns.contains(s)) {
                g.issues.push(HealthIssue::warning(
                    "missing_column",
                    format!(
                        "this recording has no column \"{m}\" (the first recording has it); it was skipped — give every recording the same columns"
                    ),
                    vec![file.clone()],
                ));
                continue;
            }
            let rows: Vec<usize> = (0..records.rows.len()).collect();
            let parsed = parse_rows(&records, &roles, &rows);
            let key = crate::fsutil::hash_hex(
                &parsed
                    .values
                    .iter()
                    .flat_map(|v| v.to_le_bytes())
                    .collect::<Vec<u8>>(),
            );
            let name = file.to_string_lossy().into_owned();
            push_session(g, split, &label, name, &file, key, parsed, &roles);
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn push_session(
    g: &mut Gathered,
    split: Split,
    label: &str,
    name: String,
    file: &Path,
    key: String,
    parsed: Parsed,
    roles: &ColumnRoles,
) {
    let kept = parsed.kept.len();
    if let Some(m) = parsed.dropped.message(kept) {
        g.issues.push(HealthIssue::warning(
            "bad_rows",
            format!("{name}: {m}"),
            vec![file.to_path_buf()],
        ));
    }
    let rate = match &roles.timestamp {
        Some(t) => match rate_of(&parsed.times, t) {
            Some((r, irregular)) => {
                if irregular {
                    g.irregular.push(file.to_path_buf());
                }
                Some(r)
            }
            None => None,
        },
        None => None,
    };
    let session = Session {
        name,
        path: file.to_path_buf(),
        label: 0,
        channels: roles.sensors.len(),
        data: parsed.values,
        key,
        rate,
    };
    g.sessions.push((split, label.to_string(), session));
}

fn gather_table(source: &Path, split: Split, p: &ActivityParams, g: &mut Gathered) -> Result<()> {
    let records = read_records(source)?;
    let roles = column_roles(&records, p, true, source)?;
    if let Some(prev) = &g.roles
        && let Some(m) = prev.sensors.iter().find(|s| !records.columns.contains(s))
    {
        return Err(Error::data(
            format!(
                "this table has no sensor column \"{m}\" that the training data has; give every split the same columns"
            ),
            source,
        ));
    }
    let roles = match &g.roles {
        Some(prev) => ColumnRoles {
            sensors: prev.sensors.clone(),
            ..roles
        },
        None => roles,
    };
    g.roles.get_or_insert_with(|| roles.clone());
    let col = |name: &Option<String>| {
        name.as_ref()
            .and_then(|n| records.columns.iter().position(|c| c == n))
    };
    let (Some(si), Some(li)) = (col(&roles.session), col(&roles.label)) else {
        return Err(Error::data(
            "the session or label column is missing",
            source,
        ));
    };
    // Sessions in order of first appearance; each keeps the label of its first row.
    let mut order: Vec<String> = Vec::new();
    let mut rows_of: HashMap<String, (String, Vec<usize>)> = HashMap::new();
    let mut unlabeled = Vec::new();
    let mut mixed: BTreeSet<String> = BTreeSet::new();
    for (r, (line, cells)) in records.rows.iter().enumerate() {
        let id = cells.get(si).cloned().unwrap_or_default();
        let label = cells.get(li).cloned().unwrap_or_default();
        if is_missing(&id) || is_missing(&label) {
            unlabeled.push(*line);
            continue;
        }
        let entry = rows_of.entry(id.clone()).or_insert_with(|| {
            order.push(id.clone());
            (label.clone(), Vec::new())
        });
        if entry.0 != label {
            mixed.insert(id);
            continue;
        }
        entry.1.push(r);
    }
    if let Some(first) = unlabeled.first() {
        g.issues.push(HealthIssue::warning(
            "bad_rows",
            format!(
                "{} rows have no session id or label (first: line {first}) and were skipped",
                unlabeled.len()
            ),
            vec![source.to_path_buf()],
        ));
    }
    if let Some(first) = mixed.first() {
        g.issues.push(HealthIssue::warning(
            "mixed_labels",
            format!(
                "{} sessions have rows with more than one label (first: session \"{first}\"); only the rows with the session's first label are used — give each session one activity",
                mixed.len()
            ),
            vec![source.to_path_buf()],
        ));
    }
    let file_name = source
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut ragged_reported = false;
    for id in order {
        let Some((label, rows)) = rows_of.remove(&id) else {
            continue;
        };
        let mut parsed = parse_rows(&records, &roles, &rows);
        if ragged_reported {
            parsed.dropped.ragged.clear();
        }
        ragged_reported = true;
        let name = format!("{file_name}#{id}");
        push_session(g, split, &label, name, source, id, parsed, &roles);
    }
    Ok(())
}
