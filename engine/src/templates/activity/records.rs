//! A recording file's rows as text cells (CSV with `,` `;` or tab, or a JSON array of objects),
//! the roles of its columns (sensors, timestamp, session, label), its rows parsed into sensor
//! values with the rows it had to skip, and the sample rate its timestamps give. `scan.rs` reads
//! the data set with these; prediction reads one recording with them.

use super::params::ActivityParams;
use crate::data::table::MISSING_TOKENS;
use crate::error::{Error, Result};
use std::path::Path;

/// Column names taken as the timestamp (compared lower-case).
const TIME_NAMES: &[&str] = &[
    "timestamp",
    "time",
    "t",
    "time_s",
    "time_ms",
    "timestamp_ms",
    "seconds",
    "elapsed",
];
const SESSION_NAMES: &[&str] = &[
    "session",
    "session_id",
    "sessionid",
    "recording",
    "recording_id",
];
const LABEL_NAMES: &[&str] = &["label", "activity", "class"];

/// A file's rows as text cells, before typing.
pub struct Records {
    pub columns: Vec<String>,
    /// (file line or record number, cells in `columns` order).
    pub rows: Vec<(u64, Vec<String>)>,
    /// Lines with the wrong number of fields.
    pub ragged: Vec<u64>,
}

/// Reads a CSV (`,` `;` or tab, a header row) or a JSON array of objects as text cells.
pub fn read_records(path: &Path) -> Result<Records> {
    let bytes = std::fs::read(path).map_err(|e| Error::io("reading", path, e))?;
    let text = String::from_utf8_lossy(&bytes);
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let is_json = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
        || text.trim_start().starts_with('[');
    if is_json {
        return read_json(text, path);
    }
    let header = text.lines().next().unwrap_or_default();
    let delimiter = [b',', b';', b'\t']
        .into_iter()
        .max_by_key(|d| header.bytes().filter(|b| b == d).count())
        .unwrap_or(b',');
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .has_headers(true)
        .from_reader(text.as_bytes());
    let columns: Vec<String> = reader
        .headers()
        .map_err(|e| Error::data(format!("cannot read the header line ({e})"), path))?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    if columns.iter().all(|c| c.is_empty()) {
        return Err(Error::data(
            "the file has no header line naming its columns; add one (e.g. timestamp,accel_x,accel_y,accel_z)",
            path,
        ));
    }
    let mut out = Records {
        columns,
        rows: Vec::new(),
        ragged: Vec::new(),
    };
    let mut record = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                let line = record.position().map(|p| p.line()).unwrap_or(0);
                if record.len() == 1 && record.get(0).is_some_and(|c| c.trim().is_empty()) {
                    continue;
                }
                if record.len() != out.columns.len() {
                    out.ragged.push(line);
                    continue;
                }
                out.rows
                    .push((line, record.iter().map(|c| c.trim().to_string()).collect()));
            }
            Err(e) => {
                out.ragged.push(e.position().map(|p| p.line()).unwrap_or(0));
                if !matches!(e.kind(), csv::ErrorKind::Utf8 { .. }) {
                    break;
                }
            }
        }
    }
    Ok(out)
}

fn read_json(text: &str, path: &Path) -> Result<Records> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        Error::data(
            format!("not a JSON array of objects ({e}); give one object per sample, e.g. [{{\"accel_x\": 0.1, …}}]"),
            path,
        )
    })?;
    let Some(items) = value.as_array() else {
        return Err(Error::data(
            "not a JSON array of objects; give one object per sample",
            path,
        ));
    };
    let mut columns: Vec<String> = Vec::new();
    for item in items {
        if let Some(o) = item.as_object() {
            for k in o.keys() {
                if !columns.contains(k) {
                    columns.push(k.clone());
                }
            }
        }
    }
    let mut out = Records {
        columns,
        rows: Vec::new(),
        ragged: Vec::new(),
    };
    for (i, item) in items.iter().enumerate() {
        let Some(o) = item.as_object() else {
            out.ragged.push(i as u64 + 1);
            continue;
        };
        let cells = out
            .columns
            .iter()
            .map(|c| match o.get(c) {
                Some(serde_json::Value::String(s)) => s.trim().to_string(),
                Some(serde_json::Value::Null) | None => String::new(),
                Some(v) => v.to_string(),
            })
            .collect();
        out.rows.push((i as u64 + 1, cells));
    }
    Ok(out)
}

