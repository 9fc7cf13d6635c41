//! The table templates (`tabular-classifier`, `tabular-regressor`): read a CSV / JSON-lines
//! table, type its columns, then train the candidates — histogram gradient-boosted trees, a
//! linear model (logistic or ridge), a random forest and an MLP — keep the best by validation
//! metric (`algorithm = "auto"`, a leaderboard in `report.json`), evaluate on validation and
//! test, and export.

use super::fit::{beats, fit_algorithm, refit, sample_first};
use crate::data::DatasetSummary;
use crate::error::{Error, Result};
use crate::eval::ClassificationReport;
use crate::eval::regression::RegressionReport;
use crate::learners::forest::ForestParams;
use crate::learners::gbt::GbtParams;
use crate::learners::mlp::MlpParams;
use crate::params::{ParamSpec, ParamValue, ResolvedParams};
use crate::task::{Model, ResolvedData, ScanProgress, Task};
use crate::templates::tabular::data::{self as tabular_data, Part, TargetKind};
use crate::templates::tabular::model::{self as tabular_model, Fitted, TabularModel};
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

/// Every parameter of the table tasks.
pub fn param_specs(kind: TargetKind) -> Vec<ParamSpec> {
    let linear = match kind {
        TargetKind::Classification => "logistic regression",
        TargetKind::Regression => "ridge regression",
    };
    vec![
        ParamSpec::new(
            "target",
            "Target column",
            "Data",
            "The column to predict (`--target COL`); empty picks a column named target, label, class or y.",
            crate::params::ParamKind::Text,
            ParamValue::Text(String::new()),
        ),
        ParamSpec::new(
            "ignore_columns",
            "Ignore columns",
            "Data",
            "Comma-separated columns the model must not use (ids, leaks).",
            crate::params::ParamKind::Text,
            ParamValue::Text(String::new()),
        ),
        ParamSpec::float(
            "validation_split",
            "Validation share",
            "Data",
            "Share of the training rows held out for early stopping and model choice when no validation table is given.",
            (0.0, 0.5),
            0.1,
        ),
        ParamSpec::choice(
            "algorithm",
            "Algorithm",
            "Model",
            &format!(
                "boosted_trees, {linear} (linear), random_forest, mlp, or auto: train them all and keep the best on validation."
            ),
            &["auto", "boosted_trees", "linear", "random_forest", "mlp"],
            "auto",
        ),
        ParamSpec::int(
            "time_limit",
            "Time limit (s)",
            "Model",
            "auto starts no further candidate after this many seconds; 0 = 60 s plus 1 s per 2,000 training rows. On tables above 50,000 rows the random forest and the MLP are first fitted on 20,000 rows and skipped when that does not beat the best so far.",
            (0, 1_000_000),
            0,
        ),
        ParamSpec::int(
            "max_iterations",
            "Boosting rounds",
            "Boosted trees",
            "Most boosting rounds (trees per output). The default, 100, is scikit-learn's and LightGBM's; as in scikit-learn, early stopping on validation loss applies only to tables above 10,000 training rows.",
            (1, 10_000),
            100,
        ),
        ParamSpec::float(
            "learning_rate",
            "Learning rate",
            "Boosted trees",
            "Shrinkage of every tree's contribution.",
            (1e-4, 1.0),
            0.1,
        ),
        ParamSpec::int(
            "max_leaf_nodes",
            "Leaves per tree",
            "Boosted trees",
            "Most leaves of one tree (trees grow best split first).",
            (2, 1024),
            31,
        ),
        ParamSpec::int(
            "max_depth",
            "Max depth",
            "Boosted trees",
            "Deepest a tree may grow; 0 for no limit besides the leaf count.",
            (0, 64),
            0,
        ),
        ParamSpec::int(
            "min_samples_leaf",
            "Rows per leaf",
            "Boosted trees",
            "Fewest training rows a leaf may hold.",
            (1, 100_000),
            20,
        ),
        ParamSpec::float(
            "l2_regularization",
            "L2 on leaves",
            "Boosted trees",
            "L2 penalty on leaf values.",
            (0.0, 1e6),
            0.0,
        ),
        ParamSpec::int(
            "max_bins",
            "Bins per feature",
            "Boosted trees",
            "Histogram bins per numeric column (missing values get their own).",
            (2, 255),
            255,
        ),
        ParamSpec::int(
            "early_stopping_rounds",
            "Early stopping",
            "Training",
            "Rounds (or iterations) without validation improvement before stopping; 0 never stops early.",
            (0, 1000),
            10,
        ),
        ParamSpec::float(
            "linear_l2",
            "L2 of linear model",
            "Linear",
            &format!("L2 penalty of the {linear} on standardized inputs."),
            (0.0, 100.0),
            1e-4,
        ),
        ParamSpec::int(
            "linear_iterations",
            "Linear iterations",
            "Linear",
            "Most full-batch iterations of logistic regression (ridge regression is solved exactly).",
            (1, 100_000),
            500,
        ),
        ParamSpec::int(
            "forest_trees",
            "Trees",
            "Random forest",
            "Trees in the forest, each grown on a bootstrap sample of the training rows.",
            (1, 5000),
            100,
        ),
        ParamSpec::int(
            "forest_max_leaf_nodes",
            "Leaves per tree",
            "Random forest",
            "Most leaves of one forest tree (forest trees grow deep; each leaf needs at least one row).",
            (2, 65_536),
            2048,
        ),
        ParamSpec::float(
            "forest_max_features",
            "Features per split",
            "Random forest",
            "Share of the columns each split chooses from; 0 picks √p for classes and all for numbers (scikit-learn's defaults).",
            (0.0, 1.0),
            0.0,
        ),
        ParamSpec::int(
            "mlp_hidden",
            "Hidden units",
            "MLP",
            "Units of the first hidden layer (the second has half as many).",
            (2, 4096),
            128,
        ),
        ParamSpec::int(
            "mlp_epochs",
            "MLP epochs",
            "MLP",
            "Most passes over the training rows; early stopping usually ends sooner.",
            (1, 10_000),
            200,
        ),
        ParamSpec::int(
            "mlp_batch_size",
            "MLP batch size",
            "MLP",
            "Rows per optimizer step.",
            (1, 65_536),
            256,
        ),
        ParamSpec::float(
            "mlp_learning_rate",
            "MLP learning rate",
            "MLP",
            "Peak AdamW learning rate (warm-up, then cosine decay).",
            (1e-6, 1.0),
            1e-3,
        ),
    ]
}

