//! The table templates (`tabular-classifier`, `tabular-regressor`): read a CSV / JSON-lines
//! table, type its columns, then train the candidates — histogram gradient-boosted trees, a
//! linear model (logistic or ridge), a random forest and an MLP — and a weighted ensemble of
//! them (greedy selection on their validation predictions, `ensemble.rs`); keep the best by
//! validation metric (`algorithm = "auto"`, a leaderboard in `report.json`), evaluate on
//! validation and test, and export.

use super::bagging::{self, Folds};
use super::ensemble::{self, Predictions};
use super::fit::{beats, fit_algorithm, refit, sample_first};
use super::params::{TabularParams, param_specs};
use crate::data::DatasetSummary;
use crate::error::{Error, Result};
use crate::eval::ClassificationReport;
use crate::eval::regression::RegressionReport;
use crate::params::{ParamSpec, ResolvedParams};
use crate::task::{Model, ResolvedData, ScanProgress, Task};
use crate::templates::tabular::data::{self as tabular_data, Part, TargetKind};
use crate::templates::tabular::model::{
    self as tabular_model, Ensemble, Fitted, Member, TabularModel,
};
use crate::train::{Control, EpochMetrics, Event, Phase, RunContext};
use candle_core::Device;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// A table task: classification or regression of one column from the others.
pub struct TabularTask {
    pub kind: TargetKind,
}

impl TabularTask {
    pub const CLASSIFICATION_ID: &'static str = "tabular-classification";
    pub const REGRESSION_ID: &'static str = "tabular-regression";

    pub fn classifier() -> Self {
        Self {
            kind: TargetKind::Classification,
        }
    }

    pub fn regressor() -> Self {
        Self {
            kind: TargetKind::Regression,
        }
    }
}

impl Task for TabularTask {
    fn id(&self) -> &'static str {
        match self.kind {
            TargetKind::Classification => Self::CLASSIFICATION_ID,
            TargetKind::Regression => Self::REGRESSION_ID,
        }
    }

    fn param_specs(&self) -> Vec<ParamSpec> {
        param_specs(self.kind)
    }

    fn scan(
        &self,
        data: &ResolvedData,
        params: &ResolvedParams,
        progress: ScanProgress<'_>,
        _control: &Control,
    ) -> Result<DatasetSummary> {
        let p = TabularParams::from_resolved(params, data.seed);
        progress(0, 1);
        let table = tabular_data::load(data, &p.target, &p.ignore, self.kind, p.validation_split)?;
        progress(1, 1);
        Ok(table.summary(data))
    }

    fn train(&self, ctx: &RunContext) -> Result<PathBuf> {
        train(ctx, self.kind)
    }

    fn load(&self, model_dir: &Path, _device: &Device) -> Result<Box<dyn Model>> {
        Ok(Box::new(TabularModel::load(model_dir)?))
    }
}

/// One trained candidate on the leaderboard.
#[derive(Clone, Debug, Serialize)]
pub struct Candidate {
    pub algorithm: String,
    /// Accuracy (classifier) or RMSE (regressor): out-of-fold over training + validation rows
    /// when `cv_folds` is set, else on validation (training rows when there is none).
    pub metric: String,
    pub value: f64,
    pub iterations: usize,
    pub fit_secs: f64,
    /// CPU seconds of the fit (all threads), where the OS reports it: unlike wall time, it
    /// does not grow with the load of a shared machine.
    pub fit_cpu_secs: Option<f64>,
    pub chosen: bool,
    /// The chosen model was fitted again on training + validation rows for the final model.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub refit: bool,
    /// Why this candidate was not fitted on all rows (then `value` is its score on a sample,
    /// or null).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    /// The ensemble's members and weights (summing to 1).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub weights: Vec<MemberWeight>,
    /// How `value` was measured, where it needs saying (the ensemble's cross-fit).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Folds of the cross-validation that gave `value` (out-of-fold over training + validation
    /// rows), when `auto` cross-validated (small tables).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cv_folds: Option<usize>,
    /// The same metric of the model fitted on training rows, on the validation split, when
    /// `value` is cross-validated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub holdout_value: Option<f64>,
}

