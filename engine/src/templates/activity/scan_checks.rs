//! The activity scan's checks on the gathered sessions: sessions shorter than a window dropped,
//! label indices assigned (activities missing from training skipped), too few sessions per
//! activity, test sessions also in training, and the sample rate (median of the timestamps' rates)
//! with the sessions recorded at another rate.

use super::gather::{Gathered, Split};
use super::params::ActivityParams;
use super::scan::Session;
use crate::data::HealthIssue;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;

/// Fewest training sessions per activity below which a warning says so.
const FEW_SESSIONS: usize = 3;

/// The gathered sessions at least one prediction window long; the shorter ones are skipped
/// with a warning.
pub(super) fn drop_short(g: &mut Gathered, window: usize) -> Vec<(Split, String, Session)> {
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
pub(super) fn assign_labels(
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
pub(super) fn warn_few_sessions(
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
pub(super) fn warn_leakage(
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
pub(super) fn sample_rate(
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
