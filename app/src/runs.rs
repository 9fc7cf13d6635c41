//! The runs of a project, found in its `runs/` folder on a background job: interrupted ones (a
//! checkpoint but no finished model) that can be resumed, with the epoch their checkpoint holds,
//! and the newest finished one, which can be continued with more epochs and which a reopened
//! project shows (its events replayed, as [`replay`] reads any run folder).

use lathe_engine::train::{Event, History, RunDir, RunState};
use std::path::{Path, PathBuf};

/// A run folder's `events.jsonl` folded into a [`RunState`], which names the folder where it is
/// now (a copied or moved folder's events record the old place).
pub fn replay(dir: &Path) -> Result<RunState, String> {
    let text =
        std::fs::read_to_string(dir.join(lathe_engine::train::run_dir::EVENTS)).map_err(|e| {
            format!(
                "cannot read the run's events.jsonl ({e}); give a Lathe run folder: {}",
                dir.display()
            )
        })?;
    let mut state = RunState::replay(&text);
    state.run_dir = Some(dir.to_path_buf());
    Ok(state)
}

/// An interrupted run that `--resume` can continue.
#[derive(Clone, Debug, PartialEq)]
pub struct InterruptedRun {
    pub dir: PathBuf,
    /// The last epoch its checkpoints hold (0 when the events do not say).
    pub epoch: usize,
    /// Epochs the run was set to train (0 when unknown).
    pub epochs: usize,
}

impl InterruptedRun {
    /// `Some` when `dir` is a run folder with a lock file and a checkpoint but no model.
    pub fn read(dir: &Path) -> Option<Self> {
        let run = RunDir {
            root: dir.to_path_buf(),
        };
        let has_checkpoint = std::fs::read_dir(run.checkpoints())
            .map(|mut e| e.next().is_some())
            .unwrap_or(false);
        if !run.lock_file().is_file()
            || run
                .model()
                .join(lathe_engine::train::run_dir::MODEL_CONFIG)
                .is_file()
            || !has_checkpoint
        {
            return None;
        }
        let (mut epoch, mut epochs) = (0, 0);
        if let Ok(text) = std::fs::read_to_string(run.events()) {
            for line in text.lines() {
                match serde_json::from_str::<Event>(line) {
                    Ok(Event::Checkpoint {
                        epoch: e,
                        best: false,
                        ..
                    }) => epoch = e,
                    // A resumed run picks up here; what came later was trained again.
                    Ok(Event::Restored { epoch: e, .. }) => epoch = e,
                    Ok(Event::EpochEnd(m)) => epochs = m.epochs,
                    _ => {}
                }
            }
        }
        Some(Self {
            dir: dir.to_path_buf(),
            epoch,
            epochs,
        })
    }

    /// The run folder's name.
    pub fn name(&self) -> String {
        self.dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// Where it stopped: "epoch 3 of 10".
    pub fn progress_text(&self) -> Option<String> {
        match (self.epoch, self.epochs) {
            (0, _) => None,
            (k, 0) => Some(format!("epoch {k}")),
            (k, n) => Some(format!("epoch {k} of {n}")),
        }
    }

    /// The label of its button: "Resume training (epoch 3 of 10)".
    pub fn button_text(&self) -> String {
        match self.progress_text() {
            Some(p) => format!("Resume training ({p})"),
            None => "Resume training".into(),
        }
    }
}

/// How a run ended, as its events tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunStatus {
    /// It finished and has a model.
    Finished,
    /// Cancelled, or stopped without saying so (killed, the power went); still training when it
    /// is the window's own run.
    Interrupted,
    Failed,
}

impl RunStatus {
    pub fn text(self) -> &'static str {
        match self {
            Self::Finished => "finished",
            Self::Interrupted => "interrupted",
            Self::Failed => "failed",
        }
    }
}

/// One run in the runs list: its folder, template, date, how it ended and its headline result.
#[derive(Clone, Debug, PartialEq)]
pub struct RunSummary {
    pub dir: PathBuf,
    pub template: String,
    /// When its events were last written, "2026-01-02 13:45 UTC".
    pub date: String,
    pub status: RunStatus,
    /// The headline result in `report.json`: (split, metric, value), test before validation.
    pub metric: Option<(String, String, f64)>,
}

