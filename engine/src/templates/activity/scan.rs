//! Reading motion recordings in both layouts — a folder per activity holding one CSV / JSON file
//! per session, or one table with session, label and sensor columns — into [`Session`]s of
//! numbers, with the health checks (ragged rows, text or NaN in sensor columns, sessions shorter
//! than a window, a sample rate that varies, activities with too few sessions, the same session
//! in training and test) and the seeded by-session validation split. Reading the sources is in
//! `gather`, the checks on the gathered sessions in `scan_checks`.

use super::gather::{Gathered, Split, gather};
use super::params::ActivityParams;
use super::records::ColumnRoles;
use super::scan_checks::{assign_labels, drop_short, sample_rate, warn_few_sessions, warn_leakage};
use crate::data::{ClassCount, DataKind, DatasetSummary, HealthIssue, SplitSummary};
use crate::error::{Error, Result};
use crate::task::ResolvedData;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

/// Extensions of recording files in the folder layout.
pub const RECORDING_EXTENSIONS: &[&str] = &["csv", "tsv", "txt", "json"];

/// One recording session: its samples `[len, channels]` row-major.
#[derive(Clone, Debug)]
pub struct Session {
    /// `file.csv` or `table.csv#ID` (what predictions and reports name it by).
    pub name: String,
    pub path: PathBuf,
    pub label: usize,
    pub channels: usize,
    pub data: Vec<f32>,
    /// What identifies the session across splits (content hash, or the table's session id).
    pub key: String,
    /// Samples per second measured from its timestamps, if it has them.
    pub rate: Option<f64>,
}