/// The table settings, checked.
#[derive(Clone)]
pub(super) struct TabularParams {
    pub(super) target: String,
    pub(super) ignore: Vec<String>,
    pub(super) validation_split: f64,
    pub(super) algorithm: String,
    pub(super) gbt: GbtParams,
    pub(super) linear_l2: f64,
    pub(super) linear_iterations: usize,
    pub(super) patience: usize,
    pub(super) forest: ForestParams,
    pub(super) mlp: MlpParams,
    /// Seconds after which `auto` starts no further candidate (0: 60 s + 1 s per 2,000 rows).
    pub(super) time_limit: f64,
}

impl TabularParams {
    /// The time limit for a table of `rows` training rows.
    fn time_limit_secs(&self, rows: usize) -> f64 {
        if self.time_limit > 0.0 {
            self.time_limit
        } else {
            60.0 + rows as f64 / 2_000.0
        }
    }

    fn from_resolved(p: &ResolvedParams, seed: u64) -> Self {
        let patience = p.usize("early_stopping_rounds");
        Self {
            target: p.text("target").trim().to_string(),
            ignore: p
                .text("ignore_columns")
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
            validation_split: p.float("validation_split"),
            algorithm: p.text("algorithm").to_string(),
            gbt: GbtParams {
                learning_rate: p.float("learning_rate"),
                max_iterations: p.usize("max_iterations"),
                max_leaf_nodes: p.usize("max_leaf_nodes"),
                min_samples_leaf: p.usize("min_samples_leaf"),
                l2_regularization: p.float("l2_regularization"),
                max_depth: p.usize("max_depth"),
                max_bins: p.usize("max_bins"),
                patience,
                seed,
            },
            linear_l2: p.float("linear_l2"),
            linear_iterations: p.usize("linear_iterations"),
            patience,
            forest: ForestParams {
                num_trees: p.usize("forest_trees"),
                max_leaf_nodes: p.usize("forest_max_leaf_nodes"),
                min_samples_leaf: 1,
                max_depth: 0,
                max_features: p.float("forest_max_features"),
                max_bins: p.usize("max_bins"),
                seed,
            },
            mlp: MlpParams {
                hidden: p.usize("mlp_hidden"),
                epochs: p.usize("mlp_epochs"),
                batch_size: p.usize("mlp_batch_size"),
                learning_rate: p.float("mlp_learning_rate"),
                weight_decay: 1e-4,
                patience,
                seed,
            },
            time_limit: p.usize("time_limit") as f64,
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
    /// Accuracy (classifier) or RMSE (regressor) on validation (training rows when there is none).
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
        }
    }
}