impl RunSummary {
    /// `None` when `dir` has no `events.jsonl` (not a run folder).
    pub fn read(dir: &Path) -> Option<Self> {
        let run = RunDir {
            root: dir.to_path_buf(),
        };
        let events = run.events();
        let text = std::fs::read_to_string(&events).ok()?;
        let mut template = String::new();
        let mut outcome = None;
        for line in text.lines() {
            // Only the first and last events matter; skip the rest without parsing them.
            if !(line.contains("\"started\"") || line.contains("\"finished\"")) {
                continue;
            }
            match serde_json::from_str::<Event>(line) {
                Ok(Event::Started { template: t, .. }) => {
                    template = t;
                    // A resumed run goes on after an earlier end.
                    outcome = None;
                }
                Ok(Event::Finished { outcome: o, .. }) => outcome = Some(o),
                _ => {}
            }
        }
        let has_model = run
            .model()
            .join(lathe_engine::train::run_dir::MODEL_CONFIG)
            .is_file();
        let status = match outcome {
            Some(lathe_engine::train::Outcome::Completed { .. }) if has_model => {
                RunStatus::Finished
            }
            Some(lathe_engine::train::Outcome::Failed { .. }) => RunStatus::Failed,
            _ => RunStatus::Interrupted,
        };
        if template.is_empty()
            && let Ok(p) = lathe_engine::Project::load(&run.lock_file())
        {
            template = p.template;
        }
        let date = std::fs::metadata(&events)
            .and_then(|m| m.modified())
            .map(date_text)
            .unwrap_or_default();
        let metric = lathe_engine::fsutil::read_json::<serde_json::Value>(&run.report_json())
            .ok()
            .and_then(|r| headline(&r));
        Some(Self {
            dir: dir.to_path_buf(),
            template,
            date,
            status,
            metric,
        })
    }

    /// The run folder's name.
    pub fn name(&self) -> String {
        self.dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// "test accuracy 93.1%", "validation R² 0.912"; empty without a report.
    pub fn metric_text(&self) -> String {
        let Some((split, metric, value)) = &self.metric else {
            return String::new();
        };
        match metric.as_str() {
            "accuracy" => format!("{split} accuracy {:.1}%", value * 100.0),
            "r2" => format!("{split} R\u{b2} {value:.3}"),
            "map50" => format!("{split} mAP@0.5 {value:.3}"),
            other => format!("{split} {other} {value:.4}"),
        }
    }
}

/// The headline result of a `report.json`: test before validation; accuracy, else R², else mAP,
/// else RMSE.
pub fn headline(report: &serde_json::Value) -> Option<(String, String, f64)> {
    let evaluation = report.get("evaluation")?;
    ["test", "validation"].iter().find_map(|split| {
        let e = evaluation.get(*split)?;
        ["accuracy", "r2", "map50", "map", "rmse"]
            .iter()
            .find_map(|k| {
                e.get(*k)?
                    .as_f64()
                    .map(|v| (split.to_string(), k.to_string(), v))
            })
    })
}

/// "2026-01-02 13:45 UTC".
fn date_text(t: std::time::SystemTime) -> String {
    let s = lathe_engine::train::run_dir::utc_stamp(t);
    format!(
        "{}-{}-{} {}:{} UTC",
        &s[0..4],
        &s[4..6],
        &s[6..8],
        &s[9..11],
        &s[11..13]
    )
}

/// What a project's `runs/` folder holds.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FoundRuns {
    /// Interrupted runs, newest first.
    pub interrupted: Vec<InterruptedRun>,
    /// The newest finished run (it has a model).
    pub finished: Option<PathBuf>,
    /// The newest finished run's events, replayed (what a reopened project shows).
    pub finished_state: Option<Box<RunState>>,
    /// Every run, newest first (an opened run folder elsewhere first).
    pub all: Vec<RunSummary>,
}

/// Runs named `prefix*` under `runs`, plus `also` (an opened run folder) when it is interrupted.
pub fn find(runs: &Path, prefix: &str, also: Option<&Path>) -> FoundRuns {
    let mut found = FoundRuns::default();
    let mut dirs: Vec<PathBuf> = lathe_engine::fsutil::sorted_entries(runs)
        .unwrap_or_default()
        .into_iter()
        .filter(|d| {
            d.is_dir()
                && d.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with(prefix))
        })
        .collect();
    // Folder names end in a UTC timestamp: the last sorts newest.
    dirs.reverse();
    for dir in &dirs {
        if let Some(run) = InterruptedRun::read(dir) {
            found.interrupted.push(run);
        } else if found.finished.is_none() && dir.join("model/config.json").is_file() {
            found.finished = Some(dir.clone());
        }
    }
    if let Some(dir) = also
        && !found.interrupted.iter().any(|r| r.dir == dir)
        && let Some(run) = InterruptedRun::read(dir)
    {
        found.interrupted.insert(0, run);
    }
    found.all = dirs.iter().filter_map(|d| RunSummary::read(d)).collect();
    if let Some(dir) = also
        && !found.all.iter().any(|r| r.dir == dir)
        && let Some(run) = RunSummary::read(dir)
    {
        found.all.insert(0, run);
    }
    found.finished_state = found
        .finished
        .as_deref()
        .and_then(|d| replay(d).ok())
        .map(Box::new);
    found
}

