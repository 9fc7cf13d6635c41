//! The exported table model: `model.safetensors` (the trees as flat node arrays, or the linear
//! weights), `config.json` with the whole feature pipeline (columns, types, categories,
//! imputation, clipping, design columns) and the rules to apply the tensors, `manifest.json`;
//! the run's `report.json` (with the candidates' leaderboard and feature importance) and plots;
//! and loading a model folder back to predict rows of CSV / JSON-lines files and evaluate.

use crate::data::table;
use crate::data::table_schema::{Matrix, Schema};
use crate::error::{Error, Result};
use crate::eval::{plots, tabular_plots};
use crate::export::st;
use crate::fsutil::{read_json, replace_dir, write_json};
use crate::learners::forest::Forest;
use crate::learners::gbt::{self, Gbt};
use crate::learners::glm::{self, Glm};
use crate::learners::mlp::Mlp;
use crate::task::{Evaluation, Model, Prediction, ScanProgress};
use crate::templates::tabular::data::{self as tabular_data, TableData, TargetKind};
use crate::templates::tabular::model_format::{fitted_from, model_json, tensors_of};
use crate::templates::tabular::train::{Candidate, History, Report, TabularTask, evaluate_part};
use crate::train::{Event, Phase, RunContext};
use candle_core::{Device, Tensor};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Version of the table model-folder layout.
pub const MODEL_FORMAT_VERSION: u32 = 1;

/// A fitted model of either family.
#[derive(Clone, Debug, PartialEq)]
pub enum Fitted {
    Trees(Gbt),
    Linear(Glm),
    Forest(Forest),
    Mlp(Mlp),
    /// A weighted average of other models' probabilities (classification) or values.
    Ensemble(Ensemble),
}

/// Greedy ensemble selection's result (`ensemble.rs`): members and their weights (summing
/// to 1). Members are never ensembles themselves.
#[derive(Clone, Debug, PartialEq)]
pub struct Ensemble {
    pub members: Vec<Member>,
}

/// One model of an ensemble.
#[derive(Clone, Debug, PartialEq)]
pub struct Member {
    pub algorithm: String,
    pub weight: f64,
    pub fitted: Fitted,
}

impl Ensemble {
    /// The member of largest weight (the first of equal ones).
    pub fn heaviest(&self) -> Option<&Member> {
        self.members
            .iter()
            .reduce(|a, b| if b.weight > a.weight { b } else { a })
    }
}

/// Raw outputs of every row of `x` (an ensemble's: its averaged probabilities or values).
fn raw_of(fitted: &Fitted, kind: TargetKind, schema: &Schema, x: &Matrix) -> Vec<Vec<f64>> {
    match fitted {
        Fitted::Trees(m) => m.raw_all(x),
        Fitted::Linear(m) => {
            let (d, dim) = glm::design(schema, x);
            d.chunks(dim.max(1)).map(|r| m.raw(r)).collect()
        }
        Fitted::Forest(m) => m.raw_all(x),
        Fitted::Mlp(m) => m.raw_all(&glm::design(schema, x).0),
        Fitted::Ensemble(e) => {
            let mut out: Vec<Vec<f64>> = Vec::new();
            for member in &e.members {
                let raw = raw_of(&member.fitted, kind, schema, x);
                let rows = raw.iter().map(|r| match kind {
                    TargetKind::Classification => probabilities_of(&member.fitted, r)
                        .into_iter()
                        .map(f64::from)
                        .collect(),
                    TargetKind::Regression => r.clone(),
                });
                if out.is_empty() {
                    out = rows
                        .map(|r| r.iter().map(|v| member.weight * v).collect())
                        .collect();
                } else {
                    for (o, r) in out.iter_mut().zip(rows) {
                        for (a, v) in o.iter_mut().zip(r) {
                            *a += member.weight * v;
                        }
                    }
                }
            }
            out
        }
    }
}