impl Session {
    pub fn len(&self) -> usize {
        self.data.len() / self.channels.max(1)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The scanned data: sessions of every split with the columns and sample rate they share.
#[derive(Clone, Debug)]
pub struct ActivityData {
    pub labels: Vec<String>,
    /// The sensor columns, in model input order.
    pub columns: Vec<String>,
    pub timestamp_column: Option<String>,
    pub sample_rate: f64,
    pub train: Vec<Session>,
    pub validation: Vec<Session>,
    pub test: Vec<Session>,
    pub summary: DatasetSummary,
}

/// Scans every split, runs the health checks and splits validation sessions off training when
/// no validation data is given.
pub fn scan(
    data: &ResolvedData,
    p: &ActivityParams,
    cancelled: &dyn Fn() -> Result<()>,
) -> Result<ActivityData> {
    let mut g = Gathered {
        sessions: Vec::new(),
        issues: Vec::new(),
        short: Vec::new(),
        roles: None,
        irregular: Vec::new(),
    };
    gather(&data.train, Split::Train, p, &mut g, cancelled)?;
    if let Some(v) = &data.validation {
        gather(v, Split::Validation, p, &mut g, cancelled)?;
    }
    if let Some(t) = &data.test {
        gather(t, Split::Test, p, &mut g, cancelled)?;
    }
    let Some(roles) = g.roles.clone() else {
        return Err(Error::data(
            "no recordings found; give a folder with one folder per activity holding CSV or JSON files (one per session), or a CSV with session, label and sensor columns",
            &data.train,
        ));
    };
    let window = p.prediction_window;
    let kept = drop_short(&mut g, window);
    // Labels: the activities with a usable training session.
    let labels: Vec<String> = kept
        .iter()
        .filter(|(sp, _, _)| *sp == Split::Train)
        .map(|(_, l, _)| l.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if labels.is_empty() {
        return Err(Error::data(
            format!(
                "no usable training session: every recording is unreadable or shorter than one prediction window ({window} samples); see the warnings, or lower prediction_window"
            ),
            &data.train,
        ));
    }
    let [mut train, mut validation, test] = assign_labels(kept, &labels, &mut g.issues);
    if labels.len() < 2 {
        g.issues.push(HealthIssue::error(
            "too_few_classes",
            format!(
                "only one activity (\"{}\") has usable sessions; add recordings of at least one other activity",
                labels.join("")
            ),
            vec![data.train.clone()],
        ));
    }
    if data.validation.is_none() && p.validation_split > 0.0 {
        (train, validation) = split_sessions(train, labels.len(), p.validation_split, data.seed);
    }
    warn_few_sessions(&labels, &train, &validation, &mut g.issues);
    warn_leakage(&train, &validation, &test, &mut g.issues);
    let sample_rate = sample_rate(p, [&train, &validation, &test], &g.irregular, &mut g.issues);
    let summary = summary_of(
        data,
        &labels,
        [&train, &validation, &test],
        &roles,
        sample_rate,
        p,
        g.issues,
    );
    Ok(ActivityData {
        labels,
        columns: roles.sensors,
        timestamp_column: roles.timestamp,
        sample_rate,
        train,
        validation,
        test,
        summary,
    })
}

/// Splits `fraction` of each activity's sessions into validation (seeded; an activity with one
/// session stays in training).
pub fn split_sessions(
    sessions: Vec<Session>,
    num_labels: usize,
    fraction: f64,
    seed: u64,
) -> (Vec<Session>, Vec<Session>) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ 0x5e55_1075);
    let mut by_label: Vec<Vec<Session>> = vec![Vec::new(); num_labels];
    for s in sessions {
        if let Some(v) = by_label.get_mut(s.label) {
            v.push(s);
        }
    }
    let (mut train, mut validation) = (Vec::new(), Vec::new());
    for mut group in by_label {
        group.shuffle(&mut rng);
        let n = group.len();
        let take = if n >= 2 {
            ((n as f64 * fraction).round() as usize).clamp(1, n - 1)
        } else {
            0
        };
        for (i, s) in group.into_iter().enumerate() {
            if i < take {
                validation.push(s);
            } else {
                train.push(s);
            }
        }
    }
    train.sort_by(|a, b| a.name.cmp(&b.name));
    validation.sort_by(|a, b| a.name.cmp(&b.name));
    (train, validation)
}

fn summary_of(
    data: &ResolvedData,
    labels: &[String],
    splits: [&Vec<Session>; 3],
    roles: &ColumnRoles,
    sample_rate: f64,
    p: &ActivityParams,
    issues: Vec<HealthIssue>,
) -> DatasetSummary {
    let roots = [
        data.train.clone(),
        data.validation
            .clone()
            .unwrap_or_else(|| data.train.clone()),
        data.test.clone().unwrap_or_default(),
    ];
    let mut out = Vec::new();
    for ((name, sessions), root) in ["train", "validation", "test"]
        .into_iter()
        .zip(splits)
        .zip(roots)
    {
        if sessions.is_empty() && name != "train" {
            continue;
        }
        let classes = labels
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let of: Vec<&Session> = sessions.iter().filter(|s| s.label == i).collect();
                ClassCount {
                    label: l.clone(),
                    count: of.len(),
                    examples: of.iter().take(3).map(|s| s.path.clone()).collect(),
                }
            })
            .collect();
        out.push(SplitSummary {
            name: name.into(),
            root,
            classes,
            num_examples: sessions.len(),
            num_skipped: 0,
        });
    }
    let total: usize = splits.iter().map(|s| s.len()).sum();
    let samples: usize = splits.iter().flat_map(|s| s.iter()).map(Session::len).sum();
    let mut facts = BTreeMap::new();
    facts.insert("sessions".into(), total.to_string());
    facts.insert("samples".into(), samples.to_string());
    facts.insert("sensor columns".into(), roles.sensors.join(", "));
    facts.insert(
        "sample rate".into(),
        match &roles.timestamp {
            Some(t) => format!("{sample_rate:.1} Hz (from column {t})"),
            None => format!("{sample_rate:.1} Hz (sample_rate parameter)"),
        },
    );
    facts.insert(
        "prediction window".into(),
        format!(
            "{} samples ({:.2} s)",
            p.prediction_window,
            p.prediction_window as f64 / sample_rate.max(1e-9)
        ),
    );
    DatasetSummary {
        kind: DataKind::Table,
        labels: labels.to_vec(),
        splits: out,
        issues,
        facts,
    }
}