/// The curves of the runs a continued run continues ("Continue training…"), joined into one
/// history whose epochs count from the first run's start, so the continued run's curves go on
/// after them instead of starting again at 0.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EarlierRuns {
    /// Epochs trained before the run shown (its epoch 1 is drawn at `epochs + 1`).
    pub epochs: usize,
    pub step_loss: History,
    pub train_loss: History,
    pub validation_loss: History,
    pub train_accuracy: History,
    pub validation_accuracy: History,
}

impl EarlierRuns {
    /// Appends `run`'s curves after the epochs already here.
    fn append(&mut self, run: &RunState) {
        let offset = self.epochs as f64;
        for (to, from) in [
            (&mut self.step_loss, &run.step_loss),
            (&mut self.train_loss, &run.train_loss),
            (&mut self.validation_loss, &run.validation_loss),
            (&mut self.train_accuracy, &run.train_accuracy),
            (&mut self.validation_accuracy, &run.validation_accuracy),
        ] {
            for p in from.points() {
                to.push(p[0] + offset, p[1]);
            }
        }
        self.epochs += run.epoch;
    }
}

/// Runs continued from runs continued from… are followed this deep at most.
const MAX_CHAIN: usize = 32;

/// The run folder the run in `dir` continues (its `continued_from.json`), where it is now: the
/// recorded place, else the same folder relative to this one (both copied or moved together),
/// else the folder of the same name beside this one.
pub fn continued_from(dir: &Path) -> Option<PathBuf> {
    let text = std::fs::read_to_string(dir.join(lathe_engine::train::extend::FILE)).ok()?;
    let parent: lathe_engine::train::extend::Parent = serde_json::from_str(&text).ok()?;
    let recorded = &parent.run_dir;
    if recorded
        .join(lathe_engine::train::run_dir::EVENTS)
        .is_file()
    {
        return Some(recorded.clone());
    }
    if let Some(root) = lathe_engine::train::run_dir::recorded_root(dir) {
        let moved = lathe_engine::train::run_dir::relocate(recorded, &root, dir);
        if moved.join(lathe_engine::train::run_dir::EVENTS).is_file() {
            return Some(moved);
        }
    }
    let beside = dir.parent()?.join(recorded.file_name()?);
    beside
        .join(lathe_engine::train::run_dir::EVENTS)
        .is_file()
        .then_some(beside)
}

/// The curves of the runs before the run in `dir`, when it continues one; `None` otherwise.
pub fn earlier_runs(dir: &Path) -> Option<EarlierRuns> {
    chain_through(&continued_from(dir)?, MAX_CHAIN)
}

/// The curves of the run in `dir` and of every run before it.
pub fn history_through(dir: &Path) -> Option<EarlierRuns> {
    chain_through(dir, MAX_CHAIN)
}