/// Class probabilities from raw outputs.
fn probabilities_of(fitted: &Fitted, raw: &[f64]) -> Vec<f32> {
    match fitted {
        Fitted::Trees(m) => m.probabilities(raw),
        Fitted::Linear(_) | Fitted::Mlp(_) => gbt::softmax(raw),
        Fitted::Forest(m) => m.probabilities(raw),
        Fitted::Ensemble(_) => raw.iter().map(|&p| p as f32).collect(),
    }
}

/// A table model with its feature pipeline.
#[derive(Clone, Debug)]
pub struct TabularModel {
    pub kind: TargetKind,
    pub target: String,
    pub schema: Schema,
    pub labels: Vec<String>,
    pub algorithm: String,
    pub fitted: Fitted,
}

impl TabularModel {
    pub fn new(kind: TargetKind, data: &TableData, fitted: Fitted, algorithm: &str) -> Self {
        Self {
            kind,
            target: data.target.clone(),
            schema: data.schema.clone(),
            labels: data.labels.clone(),
            algorithm: algorithm.to_string(),
            fitted,
        }
    }

    /// Raw outputs (scores or the predicted number) of every row of `x`.
    pub fn raw_all(&self, x: &Matrix) -> Vec<Vec<f64>> {
        raw_of(&self.fitted, self.kind, &self.schema, x)
    }

    /// Predictions of every row of `x`, row-major: class probabilities (classification) or
    /// one value per row.
    pub fn flat_predictions(&self, x: &Matrix) -> Vec<f64> {
        self.raw_all(x)
            .iter()
            .flat_map(|raw| self.prediction_of_raw(raw))
            .collect()
    }

    /// One row's prediction from its raw outputs: class probabilities, or the value.
    pub fn prediction_of_raw(&self, raw: &[f64]) -> Vec<f64> {
        match self.kind {
            TargetKind::Classification => {
                self.probabilities(raw).into_iter().map(f64::from).collect()
            }
            TargetKind::Regression => vec![raw.first().copied().unwrap_or(f64::NAN)],
        }
    }

    /// Class probabilities from raw outputs.
    pub fn probabilities(&self, raw: &[f64]) -> Vec<f32> {
        probabilities_of(&self.fitted, raw)
    }

    /// Split gain share per feature (trees), or none; an ensemble's is its tree members'
    /// shares averaged by their weights (renormalized over those members).
    pub fn importance(&self) -> Vec<(String, f64)> {
        fn shares(fitted: &Fitted) -> Option<Vec<f64>> {
            let gain = match fitted {
                Fitted::Trees(m) => &m.feature_gain,
                Fitted::Forest(m) => &m.feature_gain,
                Fitted::Linear(_) | Fitted::Mlp(_) | Fitted::Ensemble(_) => return None,
            };
            let total: f64 = gain.iter().sum::<f64>().max(1e-300);
            Some(gain.iter().map(|g| g / total).collect())
        }
        let share = match &self.fitted {
            Fitted::Ensemble(e) => {
                let mut sum: Vec<f64> = Vec::new();
                let mut weight = 0.0;
                for m in &e.members {
                    if let Some(s) = shares(&m.fitted) {
                        sum.resize(s.len().max(sum.len()), 0.0);
                        for (a, v) in sum.iter_mut().zip(s) {
                            *a += m.weight * v;
                        }
                        weight += m.weight;
                    }
                }
                if weight <= 0.0 {
                    return Vec::new();
                }
                sum.iter().map(|v| v / weight).collect()
            }
            other => match shares(other) {
                Some(s) => s,
                None => return Vec::new(),
            },
        };
        self.schema.names().into_iter().zip(share).collect()
    }

    /// The algorithm whose training curve the report draws (an ensemble's heaviest member).
    pub fn curve_algorithm(&self) -> &str {
        match &self.fitted {
            Fitted::Ensemble(e) => e.heaviest().map_or("ensemble", |m| m.algorithm.as_str()),
            _ => &self.algorithm,
        }
    }