/// One member of the ensemble on the leaderboard.
#[derive(Clone, Debug, Serialize)]
pub struct MemberWeight {
    pub algorithm: String,
    pub weight: f64,
}

impl Candidate {
    fn skipped(algorithm: &str, kind: TargetKind, value: f64, reason: String) -> Self {
        Self {
            algorithm: algorithm.to_string(),
            metric: match kind {
                TargetKind::Classification => "accuracy",
                TargetKind::Regression => "rmse",
            }
            .into(),
            value,
            iterations: 0,
            fit_secs: 0.0,
            fit_cpu_secs: None,
            chosen: false,
            refit: false,
            skipped: Some(reason),
            weights: Vec::new(),
            note: None,
            cv_folds: None,
            holdout_value: None,
        }
    }
}

/// The training history of the chosen candidate, for the report and its plots.
#[derive(Clone)]
pub struct History {
    pub epochs: Vec<EpochMetrics>,
    pub stopped_early: bool,
}

fn train(ctx: &RunContext, kind: TargetKind) -> Result<PathBuf> {
    on_pool(|| train_on_pool(ctx, kind))
}

/// Runs `f` on a rayon worker thread (unless already on one): the fits' many small parallel
/// loops (per feature, per class, per round) then run inline or are stolen by the other
/// workers, instead of waking the pool and putting the calling thread to sleep for each —
/// which took a third of a single-threaded boosting run.
fn on_pool<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    if rayon::current_thread_index().is_some() {
        return f();
    }
    // From outside the pool, `join` runs both closures on a worker and waits for them.
    rayon::join(f, || ()).0
}

fn train_on_pool(ctx: &RunContext, kind: TargetKind) -> Result<PathBuf> {
    let mut p = TabularParams::from_resolved(&ctx.params, ctx.project.seed);
    let table = load_table(ctx, kind, &mut p)?;
    let algorithms = candidates(ctx, &p, &table);
    // On small tables `auto` compares the candidates by K-fold cross-validation over training +
    // validation rows (`bagging.rs`), not on the validation split alone.
    let folds = (algorithms.len() > 1)
        .then(|| Folds::new(&table, kind, p.cv_folds, ctx.project.seed))
        .flatten();
    let (mut leaderboard, fitted_all, best) =
        compare_candidates(ctx, &table, kind, &p, &algorithms, folds.as_ref())?;
    let Some(best) = best else {
        return Err(Error::Unsupported("no model was trained".into()));
    };
    let best_value = leaderboard
        .iter()
        .find(|c| c.chosen)
        .map_or(f64::NAN, |c| c.value);
    let compared_on = match &folds {
        Some(f) => ComparedOn {
            y: &f.rows.y,
            what: format!(
                "out-of-fold predictions of the {}-fold cross-validation",
                f.k
            ),
        },
        None => ComparedOn {
            y: &table.validation.y,
            what: "validation predictions".into(),
        },
    };
    let ensembled = ensemble_entry(kind, &table, &fitted_all, &compared_on, best_value);
    if let Some((entry, _)) = &ensembled {
        if entry.chosen {
            leaderboard.iter_mut().for_each(|c| c.chosen = false);
        }
        leaderboard.push(entry.clone());
    }
    let (fitted, history, chosen, refitted) =
        chosen_model(ctx, &table, kind, &p, ensembled, fitted_all, best)?;
    if let (Some(_), Some(c)) = (&refitted, leaderboard.iter_mut().find(|c| c.chosen)) {
        c.refit = true;
    }
    let model = TabularModel::new(kind, &table, fitted, &chosen);
    // Validation figures come from the model fitted on training rows only; the test figures and
    // the exported model from the refit on training + validation rows, when there is one.
    let final_model = refitted.map(|f| TabularModel::new(kind, &table, f, &chosen));
    let reports = evaluate_splits(ctx, &table, &model, final_model.as_ref());
    let advice = "Check that the target column is the one to predict and that the other columns carry information about it; more rows help.";
    let warning = reports.first().and_then(|(split, r)| match r {
        Report::Classification(c) => crate::eval::usefulness::classifier_warning(c, split, advice),
        Report::Regression(r) => crate::eval::usefulness::regressor_warning(r, split, advice),
    });
    if let Some(w) = warning {
        ctx.warn(w, None);
    }
    let model = final_model.unwrap_or(model);
    tabular_model::write_run_outputs(ctx, &model, &table, &history, &leaderboard, &reports)
}