/// The training history of the chosen candidate, for the report and its plots.
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
    let p = TabularParams::from_resolved(&ctx.params, ctx.project.seed);
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
    let algorithms: Vec<&str> = match p.algorithm.as_str() {
        "auto" => vec!["boosted_trees", "linear", "random_forest", "mlp"],
        one => vec![one],
    };
    if algorithms.len() > 1 && table.validation.is_empty() {
        ctx.warn(
            "no validation rows: the algorithm is chosen on training rows, which favours the more flexible model; set validation_split above 0",
            None,
        );
    }
    let mut leaderboard: Vec<Candidate> = Vec::new();
    let mut best: Option<(Fitted, History)> = None;
    let all_started = Instant::now();
    let time_limit = p.time_limit_secs(table.train.len());
    for (i, algorithm) in algorithms.iter().enumerate() {
        let best_value = leaderboard.iter().find(|c| c.chosen).map(|c| c.value);
        if let Some(best_value) = best_value {
            let elapsed = all_started.elapsed().as_secs_f64();
            let skip = if elapsed > time_limit {
                Some((
                    f64::NAN,
                    format!(
                        "skipped: the time limit of {time_limit:.0} s was reached after {elapsed:.0} s (set time_limit to give it more)"
                    ),
                ))
            } else {
                sample_first(ctx, &table, kind, &p, algorithm, best_value)?
            };
            if let Some((value, reason)) = skip {
                ctx.warn(format!("{algorithm}: {reason}"), None);
                leaderboard.push(Candidate::skipped(algorithm, kind, value, reason));
                continue;
            }
        }
        // Only the first candidate draws the loss curve; the others report progress only.
        let plot = i == 0;
        let started = Instant::now();
        let cpu_started = crate::train::cpu_time::process_cpu_secs();
        let (fitted, history) = fit_algorithm(ctx, &table, kind, &p, algorithm, plot)?;
        let fit_secs = started.elapsed().as_secs_f64();
        let fit_cpu_secs = cpu_started
            .zip(crate::train::cpu_time::process_cpu_secs())
            .map(|(a, b)| b - a);
        let model = TabularModel::new(kind, &table, fitted, algorithm);
        let part = if table.validation.is_empty() {
            &table.train
        } else {
            &table.validation
        };
        let (metric, value) = score(&model, part);
        let better = best_value.is_none_or(|b| beats(kind, value, b));
        if better {
            leaderboard.iter_mut().for_each(|c| c.chosen = false);
        }
        leaderboard.push(Candidate {
            algorithm: algorithm.to_string(),
            metric: metric.into(),
            value,
            // boosting rounds, trees of a forest, epochs of the MLP
            iterations: history.epochs.last().map_or(0, |e| e.epoch),
            fit_secs,
            fit_cpu_secs,
            chosen: better,
            refit: false,
            skipped: None,
        });
        if better {
            best = Some((model.fitted, history));
        }
    }
    let Some((fitted, history)) = best else {
        return Err(Error::Unsupported("no model was trained".into()));
    };
    let chosen = leaderboard
        .iter()
        .find(|c| c.chosen)
        .map(|c| c.algorithm.clone())
        .unwrap_or_default();
    let refitted = refit(ctx, &table, kind, &p, &chosen, &fitted)?;
    if let (Some(_), Some(c)) = (&refitted, leaderboard.iter_mut().find(|c| c.chosen)) {
        c.refit = true;
    }
    let model = TabularModel::new(kind, &table, fitted, &chosen);
    // Validation figures come from the model fitted on training rows only; the test figures and
    // the exported model from the refit on training + validation rows, when there is one.
    let final_model = refitted.map(|f| TabularModel::new(kind, &table, f, &chosen));
    let mut reports = Vec::new();
    for (name, part) in [("validation", &table.validation), ("test", &table.test)] {
        if part.is_empty() {
            continue;
        }
        let mut phase = ctx.phase(Phase::Evaluating, part.len() as u64);
        let evaluated = match (name, &final_model) {
            ("test", Some(m)) => m,
            _ => &model,
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