fn chain_through(dir: &Path, depth: usize) -> Option<EarlierRuns> {
    let run = replay(dir).ok()?;
    let mut earlier = match continued_from(dir) {
        Some(parent) if depth > 0 => chain_through(&parent, depth - 1).unwrap_or_default(),
        _ => EarlierRuns::default(),
    };
    earlier.append(&run);
    Some(earlier)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn line(e: &Event) -> String {
        serde_json::to_string(e).unwrap()
    }

    #[test]
    fn run_summaries_say_how_runs_ended_and_their_headline() {
        let tmp = tempfile::tempdir().unwrap();
        let write =
            |name: &str, events: &[Event], model: bool, report: Option<serde_json::Value>| {
                let dir = tmp.path().join(name);
                std::fs::create_dir_all(&dir).unwrap();
                let text: Vec<String> = events.iter().map(line).collect();
                std::fs::write(dir.join("events.jsonl"), text.join("\n")).unwrap();
                if model {
                    std::fs::create_dir_all(dir.join("model")).unwrap();
                    std::fs::write(dir.join("model/config.json"), "{}").unwrap();
                }
                if let Some(r) = report {
                    std::fs::write(dir.join("report.json"), r.to_string()).unwrap();
                }
                dir
            };
        let started = Event::Started {
            run_dir: PathBuf::from("/elsewhere"),
            template: "tabular-regressor".into(),
            device: "cpu".into(),
            seed: 1,
            lathe_version: "0".into(),
            resumed: false,
        };
        let finished = |outcome| Event::Finished {
            outcome,
            elapsed_secs: 1.0,
        };
        let completed = lathe_engine::train::Outcome::Completed {
            model_dir: PathBuf::from("m"),
        };
        let report = serde_json::json!({"evaluation": {
            "validation": {"rmse": 0.5, "r2": 0.5},
            "test": {"rmse": 0.25, "r2": 0.912}}});
        let done = write(
            "done",
            &[started.clone(), finished(completed.clone())],
            true,
            Some(report),
        );
        let run = RunSummary::read(&done).unwrap();
        assert_eq!(run.status, RunStatus::Finished);
        assert_eq!(run.template, "tabular-regressor");
        assert_eq!(run.metric_text(), "test R\u{b2} 0.912");
        assert!(run.date.ends_with(" UTC"), "{}", run.date);
        let killed = write("killed", std::slice::from_ref(&started), false, None);
        assert_eq!(
            RunSummary::read(&killed).unwrap().status,
            RunStatus::Interrupted
        );
        let failed = write(
            "failed",
            &[
                started.clone(),
                finished(lathe_engine::train::Outcome::Failed {
                    message: "x".into(),
                }),
            ],
            false,
            None,
        );
        assert_eq!(RunSummary::read(&failed).unwrap().status, RunStatus::Failed);
        // Resumed after a cancel: the later start counts.
        let resumed = write(
            "resumed",
            &[
                started.clone(),
                finished(lathe_engine::train::Outcome::Cancelled { checkpoint: None }),
                started.clone(),
            ],
            false,
            None,
        );
        assert_eq!(
            RunSummary::read(&resumed).unwrap().status,
            RunStatus::Interrupted
        );
        assert!(RunSummary::read(tmp.path()).is_none());
        let classifier = serde_json::json!({"evaluation": {"validation": {"accuracy": 0.75}}});
        assert_eq!(
            headline(&classifier),
            Some(("validation".into(), "accuracy".into(), 0.75))
        );
    }

    #[test]
    fn finds_interrupted_runs_with_their_epoch_and_the_newest_finished_one() {
        let tmp = tempfile::tempdir().unwrap();
        let runs = tmp.path().join("runs");
        let make = |name: &str, events: &[Event], model: bool, checkpoint: bool| {
            let dir = runs.join(name);
            std::fs::create_dir_all(dir.join("checkpoints")).unwrap();
            std::fs::write(dir.join("project.lock.toml"), "").unwrap();
            let text: Vec<String> = events.iter().map(line).collect();
            std::fs::write(dir.join("events.jsonl"), text.join("\n")).unwrap();
            if checkpoint {
                std::fs::write(dir.join("checkpoints/last.safetensors"), "x").unwrap();
            }
            if model {
                std::fs::create_dir_all(dir.join("model")).unwrap();
                std::fs::write(dir.join("model/config.json"), "{}").unwrap();
            }
            dir
        };
        let metrics = |epoch, epochs| {
            Event::EpochEnd(lathe_engine::train::EpochMetrics {
                epoch,
                epochs,
                train_loss: 1.0,
                train_accuracy: None,
                validation_loss: None,
                validation_accuracy: None,
                learning_rate: 0.1,
                elapsed_secs: 0.0,
            })
        };
        let checkpoint = |epoch, best| Event::Checkpoint {
            epoch,
            path: PathBuf::from("c"),
            best,
        };
        make("image-classifier-20260101-000000", &[], true, true);
        let finished = make("image-classifier-20260102-000000", &[], true, true);
        // Killed after the epoch-3 event but before its checkpoint: the checkpoint holds 2.
        let killed = make(
            "image-classifier-20260103-000000",
            &[
                metrics(1, 10),
                checkpoint(1, false),
                checkpoint(1, true),
                metrics(2, 10),
                checkpoint(2, false),
                metrics(3, 10),
            ],
            false,
            true,
        );
        make("image-classifier-20260104-000000", &[], false, false);
        make("sound-classifier-20260105-000000", &[], false, true);
        let found = find(&runs, "image-classifier-", None);
        assert_eq!(found.finished.as_ref(), Some(&finished));
        assert_eq!(
            found.interrupted,
            vec![InterruptedRun {
                dir: killed,
                epoch: 2,
                epochs: 10
            }]
        );
        assert_eq!(
            found.interrupted[0].button_text(),
            "Resume training (epoch 2 of 10)"
        );
        // An opened run elsewhere is offered too; a finished one is not.
        let elsewhere = tmp.path().join("elsewhere");
        let other = make("../elsewhere", &[checkpoint(4, false)], false, true);
        assert_eq!(
            other.canonicalize().unwrap(),
            elsewhere.canonicalize().unwrap()
        );
        let found = find(&runs, "image-classifier-", Some(&other));
        assert_eq!(found.interrupted.len(), 2);
        assert_eq!(
            found.interrupted[0].button_text(),
            "Resume training (epoch 4)"
        );
        assert_eq!(
            find(&runs, "image-classifier-", Some(&finished))
                .interrupted
                .len(),
            1
        );
    }
}