/// Reads and splits the table, reports its issues and sizes; balances the class weights.
fn load_table(
    ctx: &RunContext,
    kind: TargetKind,
    p: &mut TabularParams,
) -> Result<tabular_data::TableData> {
    let data = ResolvedData::of(&ctx.project);
    let mut scanning = ctx.phase(Phase::Scanning, 1);
    let table = tabular_data::load(&data, &p.target, &p.ignore, kind, p.validation_split)?;
    scanning.set(1);
    for issue in &table.issues {
        ctx.warn(
            issue.message.clone(),
            issue.paths.first().map(PathBuf::as_path),
        );
    }
    ctx.emit(Event::Data {
        num_train: table.train.len(),
        num_validation: table.validation.len(),
        num_test: table.test.len(),
        labels: table.labels.clone(),
    });
    if table.train.is_empty() {
        return Err(Error::data("no training rows are left", &data.train));
    }
    if kind == TargetKind::Classification {
        p.balance(&table.train.y, table.labels.len());
    }
    Ok(table)
}

/// The algorithms to try: every candidate for `auto`, cheapest first after the boosted trees;
/// else the one asked for.
fn candidates<'p>(
    ctx: &RunContext,
    p: &'p TabularParams,
    table: &tabular_data::TableData,
) -> Vec<&'p str> {
    let algorithms: Vec<&str> = match p.algorithm.as_str() {
        // Cheapest first after the boosted trees (which draw the loss curve), so the time
        // limit, when reached, leaves out the costliest: the random forest's fully grown trees
        // cost the most on small tables, where the MLP takes seconds.
        "auto" => vec!["boosted_trees", "linear", "mlp", "random_forest"],
        one => vec![one],
    };
    if algorithms.len() > 1 && table.validation.is_empty() {
        ctx.warn(
            "no validation rows: the algorithm is chosen on training rows, which favours the more flexible model; set validation_split above 0",
            None,
        );
    }
    algorithms
}

/// Fits every candidate in turn (skipping those past the time limit or hopeless on a sample)
/// and scores it — by cross-validation with `folds`, else on the validation rows. Returns the
/// leaderboard, the fitted candidates and the position of the best among them.
fn compare_candidates(
    ctx: &RunContext,
    table: &tabular_data::TableData,
    kind: TargetKind,
    p: &TabularParams,
    algorithms: &[&str],
    folds: Option<&Folds>,
) -> Result<(Vec<Candidate>, Vec<Fit>, Option<usize>)> {
    let mut leaderboard: Vec<Candidate> = Vec::new();
    // Every candidate fitted on all rows: its model, history and validation predictions.
    let mut fitted_all: Vec<Fit> = Vec::new();
    let mut best: Option<usize> = None;
    let all_started = Instant::now();
    let time_limit = p.time_limit_secs(table.train.len());
    for (i, algorithm) in algorithms.iter().enumerate() {
        let best_value = leaderboard.iter().find(|c| c.chosen).map(|c| c.value);
        if let Some(best_value) = best_value {
            let elapsed = all_started.elapsed().as_secs_f64();
            let cpu_started = crate::train::cpu_time::process_cpu_secs();
            let skip = if elapsed > time_limit {
                Some((
                    f64::NAN,
                    format!(
                        "skipped: the time limit of {time_limit:.0} s was reached after {elapsed:.0} s (set time_limit to give it more)"
                    ),
                ))
            } else {
                sample_first(ctx, table, kind, p, algorithm, best_value)?
            };
            if let Some((value, reason)) = skip {
                ctx.warn(format!("{algorithm}: {reason}"), None);
                let mut entry = Candidate::skipped(algorithm, kind, value, reason);
                // The time of the sample's fit, where there was one: it was spent.
                entry.fit_secs = all_started.elapsed().as_secs_f64() - elapsed;
                entry.fit_cpu_secs = cpu_started
                    .zip(crate::train::cpu_time::process_cpu_secs())
                    .map(|(a, b)| b - a);
                leaderboard.push(entry);
                continue;
            }
        }
        // Only the first candidate draws the loss curve; the others report progress only.
        let (mut entry, fit) = fit_candidate(ctx, table, kind, p, algorithm, i == 0, folds)?;
        let better = best_value.is_none_or(|b| beats(kind, entry.value, b));
        if better {
            leaderboard.iter_mut().for_each(|c| c.chosen = false);
            best = Some(fitted_all.len());
        }
        entry.chosen = better;
        leaderboard.push(entry);
        fitted_all.push(fit);
    }
    Ok((leaderboard, fitted_all, best))
}