    fn task_id(&self) -> &'static str {
        match self.kind {
            TargetKind::Classification => TabularTask::CLASSIFICATION_ID,
            TargetKind::Regression => TabularTask::REGRESSION_ID,
        }
    }

    /// The model's tensors with PyTorch-style dotted names.
    fn tensors(&self) -> Result<Vec<(String, Tensor)>> {
        tensors_of(&self.fitted)
    }

    /// `config.json`: everything a predictor needs besides the tensors.
    fn config(&self, template: &str) -> serde_json::Value {
        let id2label: BTreeMap<String, &String> = self
            .labels
            .iter()
            .enumerate()
            .map(|(i, l)| (i.to_string(), l))
            .collect();
        let label2id: BTreeMap<&String, usize> = self
            .labels
            .iter()
            .enumerate()
            .map(|(i, l)| (l, i))
            .collect();
        let model_type = match self.kind {
            TargetKind::Classification => "lathe_tabular_classifier",
            TargetKind::Regression => "lathe_tabular_regressor",
        };
        let model = model_json(&self.fitted, self.kind, &self.schema);
        json!({
            "model_type": model_type,
            "algorithm": self.algorithm,
            "target": self.target,
            "num_labels": self.labels.len(),
            "id2label": id2label,
            "label2id": label2id,
            "features": self.schema.features,
            "encoding": "numeric: the number (empty, NA, NaN, null, None, ? are missing → NaN; inf allowed); boolean: true/yes/t/y → 1, false/no/f/n → 0 (case-insensitive), missing → NaN; categorical: the index of the cell text in `categories`, anything else (missing, unseen, rare) → len(categories)",
            "model": model,
            "lathe": { "task": self.task_id(), "template": template, "version": env!("CARGO_PKG_VERSION"), "format_version": MODEL_FORMAT_VERSION },
        })
    }

    /// Loads a model folder written by [`write_model_dir`].
    pub fn load(dir: &Path) -> Result<Self> {
        let config_path = dir.join(crate::train::run_dir::MODEL_CONFIG);
        let config: serde_json::Value = read_json(&config_path)?;
        let bad = |what: &str| {
            Error::model(
                format!("config.json has no valid `{what}`; re-export the model"),
                &config_path,
            )
        };
        let kind = match config.pointer("/lathe/task").and_then(|v| v.as_str()) {
            Some(TabularTask::CLASSIFICATION_ID) => TargetKind::Classification,
            Some(TabularTask::REGRESSION_ID) => TargetKind::Regression,
            _ => return Err(bad("lathe.task")),
        };
        let target = config["target"].as_str().ok_or_else(|| bad("target"))?;
        let features =
            serde_json::from_value(config["features"].clone()).map_err(|_| bad("features"))?;
        let schema = Schema { features };
        let mut labels = vec![String::new(); config["num_labels"].as_u64().unwrap_or(0) as usize];
        if let Some(map) = config["id2label"].as_object() {
            for (k, v) in map {
                let (Ok(i), Some(name)) = (k.parse::<usize>(), v.as_str()) else {
                    return Err(bad("id2label"));
                };
                *labels.get_mut(i).ok_or_else(|| bad("id2label"))? = name.to_string();
            }
        }
        let algorithm = config["algorithm"].as_str().unwrap_or_default().to_string();
        let st_path = dir.join(crate::train::run_dir::MODEL_WEIGHTS);
        let (tensors, _) = st::load(&st_path, &Device::Cpu)?;
        let fitted = fitted_from(
            &config["model"],
            &tensors,
            kind,
            &schema,
            (&config_path, &st_path),
            true,
        )?;
        Ok(Self {
            kind,
            target: target.to_string(),
            schema,
            labels,
            algorithm,
            fitted,
        })
    }
}