/// How the columns of the data are used.
#[derive(Clone, Debug)]
pub struct ColumnRoles {
    pub sensors: Vec<String>,
    pub timestamp: Option<String>,
    pub session: Option<String>,
    pub label: Option<String>,
}

fn find(columns: &[String], given: &str, names: &[&str]) -> Option<String> {
    if !given.is_empty() {
        return columns.iter().find(|c| *c == given).cloned();
    }
    columns
        .iter()
        .find(|c| names.contains(&c.to_lowercase().as_str()))
        .cloned()
}

pub(super) fn is_missing(cell: &str) -> bool {
    MISSING_TOKENS.contains(&cell)
}

/// Decides the sensor, timestamp, session and label columns from a header and some rows.
pub fn column_roles(
    records: &Records,
    p: &ActivityParams,
    table: bool,
    path: &Path,
) -> Result<ColumnRoles> {
    let columns = &records.columns;
    let need = |given: &str, what: &str| -> Result<()> {
        if !given.is_empty() && !columns.iter().any(|c| c == given) {
            return Err(Error::data(
                format!(
                    "there is no {what} column \"{given}\"; the columns are: {}",
                    columns.join(", ")
                ),
                path,
            ));
        }
        Ok(())
    };
    need(&p.timestamp_column, "timestamp")?;
    let timestamp = find(columns, &p.timestamp_column, TIME_NAMES);
    let (session, label) = if table {
        need(&p.session_column, "session")?;
        need(&p.label_column, "label")?;
        let session = find(columns, &p.session_column, SESSION_NAMES).ok_or_else(|| {
            Error::data(
                format!(
                    "a single table needs a session column (session or session_id); name it with --param session_column=… (columns: {})",
                    columns.join(", ")
                ),
                path,
            )
        })?;
        let label = find(columns, &p.label_column, LABEL_NAMES).ok_or_else(|| {
            Error::data(
                format!(
                    "a single table needs a label column (label or activity); name it with --param label_column=… (columns: {})",
                    columns.join(", ")
                ),
                path,
            )
        })?;
        (Some(session), Some(label))
    } else {
        (None, None)
    };
    let reserved: Vec<&String> = [&timestamp, &session, &label]
        .into_iter()
        .flatten()
        .collect();
    let sensors: Vec<String> = if p.features.is_empty() {
        columns
            .iter()
            .enumerate()
            .filter(|(_, c)| !reserved.contains(c))
            .filter(|(i, _)| {
                let (mut numbers, mut texts) = (0usize, 0usize);
                for (_, row) in records.rows.iter().take(2000) {
                    let cell = row.get(*i).map(String::as_str).unwrap_or("");
                    if is_missing(cell) {
                        continue;
                    }
                    if cell.parse::<f64>().is_ok() {
                        numbers += 1;
                    } else {
                        texts += 1;
                    }
                }
                numbers > 0 && numbers >= texts
            })
            .map(|(_, c)| c.clone())
            .collect()
    } else {
        for f in &p.features {
            if !columns.contains(f) {
                return Err(Error::data(
                    format!(
                        "there is no sensor column \"{f}\" (--param features); the columns are: {}",
                        columns.join(", ")
                    ),
                    path,
                ));
            }
        }
        p.features.clone()
    };
    if sensors.is_empty() {
        return Err(Error::data(
            format!(
                "no numeric sensor column found (columns: {}); name them with --param features=accel_x,accel_y,…",
                columns.join(", ")
            ),
            path,
        ));
    }
    Ok(ColumnRoles {
        sensors,
        timestamp,
        session,
        label,
    })
}

/// Rows dropped from one file, by reason.
#[derive(Default)]
pub(super) struct Dropped {
    pub(super) ragged: Vec<u64>,
    text: Vec<(u64, String)>,
    missing: Vec<(u64, String)>,
}

impl Dropped {
    fn total(&self) -> usize {
        self.ragged.len() + self.text.len() + self.missing.len()
    }