/// Fits one candidate on the training rows and scores it: its leaderboard entry (not chosen)
/// and the fit, with the predictions the candidates are compared on.
fn fit_candidate(
    ctx: &RunContext,
    table: &tabular_data::TableData,
    kind: TargetKind,
    p: &TabularParams,
    algorithm: &str,
    plot: bool,
    folds: Option<&Folds>,
) -> Result<(Candidate, Fit)> {
    let started = Instant::now();
    let cpu_started = crate::train::cpu_time::process_cpu_secs();
    let (fitted, history) = fit_algorithm(ctx, table, kind, p, algorithm, plot)?;
    let model = TabularModel::new(kind, table, fitted, algorithm);
    let part = if table.validation.is_empty() {
        &table.train
    } else {
        &table.validation
    };
    let (metric, holdout) = score(&model, part);
    // Cross-validated: the candidate's score and its predictions for the ensemble are the
    // out-of-fold ones over every row; else the validation split's.
    let (value, compared, on_all_rows) = match folds {
        Some(f) => {
            let oof = bagging::out_of_fold(ctx, table, f, kind, p, algorithm)?;
            let width = oof.predictions.len() / f.rows.len().max(1);
            let rows: Vec<Vec<f64>> = oof
                .predictions
                .chunks(width.max(1))
                .map(<[f64]>::to_vec)
                .collect();
            let value = ensemble::metric(kind, &rows, &f.rows.y);
            (value, oof.predictions, oof.on_all_rows)
        }
        None => (holdout, model.flat_predictions(&table.validation.x), None),
    };
    let fit_secs = started.elapsed().as_secs_f64();
    let fit_cpu_secs = cpu_started
        .zip(crate::train::cpu_time::process_cpu_secs())
        .map(|(a, b)| b - a);
    let entry = Candidate {
        algorithm: algorithm.to_string(),
        metric: metric.into(),
        value,
        // boosting rounds, trees of a forest, epochs of the MLP
        iterations: history.epochs.last().map_or(0, |e| e.epoch),
        fit_secs,
        fit_cpu_secs,
        chosen: false,
        refit: false,
        skipped: None,
        weights: Vec::new(),
        note: None,
        cv_folds: folds.map(|f| f.k),
        holdout_value: folds.is_some().then_some(holdout),
    };
    let fit = Fit {
        algorithm: algorithm.to_string(),
        validation: compared,
        fitted: model.fitted,
        history,
        on_all_rows,
    };
    Ok((entry, fit))
}

/// The model to keep — the ensemble when it was chosen (its members refit on training +
/// validation rows, weights kept), else the best candidate — with its history, its name and
/// its refit, where there is one.
fn chosen_model(
    ctx: &RunContext,
    table: &tabular_data::TableData,
    kind: TargetKind,
    p: &TabularParams,
    ensembled: Option<(Candidate, Ensemble)>,
    fitted_all: Vec<Fit>,
    best: usize,
) -> Result<(Fitted, History, String, Option<Fitted>)> {
    Ok(match ensembled {
        Some((entry, members)) if entry.chosen => {
            // The members refit on training + validation rows (where the chosen single model
            // would be), with the weights selected before the refit.
            let mut refit_members = Vec::with_capacity(members.members.len());
            let mut any_refit = false;
            for m in &members.members {
                let done = fitted_all
                    .iter()
                    .find(|f| f.algorithm == m.algorithm)
                    .and_then(|f| f.on_all_rows.clone());
                let f = refit_unless_done(ctx, table, kind, p, &m.algorithm, &m.fitted, done)?;
                any_refit |= f.is_some();
                refit_members.push(Member {
                    fitted: f.unwrap_or_else(|| m.fitted.clone()),
                    ..m.clone()
                });
            }
            let history = members
                .heaviest()
                .and_then(|h| fitted_all.iter().find(|f| f.algorithm == h.algorithm))
                .map(|f| f.history.clone())
                .unwrap_or(History {
                    epochs: Vec::new(),
                    stopped_early: false,
                });
            let refitted = any_refit.then(|| {
                Fitted::Ensemble(Ensemble {
                    members: refit_members,
                })
            });
            (
                Fitted::Ensemble(members),
                history,
                ENSEMBLE.to_string(),
                refitted,
            )
        }
        _ => {
            let Some(f) = fitted_all.into_iter().nth(best) else {
                return Err(Error::Unsupported("no model was trained".into()));
            };
            let refitted =
                refit_unless_done(ctx, table, kind, p, &f.algorithm, &f.fitted, f.on_all_rows)?;
            (f.fitted, f.history, f.algorithm, refitted)
        }
    })
}

