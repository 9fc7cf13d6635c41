//! `RunState`: the pure fold of a session's events. The app draws it, the CLI prints it, tests
//! assert on it, and a recorded `events.jsonl` replays into the same state.

use crate::train::event::{EpochMetrics, Event, Outcome, Phase};
use serde::Serialize;
use std::collections::HashMap;
use std::path::PathBuf;

/// Where a run stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    #[default]
    NotStarted,
    Running,
    Paused,
    Completed,
    Cancelled,
    Failed,
}

impl Status {
    pub fn is_finished(self) -> bool {
        matches!(self, Self::Completed | Self::Cancelled | Self::Failed)
    }
}

/// A bounded series of `[x, y]` points: when full, every other point is dropped, so memory stays
/// bounded and the curve keeps its shape (as burn's full-history renderer does).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct History {
    points: Vec<[f64; 2]>,
    capacity: usize,
    /// Keep one point in `stride` after decimation.
    stride: usize,
    seen: usize,
}

impl History {
    pub fn new(capacity: usize) -> Self {
        Self {
            points: Vec::new(),
            capacity: capacity.max(4),
            stride: 1,
            seen: 0,
        }
    }

    pub fn push(&mut self, x: f64, y: f64) {
        if !y.is_finite() {
            return;
        }
        self.seen += 1;
        if !(self.seen - 1).is_multiple_of(self.stride) {
            return;
        }
        self.points.push([x, y]);
        if self.points.len() >= self.capacity {
            let kept: Vec<[f64; 2]> = self.points.iter().step_by(2).copied().collect();
            self.points = kept;
            self.stride *= 2;
        }
    }

    /// Drops points with x > `x` (a resumed run trains those again).
    pub fn truncate_after(&mut self, x: f64) {
        self.points.retain(|p| p[0] <= x);
    }

    pub fn points(&self) -> &[[f64; 2]] {
        &self.points
    }

    pub fn last(&self) -> Option<[f64; 2]> {
        self.points.last().copied()
    }

    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }
}

impl Default for History {
    fn default() -> Self {
        Self::new(2048)
    }
}

/// Progress of the current phase.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PhaseProgress {
    pub phase: Phase,
    pub done: u64,
    pub total: u64,
    pub elapsed_secs: f64,
}

impl PhaseProgress {
    /// 0–1.
    pub fn fraction(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            (self.done as f64 / self.total as f64).clamp(0.0, 1.0)
        }
    }

    /// Seconds left at the rate so far.
    pub fn eta_secs(&self) -> Option<f64> {
        if self.done == 0 || self.total == 0 || self.elapsed_secs <= 0.0 {
            return None;
        }
        Some(self.elapsed_secs / self.done as f64 * (self.total.saturating_sub(self.done)) as f64)
    }
}

/// One evaluation result.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EvaluationResult {
    pub split: String,
    pub num_examples: usize,
    pub metric: String,
    pub value: f64,
}

/// Everything known about a run, from its events.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct RunState {
    pub status: Status,
    pub run_dir: Option<PathBuf>,
    pub template: String,
    pub device: String,
    pub labels: Vec<String>,
    pub num_train: usize,
    pub num_validation: usize,
    pub num_test: usize,
    pub phase: Option<PhaseProgress>,
    pub epoch: usize,
    pub epochs: usize,
    pub step_loss: History,
    pub train_loss: History,
    pub validation_loss: History,
    pub train_accuracy: History,
    pub validation_accuracy: History,
    pub last_epoch: Option<EpochMetrics>,
    pub warnings: Vec<(String, Option<PathBuf>)>,
    /// Warnings beyond the ones kept.
    pub warnings_dropped: usize,
    /// Warnings of the attempts before a resume (`Started { resumed: true }`) that the resumed
    /// attempt has not repeated yet, with how many times each is still expected: a resumed run
    /// scans its data again and repeats them, and each is counted once. (Warnings dropped beyond
    /// the ones kept cannot be matched and would count again.)
    #[serde(skip)]
    earlier_warnings: HashMap<(String, Option<PathBuf>), usize>,
    pub last_checkpoint: Option<PathBuf>,
    /// Features reused from the cache.
    pub cached_features: usize,
    pub evaluations: Vec<EvaluationResult>,
    pub exports: Vec<(String, PathBuf)>,
    pub model_dir: Option<PathBuf>,
    pub error: Option<String>,
    pub elapsed_secs: f64,
    /// Events applied so far.
    pub events_seen: usize,
}