/// Writes `report.json`, the plots and `model/` of a finished run.
pub fn write_run_outputs(
    ctx: &RunContext,
    model: &TabularModel,
    data: &TableData,
    history: &History,
    leaderboard: &[Candidate],
    reports: &[(String, Report)],
) -> Result<PathBuf> {
    let dir = &ctx.run_dir;
    let total = 4 + reports.len() as u64;
    let mut phase = ctx.phase(Phase::Exporting, total);
    let evaluation: BTreeMap<&str, serde_json::Value> = reports
        .iter()
        .map(|(name, r)| {
            let v = match r {
                Report::Classification(c) => serde_json::to_value(c),
                Report::Regression(r) => serde_json::to_value(r),
            };
            (name.as_str(), v.unwrap_or_default())
        })
        .collect();
    let importance = model.importance();
    let report = json!({
        "template": ctx.project.template,
        "target": model.target,
        "labels": model.labels,
        "algorithm": model.algorithm,
        "leaderboard": leaderboard,
        "feature_importance": importance.iter().map(|(n, v)| json!({"feature": n, "importance": v})).collect::<Vec<_>>(),
        "columns": data.columns,
        "data": {
            "num_train": data.train.len(),
            "num_validation": data.validation.len(),
            "num_test": data.test.len(),
            "issues": data.issues,
        },
        "training": {
            "curve_of": model.curve_algorithm(),
            "iterations_run": history.epochs.len(),
            "stopped_early": history.stopped_early,
            "history": history.epochs,
        },
        "evaluation": evaluation,
        "elapsed_secs": ctx.started.elapsed().as_secs_f64(),
    });
    write_json(&dir.report_json(), &report)?;
    phase.set(1);
    let report_dir = dir.report_dir();
    let loss_name = match model.kind {
        TargetKind::Classification => "cross-entropy",
        TargetKind::Regression => "mean squared error",
    };
    let x_unit = match model.curve_algorithm() {
        "boosted_trees" => "Loss per boosting round",
        "random_forest" => "Loss by number of trees",
        "mlp" => "Loss per epoch",
        _ => "Loss per iteration",
    };
    plots::curves(
        &report_dir.join("loss.png"),
        x_unit,
        loss_name,
        &history.epochs,
        |m| (Some(m.train_loss), m.validation_loss),
    )?;
    phase.set(2);
    if !importance.is_empty() {
        tabular_plots::feature_importance(
            &report_dir.join("feature_importance.png"),
            &format!("Feature importance ({})", model.algorithm.replace('_', " ")),
            &importance,
        )?;
    }
    phase.set(3);
    for (name, r) in reports {
        match r {
            Report::Classification(c) => plots::confusion_matrix(
                &report_dir.join(format!("confusion_matrix_{name}.png")),
                &format!(
                    "Confusion matrix ({name}, accuracy {:.1}%)",
                    c.accuracy * 100.0
                ),
                &c.labels,
                &c.confusion_matrix,
            )?,
            Report::Regression(_) => {
                let part = if name == "test" {
                    &data.test
                } else {
                    &data.validation
                };
                let predicted: Vec<f64> = model
                    .raw_all(&part.x)
                    .iter()
                    .map(|r| r.first().copied().unwrap_or(f64::NAN))
                    .collect();
                tabular_plots::predicted_vs_actual(
                    &report_dir.join(format!("predicted_vs_actual_{name}.png")),
                    &format!("Predicted vs actual ({name})"),
                    &model.target,
                    &part.y,
                    &predicted,
                )?
            }
        }
    }
    let resolved: BTreeMap<&String, &crate::params::ParamValue> = ctx.params.0.iter().collect();
    let manifest = json!({
        "lathe_version": env!("CARGO_PKG_VERSION"),
        "created": crate::train::run_dir::utc_iso(std::time::SystemTime::now()),
        "template": ctx.project.template,
        "seed": ctx.project.seed,
        "params": resolved,
        "data": {
            "train": { "path": ctx.project.resolve(&ctx.project.data.train), "rows": data.train.len() + if ctx.project.data.validation.is_none() { data.validation.len() } else { 0 }, "blake3": data.train_hash },
            "validation_rows": data.validation.len(),
            "test_rows": data.test.len(),
        },
        "algorithm": model.algorithm,
    });
    let target = dir.model();
    write_model_dir(&target, model, &ctx.project.template, &manifest)?;
    phase.set(total);
    ctx.emit(Event::Exported {
        format: "safetensors".into(),
        path: target.join(crate::train::run_dir::MODEL_WEIGHTS),
    });
    Ok(target)
}