/// Evaluates on the validation rows (the model fitted on training rows) and the test rows (its
/// refit, when there is one); reports each as an event.
fn evaluate_splits(
    ctx: &RunContext,
    table: &tabular_data::TableData,
    model: &TabularModel,
    final_model: Option<&TabularModel>,
) -> Vec<(String, Report)> {
    let mut reports = Vec::new();
    for (name, part) in [("validation", &table.validation), ("test", &table.test)] {
        if part.is_empty() {
            continue;
        }
        let mut phase = ctx.phase(Phase::Evaluating, part.len() as u64);
        let evaluated = match (name, final_model) {
            ("test", Some(m)) => m,
            _ => model,
        };
        let r = evaluate_part(evaluated, part);
        phase.set(part.len() as u64);
        let (metric, value, n) = match &r {
            Report::Classification(c) => ("accuracy", c.accuracy, c.num_examples),
            Report::Regression(r) => ("rmse", r.rmse, r.num_examples),
        };
        ctx.emit(Event::Evaluated {
            split: name.into(),
            num_examples: n,
            metric: metric.into(),
            value,
        });
        reports.push((name.to_string(), r));
    }
    reports
}

/// The candidate fitted on training + validation rows: `done` when cross-validating it already
/// produced that fit (the random forest's out-of-bag pass), else [`refit`].
fn refit_unless_done(
    ctx: &RunContext,
    table: &tabular_data::TableData,
    kind: TargetKind,
    p: &TabularParams,
    algorithm: &str,
    fitted: &Fitted,
    done: Option<Fitted>,
) -> Result<Option<Fitted>> {
    match done {
        Some(done) => Ok(Some(done)),
        None => refit(ctx, table, kind, p, algorithm, fitted),
    }
}

/// The leaderboard name of the weighted ensemble.
pub const ENSEMBLE: &str = "ensemble";

/// A candidate fitted on all training rows.
struct Fit {
    algorithm: String,
    fitted: Fitted,
    history: History,
    /// Row-major predictions the candidates are compared on (class probabilities, or one
    /// value): of the validation rows, or out-of-fold of every row (`bagging.rs`).
    validation: Vec<f64>,
    /// The candidate already fitted on training + validation rows (cross-validating the random
    /// forest produces it): the refit, without fitting it again.
    on_all_rows: Option<Fitted>,
}

