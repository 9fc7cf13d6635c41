//! Reading motion recordings in both layouts — a folder per activity holding one CSV / JSON file
//! per session, or one table with session, label and sensor columns — into [`Session`]s of
//! numbers, with the health checks (ragged rows, text or NaN in sensor columns, sessions shorter
//! than a window, a sample rate that varies, activities with too few sessions, the same session
//! in training and test) and the seeded by-session validation split.

use super::params::ActivityParams;
use super::records::{
    ColumnRoles, Parsed, column_roles, is_missing, parse_rows, rate_of, read_records,
};
use crate::data::{ClassCount, DataKind, DatasetSummary, HealthIssue, SplitSummary};
use crate::error::{Error, Result};
use crate::task::ResolvedData;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

/// Extensions of recording files in the folder layout.
pub const RECORDING_EXTENSIONS: &[&str] = &["csv", "tsv", "txt", "json"];
/// Fewest training sessions per activity below which a warning says so.
const FEW_SESSIONS: usize = 3;

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
/// Which split a source feeds.
#[derive(Clone, Copy, PartialEq)]
enum Split {
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
struct Gathered {
    sessions: Vec<(Split, String, Session)>,
    issues: Vec<HealthIssue>,
    short: Vec<PathBuf>,
    roles: Option<ColumnRoles>,
    irregular: Vec<PathBuf>,
}

/// Reads one split's source (a folder of class folders, or one table) into sessions labelled by
/// name (the label index is filled in later).
fn gather(
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

/// The gathered sessions at least one prediction window long; the shorter ones are skipped
/// with a warning.
fn drop_short(g: &mut Gathered, window: usize) -> Vec<(Split, String, Session)> {
    let mut kept: Vec<(Split, String, Session)> = Vec::new();
    for (split, label, s) in std::mem::take(&mut g.sessions) {
        if s.len() < window {
            g.short.push(s.path.clone());
            g.issues.push(HealthIssue::warning(
                "short_session",
                format!(
                    "{}: {} usable samples, shorter than one prediction window ({window}); it was skipped — record longer sessions or lower prediction_window",
                    s.name,
                    s.len()
                ),
                vec![s.path.clone()],
            ));
            continue;
        }
        kept.push((split, label, s));
    }
    kept
}

/// The kept sessions with their label index, by split (train, validation, test); sessions of
/// activities not in the training data are skipped with a warning.
fn assign_labels(
    kept: Vec<(Split, String, Session)>,
    labels: &[String],
    issues: &mut Vec<HealthIssue>,
) -> [Vec<Session>; 3] {
    let index: HashMap<&str, usize> = labels
        .iter()
        .enumerate()
        .map(|(i, l)| (l.as_str(), i))
        .collect();
    let (mut train, mut validation, mut test) = (Vec::new(), Vec::new(), Vec::new());
    let mut unknown: BTreeSet<String> = BTreeSet::new();
    for (split, label, mut s) in kept {
        let Some(&i) = index.get(label.as_str()) else {
            unknown.insert(label);
            continue;
        };
        s.label = i;
        match split {
            Split::Train => train.push(s),
            Split::Validation => validation.push(s),
            Split::Test => test.push(s),
        }
    }
    if !unknown.is_empty() {
        issues.push(HealthIssue::warning(
            "unknown_label",
            format!(
                "activities not in the training data were skipped: {}",
                unknown.into_iter().collect::<Vec<_>>().join(", ")
            ),
            Vec::new(),
        ));
    }
    [train, validation, test]
}

/// A warning for each activity with fewer than `FEW_SESSIONS` training + validation sessions.
fn warn_few_sessions(
    labels: &[String],
    train: &[Session],
    validation: &[Session],
    issues: &mut Vec<HealthIssue>,
) {
    for (i, l) in labels.iter().enumerate() {
        let n = train.iter().filter(|s| s.label == i).count()
            + validation.iter().filter(|s| s.label == i).count();
        if n < FEW_SESSIONS {
            issues.push(HealthIssue::warning(
                "too_few_examples",
                format!(
                    "activity \"{l}\" has only {n} usable training session(s); record at least {FEW_SESSIONS} (better 10+, from different people) so the model learns what varies between recordings"
                ),
                Vec::new(),
            ));
        }
    }
}

/// A warning when a test session is also in the training data (the same key).
fn warn_leakage(
    train: &[Session],
    validation: &[Session],
    test: &[Session],
    issues: &mut Vec<HealthIssue>,
) {
    let seen: BTreeMap<&str, &Session> = train
        .iter()
        .chain(validation)
        .map(|s| (s.key.as_str(), s))
        .collect();
    let leaked: Vec<&Session> = test
        .iter()
        .filter(|s| seen.contains_key(s.key.as_str()))
        .collect();
    if let Some(first) = leaked.first() {
        issues.push(HealthIssue::warning(
            "train_test_leakage",
            format!(
                "{} test session(s) are also in the training data (first: {}); the test accuracy will be too optimistic — keep each session in one split",
                leaked.len(),
                first.name
            ),
            leaked.iter().map(|s| s.path.clone()).collect(),
        ));
    }
}

/// The sample rate: the median of the sessions' timestamp rates, else the parameter; warnings
/// for sessions at another rate and for recordings with irregular timestamps.
fn sample_rate(
    p: &ActivityParams,
    [train, validation, test]: [&[Session]; 3],
    irregular: &[PathBuf],
    issues: &mut Vec<HealthIssue>,
) -> f64 {
    let window = p.prediction_window;
    let mut rates: Vec<f64> = train
        .iter()
        .chain(validation)
        .chain(test)
        .filter_map(|s| s.rate)
        .collect();
    rates.sort_by(f64::total_cmp);
    let sample_rate = rates.get(rates.len() / 2).copied().unwrap_or(p.sample_rate);
    let off: Vec<&Session> = train
        .iter()
        .chain(validation)
        .chain(test)
        .filter(|s| s.rate.is_some_and(|r| (r / sample_rate - 1.0).abs() > 0.1))
        .collect();
    if let Some(first) = off.first() {
        issues.push(HealthIssue::warning(
            "sample_rate_varies",
            format!(
                "{} session(s) are sampled at another rate than the usual {sample_rate:.1} Hz (first: {} at {:.1} Hz); windows of {window} samples then span different times — resample them to one rate",
                off.len(),
                first.name,
                first.rate.unwrap_or(0.0)
            ),
            off.iter().map(|s| s.path.clone()).collect(),
        ));
    }
    if !irregular.is_empty() {
        issues.push(HealthIssue::warning(
            "sample_rate_varies",
            format!(
                "{} recording(s) have irregular timestamps (more than 10% of the steps differ from the usual step by over half); the sample rate varies within them",
                irregular.len()
            ),
            irregular.to_vec(),
        ));
    }
    sample_rate
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