    /// One warning line, or none.
    pub(super) fn message(&self, kept: usize) -> Option<String> {
        if self.total() == 0 {
            return None;
        }
        let mut parts = Vec::new();
        if let Some(l) = self.ragged.first() {
            parts.push(format!(
                "{} with the wrong number of fields (first: line {l})",
                self.ragged.len()
            ));
        }
        if let Some((l, c)) = self.text.first() {
            parts.push(format!(
                "{} with text in a sensor column (first: line {l}, column {c})",
                self.text.len()
            ));
        }
        if let Some((l, c)) = self.missing.first() {
            parts.push(format!(
                "{} with a missing or NaN sensor value (first: line {l}, column {c})",
                self.missing.len()
            ));
        }
        Some(format!(
            "{} rows skipped ({}); {kept} rows kept — fix the file to use them",
            self.total(),
            parts.join("; ")
        ))
    }
}

/// Parsed rows: per kept row its sensor values and timestamp.
pub(super) struct Parsed {
    pub(super) values: Vec<f32>,
    pub(super) times: Vec<f64>,
    /// Indices (into `records.rows`) of the kept rows.
    pub(super) kept: Vec<usize>,
    pub(super) dropped: Dropped,
}

pub(super) fn parse_rows(records: &Records, roles: &ColumnRoles, rows: &[usize]) -> Parsed {
    let idx: Vec<Option<usize>> = roles
        .sensors
        .iter()
        .map(|s| records.columns.iter().position(|c| c == s))
        .collect();
    let t_idx = roles
        .timestamp
        .as_ref()
        .and_then(|t| records.columns.iter().position(|c| c == t));
    let mut out = Parsed {
        values: Vec::with_capacity(rows.len() * idx.len()),
        times: Vec::new(),
        kept: Vec::new(),
        dropped: Dropped {
            ragged: records.ragged.clone(),
            ..Default::default()
        },
    };
    let mut row_values = Vec::with_capacity(idx.len());
    'rows: for &r in rows {
        let Some((line, cells)) = records.rows.get(r) else {
            continue;
        };
        row_values.clear();
        for (k, i) in idx.iter().enumerate() {
            let name = roles.sensors.get(k).cloned().unwrap_or_default();
            let cell = i
                .and_then(|i| cells.get(i))
                .map(String::as_str)
                .unwrap_or("");
            if is_missing(cell) {
                out.dropped.missing.push((*line, name));
                continue 'rows;
            }
            match cell.parse::<f64>() {
                Ok(v) if v.is_finite() => row_values.push(v as f32),
                Ok(_) => {
                    out.dropped.missing.push((*line, name));
                    continue 'rows;
                }
                Err(_) => {
                    out.dropped.text.push((*line, name));
                    continue 'rows;
                }
            }
        }
        if let Some(ti) = t_idx {
            let t = cells
                .get(ti)
                .and_then(|c| c.parse::<f64>().ok())
                .filter(|t| t.is_finite());
            match t {
                Some(t) => out.times.push(t),
                None => {
                    out.dropped
                        .missing
                        .push((*line, roles.timestamp.clone().unwrap_or_default()));
                    continue 'rows;
                }
            }
        }
        out.values.extend_from_slice(&row_values);
        out.kept.push(r);
    }
    out
}

/// Samples per second from timestamps (seconds, or milliseconds when the column's name says so
/// or the steps are ≥ 1), and whether the steps are irregular.
pub(super) fn rate_of(times: &[f64], column: &str) -> Option<(f64, bool)> {
    let mut dt: Vec<f64> = times
        .windows(2)
        .map(|w| w[1] - w[0])
        .filter(|d| d.is_finite())
        .collect();
    if dt.len() < 2 {
        return None;
    }
    let mut sorted = dt.clone();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[sorted.len() / 2];
    if median <= 0.0 {
        return None;
    }
    let name = column.to_lowercase();
    let scale = if name.ends_with("ns") || median >= 1e5 {
        1e-9
    } else if name.contains("ms") || median >= 1.0 {
        1e-3
    } else {
        1.0
    };
    let off = dt
        .iter_mut()
        .filter(|d| (**d - median).abs() > 0.5 * median)
        .count();
    Some((1.0 / (median * scale), off * 10 > dt.len()))
}
/// The sensor values of every usable row of `records` (`[rows, sensors]` row-major) and how many
/// rows were unusable (prediction reads a recording this way).
pub fn numbers(records: &Records, roles: &ColumnRoles) -> (Vec<f32>, usize) {
    let rows: Vec<usize> = (0..records.rows.len()).collect();
    let parsed = parse_rows(records, roles, &rows);
    let bad = parsed.dropped.total();
    (parsed.values, bad)
}