/// Greedy ensemble selection over the candidates fitted on all rows (at least 2, with
/// validation rows): its leaderboard entry (chosen when its cross-fit metric beats
/// `best_value` and it mixes at least two candidates) and the ensemble of the fitted members.
fn ensemble_entry(
    kind: TargetKind,
    table: &tabular_data::TableData,
    fitted: &[Fit],
    on: &ComparedOn<'_>,
    best_value: f64,
) -> Option<(Candidate, Ensemble)> {
    if fitted.len() < 2 || on.y.is_empty() {
        return None;
    }
    let started = Instant::now();
    let width = match kind {
        TargetKind::Classification => table.labels.len(),
        TargetKind::Regression => 1,
    };
    let predictions: Vec<Predictions<'_>> = fitted
        .iter()
        .map(|f| Predictions {
            values: &f.validation,
            width,
        })
        .collect();
    let selected = ensemble::fit(kind, &predictions, on.y)?;
    let members: Vec<Member> = fitted
        .iter()
        .zip(&selected.weights)
        .filter(|(_, w)| **w > 0.0)
        .map(|(f, w)| Member {
            algorithm: f.algorithm.clone(),
            weight: *w,
            fitted: f.fitted.clone(),
        })
        .collect();
    let mixes = members.len() >= 2;
    // The best single candidate's per-row losses, against which the ensemble must be clearly
    // better (not only better on average by a few rows).
    let single = predictions
        .iter()
        .map(|p| ensemble::row_losses(kind, p, on.y))
        .min_by(|a, b| {
            let mean = |v: &Vec<f64>| v.iter().sum::<f64>() / v.len().max(1) as f64;
            mean(a).total_cmp(&mean(b))
        })
        .unwrap_or_default();
    let clear = ensemble::clearly_better(&selected.cross_fit_row_losses, &single);
    let chosen = mixes && clear && beats(kind, selected.cross_fit, best_value);
    let (metric, loss) = match kind {
        TargetKind::Classification => ("accuracy", "log loss"),
        TargetKind::Regression => ("rmse", "squared error"),
    };
    let mut note = format!(
        "greedy selection ({} rounds, with replacement) of the candidates' {} by {loss}; the weights are fitted on those {} rows, so `value` is a 2-fold cross-fit (weights selected on one half of the rows, scored on the other, both ways); with the weights fitted on all of them, scored on them: {metric} {:.4} (optimistic)",
        ensemble::ROUNDS,
        on.what,
        on.y.len(),
        selected.in_sample
    );
    if !mixes {
        note += "; it selected a single candidate, so it is not an ensemble and cannot be chosen";
    } else if !clear && beats(kind, selected.cross_fit, best_value) {
        note += &format!(
            "; not kept: its cross-fit {loss} is not better than the best single model's by more than one standard error over the {} rows (a gain that small can be chance)",
            on.y.len()
        );
    }
    let entry = Candidate {
        algorithm: ENSEMBLE.to_string(),
        metric: metric.into(),
        value: selected.cross_fit,
        iterations: ensemble::ROUNDS,
        fit_secs: started.elapsed().as_secs_f64(),
        fit_cpu_secs: None,
        chosen,
        refit: false,
        skipped: None,
        cv_folds: None,
        holdout_value: None,
        weights: members
            .iter()
            .map(|m| MemberWeight {
                algorithm: m.algorithm.clone(),
                weight: m.weight,
            })
            .collect(),
        note: Some(note),
    };
    Some((entry, Ensemble { members }))
}

/// The rows the candidates are compared on: their targets and, for the leaderboard's notes,
/// what the candidates' predictions of them are.
struct ComparedOn<'a> {
    y: &'a [f64],
    what: String,
}

/// A split's evaluation.
pub enum Report {
    Classification(ClassificationReport),
    Regression(RegressionReport),
}

/// Headline metric of `model` on `part`: accuracy or RMSE.
pub(super) fn score(model: &TabularModel, part: &Part) -> (&'static str, f64) {
    match evaluate_part(model, part) {
        Report::Classification(c) => ("accuracy", c.accuracy),
        Report::Regression(r) => ("rmse", r.rmse),
    }
}

/// The report of `model` on the encoded rows of `part`.
pub fn evaluate_part(model: &TabularModel, part: &Part) -> Report {
    let raw = model.raw_all(&part.x);
    match model.kind {
        TargetKind::Classification => {
            let probs: Vec<Vec<f32>> = raw.iter().map(|r| model.probabilities(r)).collect();
            let truth: Vec<usize> = part.y.iter().map(|v| *v as usize).collect();
            let inputs: Vec<PathBuf> = part.names.iter().map(PathBuf::from).collect();
            let mut r = ClassificationReport::compute(&model.labels, &truth, &probs, &inputs);
            r.samples.truncate(crate::eval::regression::MAX_SAMPLES);
            Report::Classification(r)
        }
        TargetKind::Regression => {
            let predicted: Vec<f64> = raw
                .iter()
                .map(|r| r.first().copied().unwrap_or(f64::NAN))
                .collect();
            Report::Regression(RegressionReport::compute(
                &model.target,
                &part.y,
                &predicted,
                &part.names,
            ))
        }
    }
}