/// Warnings kept in memory (the rest are counted).
const MAX_WARNINGS: usize = 1000;

impl RunState {
    /// Applies one event. Pure: no clock, no IO.
    pub fn apply(&mut self, event: &Event) {
        self.events_seen += 1;
        match event {
            Event::Started {
                run_dir,
                template,
                device,
                resumed,
                ..
            } => {
                if *resumed {
                    self.earlier_warnings.clear();
                    for w in &self.warnings {
                        *self.earlier_warnings.entry(w.clone()).or_default() += 1;
                    }
                }
                self.status = Status::Running;
                self.run_dir = Some(run_dir.clone());
                self.template = template.clone();
                self.device = device.clone();
            }
            Event::Data {
                num_train,
                num_validation,
                num_test,
                labels,
            } => {
                self.num_train = *num_train;
                self.num_validation = *num_validation;
                self.num_test = *num_test;
                self.labels = labels.clone();
            }
            Event::Phase {
                phase,
                done,
                total,
                elapsed_secs,
            } => {
                self.phase = Some(PhaseProgress {
                    phase: *phase,
                    done: *done,
                    total: *total,
                    elapsed_secs: *elapsed_secs,
                });
            }
            Event::Step {
                epoch,
                step,
                steps,
                loss,
            } => {
                let x = epoch.saturating_sub(1) as f64 + *step as f64 / (*steps).max(1) as f64;
                self.step_loss.push(x, *loss);
            }
            Event::EpochEnd(m) => {
                let x = m.epoch as f64;
                self.epoch = m.epoch;
                self.epochs = m.epochs;
                self.train_loss.push(x, m.train_loss);
                if let Some(v) = m.validation_loss {
                    self.validation_loss.push(x, v);
                }
                if let Some(a) = m.train_accuracy {
                    self.train_accuracy.push(x, a);
                }
                if let Some(a) = m.validation_accuracy {
                    self.validation_accuracy.push(x, a);
                }
                self.last_epoch = Some(m.clone());
            }
            Event::Warning { message, path } => {
                let key = (message.clone(), path.clone());
                if let Some(left) = self.earlier_warnings.get_mut(&key) {
                    // The resumed attempt repeats a warning of an earlier one.
                    *left -= 1;
                    if *left == 0 {
                        self.earlier_warnings.remove(&key);
                    }
                } else if self.warnings.len() < MAX_WARNINGS {
                    self.warnings.push(key);
                } else {
                    self.warnings_dropped += 1;
                }
            }
            Event::Cache { reused, .. } => self.cached_features = *reused,
            Event::Checkpoint { path, .. } => self.last_checkpoint = Some(path.clone()),
            Event::Restored { epoch, .. } => {
                let cut = *epoch as f64;
                for h in [
                    &mut self.train_loss,
                    &mut self.validation_loss,
                    &mut self.train_accuracy,
                    &mut self.validation_accuracy,
                ] {
                    h.truncate_after(cut);
                }
                self.step_loss.truncate_after(cut);
                self.epoch = *epoch;
            }
            Event::Paused => self.status = Status::Paused,
            Event::Resumed => self.status = Status::Running,
            Event::Evaluated {
                split,
                num_examples,
                metric,
                value,
            } => self.evaluations.push(EvaluationResult {
                split: split.clone(),
                num_examples: *num_examples,
                metric: metric.clone(),
                value: *value,
            }),
            Event::Exported { format, path } => self.exports.push((format.clone(), path.clone())),
            Event::Finished {
                outcome,
                elapsed_secs,
            } => {
                self.elapsed_secs = *elapsed_secs;
                self.phase = None;
                match outcome {
                    Outcome::Completed { model_dir } => {
                        self.status = Status::Completed;
                        self.model_dir = Some(model_dir.clone());
                    }
                    Outcome::Cancelled { .. } => self.status = Status::Cancelled,
                    Outcome::Failed { message } => {
                        self.status = Status::Failed;
                        self.error = Some(message.clone());
                    }
                }
            }
        }
    }