/// Writes a complete model folder at `target` (staged, then swapped in atomically).
pub fn write_model_dir(
    target: &Path,
    model: &TabularModel,
    template: &str,
    manifest: &serde_json::Value,
) -> Result<()> {
    let staging = crate::fsutil::temp_sibling(target).with_extension("staging");
    if staging.exists() {
        std::fs::remove_dir_all(&staging).map_err(|e| Error::io("clearing", &staging, e))?;
    }
    std::fs::create_dir_all(&staging).map_err(|e| Error::io("creating", &staging, e))?;
    let labels_json = serde_json::to_string(&model.labels).unwrap_or_default();
    st::save(
        &staging.join(crate::train::run_dir::MODEL_WEIGHTS),
        &model.tensors()?,
        &[
            ("lathe_task", model.task_id().into()),
            ("labels", labels_json),
            ("target", model.target.clone()),
        ],
    )?;
    write_json(
        &staging.join(crate::train::run_dir::MODEL_CONFIG),
        &model.config(template),
    )?;
    write_json(&staging.join("manifest.json"), manifest)?;
    replace_dir(&staging, target)
}

impl Model for TabularModel {
    fn labels(&self) -> &[String] {
        &self.labels
    }

    fn predict(&self, inputs: &[String], progress: ScanProgress<'_>) -> Vec<Result<Prediction>> {
        let mut out = Vec::new();
        for (i, input) in inputs.iter().enumerate() {
            progress(i as u64, inputs.len() as u64);
            let path = Path::new(input);
            let t = match table::read(path) {
                Ok(t) => t,
                Err(e) => {
                    out.push(Err(e));
                    continue;
                }
            };
            for s in &t.skipped {
                out.push(Err(Error::data(format!("{s}; no prediction for it"), path)));
            }
            let x = match self.schema.encode(&t, &mut |_| {}) {
                Ok(x) => x,
                Err(e) => {
                    out.push(Err(e));
                    continue;
                }
            };
            for (r, raw) in self.raw_all(&x).into_iter().enumerate() {
                let name = t.row_name_as(input, r);
                out.push(Ok(match self.kind {
                    TargetKind::Classification => Prediction::from_probabilities(
                        name,
                        &self.labels,
                        &self.probabilities(&raw),
                    ),
                    TargetKind::Regression => {
                        let v = raw.first().copied().unwrap_or(f64::NAN);
                        Prediction {
                            input: name,
                            label: format!("{v}"),
                            value: Some(v),
                            ..Default::default()
                        }
                    }
                }));
            }
        }
        progress(inputs.len() as u64, inputs.len() as u64);
        out
    }

    fn evaluate(
        &self,
        data: &Path,
        progress: ScanProgress<'_>,
        warn: &mut dyn FnMut(String),
    ) -> Result<Evaluation> {
        progress(0, 1);
        let t = table::read(data)?;
        let mut labels = self.labels.clone();
        let y = tabular_data::targets(&t, &self.target, self.kind, &mut labels, false, warn)?;
        let part = tabular_data::part_of(&t, &self.schema, &y, warn)?;
        let report = evaluate_part(self, &part);
        progress(1, 1);
        Ok(match report {
            Report::Classification(c) => Evaluation::Classification(c),
            Report::Regression(r) => Evaluation::Regression(r),
        })
    }
}