    /// Replays a recorded `events.jsonl`; lines that do not parse (a torn last line) are skipped.
    pub fn replay(text: &str) -> Self {
        let mut state = Self::default();
        for line in text.lines() {
            if let Ok(e) = serde_json::from_str::<Event>(line) {
                state.apply(&e);
            }
        }
        state
    }

    /// Warnings of the run, each counted once: the kept ones and those dropped beyond them.
    pub fn warning_count(&self) -> usize {
        self.warnings.len() + self.warnings_dropped
    }

    /// The evaluation on `split`, if any.
    pub fn evaluation(&self, split: &str) -> Option<&EvaluationResult> {
        self.evaluations.iter().rev().find(|e| e.split == split)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn history_stays_bounded_and_keeps_the_ends() {
        let mut h = History::new(64);
        for i in 0..10_000 {
            h.push(i as f64, (i as f64).sqrt());
        }
        assert!(h.points().len() < 64);
        assert_eq!(h.points()[0], [0.0, 0.0]);
        assert!(h.last().unwrap()[0] > 9000.0);
        let xs: Vec<f64> = h.points().iter().map(|p| p[0]).collect();
        assert!(xs.windows(2).all(|w| w[0] < w[1]));
    }

    fn warning(message: &str, path: Option<&str>) -> Event {
        Event::Warning {
            message: message.into(),
            path: path.map(PathBuf::from),
        }
    }

    fn started(resumed: bool) -> Event {
        Event::Started {
            run_dir: "r".into(),
            template: "image-classifier".into(),
            device: "cpu".into(),
            seed: 1,
            lathe_version: "0".into(),
            resumed,
        }
    }

    #[test]
    fn a_resumed_run_counts_the_warnings_it_repeats_once() {
        let mut s = RunState::default();
        s.apply(&started(false));
        s.apply(&warning("unreadable image", Some("a.png")));
        s.apply(&warning("unreadable image", Some("a.png")));
        s.apply(&warning("class cat is small", None));
        // Interrupted; `--resume` scans again and repeats the scan's warnings, then finds a new one.
        s.apply(&started(true));
        s.apply(&warning("class cat is small", None));
        s.apply(&warning("unreadable image", Some("a.png")));
        s.apply(&warning("unreadable image", Some("a.png")));
        s.apply(&warning("loss was not finite at epoch 3", None));
        assert_eq!(s.warning_count(), 4);
        assert_eq!(
            s.warnings.last(),
            Some(&("loss was not finite at epoch 3".to_string(), None))
        );
        // A run that is not resumed keeps every warning, repeated or not.
        let mut fresh = RunState::default();
        for e in [started(false), warning("w", None), warning("w", None)] {
            fresh.apply(&e);
        }
        assert_eq!(fresh.warning_count(), 2);
    }

    #[test]
    fn folds_a_run() {
        let events = [
            started(false),
            Event::Phase {
                phase: Phase::ExtractingFeatures,
                done: 5,
                total: 10,
                elapsed_secs: 2.0,
            },
            Event::Paused,
            Event::Resumed,
            Event::EpochEnd(EpochMetrics {
                epoch: 1,
                epochs: 2,
                train_loss: 1.0,
                train_accuracy: Some(0.5),
                validation_loss: Some(1.2),
                validation_accuracy: Some(0.4),
                learning_rate: 0.01,
                elapsed_secs: 1.0,
            }),
            Event::Finished {
                outcome: Outcome::Completed {
                    model_dir: "r/model".into(),
                },
                elapsed_secs: 3.0,
            },
        ];
        let mut s = RunState::default();
        for (i, e) in events.iter().enumerate() {
            s.apply(e);
            if i == 1 {
                assert_eq!(s.phase.as_ref().unwrap().eta_secs(), Some(2.0));
            }
            if i == 2 {
                assert_eq!(s.status, Status::Paused);
            }
        }
        assert_eq!(s.status, Status::Completed);
        assert_eq!(s.validation_accuracy.points(), &[[1.0, 0.4]]);
        let text: String = events
            .iter()
            .map(|e| e.to_json() + "\n")
            .collect::<String>()
            + "{\"event\":\"torn";
        assert_eq!(RunState::replay(&text), s);
    }
}
