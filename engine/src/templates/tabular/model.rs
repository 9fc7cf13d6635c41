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
use crate::learners::forest::{Forest, ForestKind};
use crate::learners::gbt::{self, Gbt, Objective};
use crate::learners::gbt_tree::{Node, Tree};
use crate::learners::glm::{self, Glm};
use crate::learners::mlp::Mlp;
use crate::task::{Evaluation, Model, Prediction, ScanProgress};
use crate::templates::tabular::data::{self as tabular_data, TableData, TargetKind};
use crate::templates::tabular::train::{Candidate, History, Report, TabularTask, evaluate_part};
use crate::train::{Event, Phase, RunContext};
use candle_core::{DType, Device, Tensor};
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
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

/// Rebuilds a model from its `model` object of `config.json` and its tensors (an ensemble's
/// members from theirs, without their prefix; `top` is false inside an ensemble, where another
/// ensemble is not allowed).
fn fitted_from(
    model: &serde_json::Value,
    tensors: &HashMap<String, Tensor>,
    kind: TargetKind,
    schema: &Schema,
    paths: (&Path, &Path),
    top: bool,
) -> Result<Fitted> {
    let (config_path, st_path) = paths;
    let bad = |what: &str| {
        Error::model(
            format!("config.json has no valid `{what}`; re-export the model"),
            config_path,
        )
    };
    Ok(match model["type"].as_str() {
        Some("gradient_boosted_trees") => {
            let objective: Objective = serde_json::from_value(model["objective"].clone())
                .map_err(|_| bad("model.objective"))?;
            let (base, trees, feature_gain) = trees_from(&tensors, objective.outputs(), st_path)?;
            Fitted::Trees(Gbt {
                objective,
                base,
                best_iteration: trees.len(),
                trees,
                feature_gain,
                stopped_early: false,
            })
        }
        Some("random_forest") => {
            let kind: ForestKind =
                serde_json::from_value(model["forest"].clone()).map_err(|_| bad("model.forest"))?;
            let (_, trees, feature_gain) = trees_from(&tensors, kind.outputs(), st_path)?;
            Fitted::Forest(Forest {
                kind,
                trees,
                feature_gain,
            })
        }
        Some("mlp") => Fitted::Mlp(mlp_from(&tensors, kind, schema, st_path)?),
        Some("ridge_regression" | "logistic_regression") => {
            let w = get(&tensors, "linear.weight", st_path)?;
            let (outputs, dim) = w.dims2()?;
            let weight = w.flatten_all()?.to_dtype(DType::F64)?.to_vec1::<f64>()?;
            let bias = vec1_f64(&tensors, "linear.bias", st_path)?;
            if bias.len() != outputs || dim != glm::design_dim(schema) {
                return Err(Error::model(
                    "linear weights do not match the feature pipeline in config.json",
                    st_path,
                ));
            }
            Fitted::Linear(Glm {
                classes: if kind == TargetKind::Regression {
                    0
                } else {
                    outputs
                },
                dim,
                weight,
                bias,
            })
        }
        Some("weighted_ensemble") if top => {
            let members = model["members"]
                .as_array()
                .ok_or_else(|| bad("model.members"))?;
            let mut out = Vec::with_capacity(members.len());
            for (i, m) in members.iter().enumerate() {
                let prefix = format!("member{i}.");
                let own: HashMap<String, Tensor> = tensors
                    .iter()
                    .filter_map(|(name, t)| {
                        name.strip_prefix(&prefix)
                            .map(|rest| (rest.to_string(), t.clone()))
                    })
                    .collect();
                let weight = m["weight"]
                    .as_f64()
                    .filter(|w| w.is_finite() && *w >= 0.0)
                    .ok_or_else(|| bad("model.members.weight"))?;
                out.push(Member {
                    algorithm: m["algorithm"].as_str().unwrap_or_default().to_string(),
                    weight,
                    fitted: fitted_from(&m["model"], &own, kind, schema, paths, false)?,
                });
            }
            let total: f64 = out.iter().map(|m| m.weight).sum();
            if out.is_empty() || (total - 1.0).abs() > 1e-6 {
                return Err(bad("model.members"));
            }
            Fitted::Ensemble(Ensemble { members: out })
        }
        _ => return Err(bad("model.type")),
    })
}

/// The `model` object of `config.json`: the type, its rule and its output.
fn model_json(fitted: &Fitted, kind: TargetKind, schema: &Schema) -> serde_json::Value {
    let output = match (kind, fitted) {
        (TargetKind::Regression, _) => "the predicted number",
        (TargetKind::Classification, Fitted::Trees(m)) if m.objective == Objective::Binary => {
            "one score s: P(id2label[1]) = sigmoid(s), P(id2label[0]) = 1 − sigmoid(s)"
        }
        (TargetKind::Classification, Fitted::Forest(m)) if m.kind.outputs() == 1 => {
            "one output p: P(id2label[1]) = clip(p, 0, 1), P(id2label[0]) = 1 − that"
        }
        (TargetKind::Classification, Fitted::Forest(_)) => {
            "one averaged class frequency per class: probabilities = max(outputs, 0) / sum(max(outputs, 0))"
        }
        (TargetKind::Classification, Fitted::Ensemble(_)) => {
            "the probabilities themselves: the weighted average of the members' probabilities"
        }
        (TargetKind::Classification, _) => "one score per class: probabilities = softmax(scores)",
    };
    let tree_rule = "encode each row with `features`; then for each tree t (nodes tree_offsets[t]..tree_offsets[t+1], node indices local to the tree, root first) walk from the root: at a node with feature f = trees.feature[n] ≥ 0, a categorical node (is_categorical) sends the row left when bit code of categories_left[n] (8 × u32, low word first) is set; a numeric node sends NaN left iff missing_left, else left iff x[f] <= threshold; a leaf (feature = -1) adds trees.value[n] to output tree_output[t]; outputs start at base_score";
    let design_rule = "encode each row with `features`, then build the design: numeric and boolean columns with NaN replaced by `median` and values clipped to [min, max]; categorical columns one-hot over their codes (categories then one <missing or other> level)";
    match fitted {
        Fitted::Trees(m) => json!({
            "type": "gradient_boosted_trees",
            "objective": m.objective,
            "num_iterations": m.trees.len(),
            "num_outputs": m.objective.outputs(),
            "apply": tree_rule,
            "output": output,
        }),
        Fitted::Forest(m) => json!({
            "type": "random_forest",
            "forest": m.kind,
            "num_trees": m.trees.len(),
            "num_outputs": m.kind.outputs(),
            "apply": format!("{tree_rule} (all zero: leaf values are already divided by the number of trees, so the outputs are the forest's average)"),
            "output": output,
        }),
        Fitted::Mlp(m) => json!({
            "type": "mlp",
            "num_outputs": m.outputs(),
            "hidden": m.hidden(),
            "design": glm::design_names(schema),
            "apply": format!("{design_rule}; z = (design − mlp.input_mean) / mlp.input_std; outputs = mlp.4(relu(mlp.2(relu(mlp.0(z))))) with mlp.N(x) = x · mlp.N.weightᵀ + mlp.N.bias; a regressor's number is mlp.target_mean + mlp.target_std · output"),
            "output": output,
        }),
        Fitted::Linear(m) => json!({
            "type": if kind == TargetKind::Regression { "ridge_regression" } else { "logistic_regression" },
            "num_outputs": m.outputs(),
            "design": glm::design_names(schema),
            "apply": format!("{design_rule}; outputs = linear.bias + linear.weight · design"),
            "output": output,
        }),
        Fitted::Ensemble(e) => json!({
            "type": "weighted_ensemble",
            "num_members": e.members.len(),
            "members": e.members.iter().enumerate().map(|(i, m)| json!({
                "algorithm": m.algorithm,
                "weight": m.weight,
                "tensor_prefix": format!("member{i}."),
                "model": model_json(&m.fitted, kind, schema),
            })).collect::<Vec<_>>(),
            "apply": "apply every member (its `model` rule, with its tensors named without its tensor_prefix) to the row; a classifier's output is Σ weight × the member's class probabilities, a regressor's Σ weight × the member's number (the weights sum to 1)",
            "output": output,
        }),
    }
}

/// A model's tensors with PyTorch-style dotted names; an ensemble's member `i` has its own
/// under the prefix `member{i}.`.
fn tensors_of(fitted: &Fitted) -> Result<Vec<(String, Tensor)>> {
    let cpu = Device::Cpu;
    let mut out = Vec::new();
    match fitted {
        Fitted::Trees(m) => {
            out = tree_tensors(&m.base, &m.trees, &m.feature_gain)?;
        }
        Fitted::Forest(m) => {
            let base = vec![0.0; m.kind.outputs()];
            out = tree_tensors(&base, &m.trees, &m.feature_gain)?;
        }
        Fitted::Mlp(m) => {
            out.push((
                "mlp.input_mean".into(),
                Tensor::new(m.input_mean.as_slice(), &cpu)?,
            ));
            out.push((
                "mlp.input_std".into(),
                Tensor::new(m.input_std.as_slice(), &cpu)?,
            ));
            for (i, (w, b)) in m.tensors()?.into_iter().enumerate() {
                out.push((format!("mlp.{}.weight", 2 * i), w));
                out.push((format!("mlp.{}.bias", 2 * i), b));
            }
            out.push((
                "mlp.target_mean".into(),
                Tensor::new(&[m.target_mean], &cpu)?,
            ));
            out.push(("mlp.target_std".into(), Tensor::new(&[m.target_std], &cpu)?));
        }
        Fitted::Ensemble(e) => {
            for (i, m) in e.members.iter().enumerate() {
                if matches!(m.fitted, Fitted::Ensemble(_)) {
                    return Err(Error::Unsupported(
                        "an ensemble member is itself an ensemble (a bug)".into(),
                    ));
                }
                for (name, t) in tensors_of(&m.fitted)? {
                    out.push((format!("member{i}.{name}"), t));
                }
            }
        }
        Fitted::Linear(m) => {
            out.push((
                "linear.weight".into(),
                Tensor::from_vec(m.weight.clone(), (m.outputs(), m.dim), &cpu)?,
            ));
            out.push(("linear.bias".into(), Tensor::new(m.bias.as_slice(), &cpu)?));
        }
    }
    Ok(out)
}

/// Trees as flat node arrays (`trees.*`), shared by boosting and forests.
fn tree_tensors(
    base: &[f64],
    trees: &[Vec<Tree>],
    feature_gain: &[f64],
) -> Result<Vec<(String, Tensor)>> {
    let cpu = Device::Cpu;
    let mut out = Vec::new();
    let (mut offsets, mut outputs) = (vec![0i64], Vec::new());
    let (mut feature, mut threshold, mut missing_left, mut is_cat) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut left, mut right, mut value, mut cats) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for trees in trees {
        for (j, t) in trees.iter().enumerate() {
            outputs.push(j as i64);
            for n in &t.nodes {
                let leaf = n.is_leaf();
                feature.push(if leaf { -1 } else { n.feature as i64 });
                threshold.push(n.threshold);
                missing_left.push(u8::from(n.missing_left));
                is_cat.push(u8::from(n.categories_left.is_some()));
                left.push(if leaf { -1 } else { n.left as i64 });
                right.push(if leaf { -1 } else { n.right as i64 });
                value.push(n.value);
                let set = n.categories_left.unwrap_or([0; 4]);
                for w in set {
                    cats.push(w as u32);
                    cats.push((w >> 32) as u32);
                }
            }
            let last = offsets.last().copied().unwrap_or(0);
            offsets.push(last + t.nodes.len() as i64);
        }
    }
    let nodes = feature.len();
    out.push(("trees.base_score".into(), Tensor::new(base, &cpu)?));
    out.push((
        "trees.tree_offsets".into(),
        Tensor::new(offsets.as_slice(), &cpu)?,
    ));
    out.push((
        "trees.tree_output".into(),
        Tensor::new(outputs.as_slice(), &cpu)?,
    ));
    out.push((
        "trees.feature".into(),
        Tensor::new(feature.as_slice(), &cpu)?,
    ));
    out.push((
        "trees.threshold".into(),
        Tensor::new(threshold.as_slice(), &cpu)?,
    ));
    out.push((
        "trees.missing_left".into(),
        Tensor::new(missing_left.as_slice(), &cpu)?,
    ));
    out.push((
        "trees.is_categorical".into(),
        Tensor::new(is_cat.as_slice(), &cpu)?,
    ));
    out.push(("trees.left".into(), Tensor::new(left.as_slice(), &cpu)?));
    out.push(("trees.right".into(), Tensor::new(right.as_slice(), &cpu)?));
    out.push(("trees.value".into(), Tensor::new(value.as_slice(), &cpu)?));
    out.push((
        "trees.categories_left".into(),
        Tensor::from_vec(cats, (nodes, 8), &cpu)?,
    ));
    out.push((
        "trees.feature_gain".into(),
        Tensor::new(feature_gain, &cpu)?,
    ));

    Ok(out)
}

fn get<'a>(t: &'a HashMap<String, Tensor>, name: &str, path: &Path) -> Result<&'a Tensor> {
    t.get(name)
        .ok_or_else(|| Error::model(format!("no tensor `{name}`; re-export the model"), path))
}

fn vec1_f64(t: &HashMap<String, Tensor>, name: &str, path: &Path) -> Result<Vec<f64>> {
    Ok(get(t, name, path)?.to_dtype(DType::F64)?.to_vec1::<f64>()?)
}

fn vec1_i64(t: &HashMap<String, Tensor>, name: &str, path: &Path) -> Result<Vec<i64>> {
    Ok(get(t, name, path)?.to_dtype(DType::I64)?.to_vec1::<i64>()?)
}

/// Rebuilds the MLP from `mlp.*` tensors.
fn mlp_from(
    t: &HashMap<String, Tensor>,
    kind: TargetKind,
    schema: &Schema,
    path: &Path,
) -> Result<Mlp> {
    let mismatch = || {
        Error::model(
            "the MLP tensors do not match the feature pipeline in config.json; re-export the model",
            path,
        )
    };
    let f32s = |name: &str| -> Result<Vec<f32>> {
        Ok(get(t, name, path)?
            .to_dtype(DType::F32)?
            .flatten_all()?
            .to_vec1::<f32>()?)
    };
    let in_dim = glm::design_dim(schema);
    let mut layers = Vec::new();
    let mut fan_in = in_dim;
    for i in 0..3 {
        let w = get(t, &format!("mlp.{}.weight", 2 * i), path)?;
        let (o, inp) = w.dims2()?;
        if inp != fan_in {
            return Err(mismatch());
        }
        let bias = f32s(&format!("mlp.{}.bias", 2 * i))?;
        if bias.len() != o {
            return Err(mismatch());
        }
        layers.push((
            w.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?,
            bias,
        ));
        fan_in = o;
    }
    let (input_mean, input_std) = (f32s("mlp.input_mean")?, f32s("mlp.input_std")?);
    let classes = match kind {
        TargetKind::Regression => 0,
        TargetKind::Classification => fan_in,
    };
    if input_mean.len() != in_dim
        || input_std.len() != in_dim
        || (kind == TargetKind::Regression && fan_in != 1)
    {
        return Err(mismatch());
    }
    let scalar = |name: &str| -> Result<f64> {
        vec1_f64(t, name, path)?
            .first()
            .copied()
            .ok_or_else(mismatch)
    };
    Ok(Mlp {
        classes,
        in_dim,
        layers,
        input_mean,
        input_std,
        target_mean: scalar("mlp.target_mean")?,
        target_std: scalar("mlp.target_std")?,
        best_epoch: 0,
        stopped_early: false,
    })
}

/// Tree ensemble parts read back from tensors: base scores, trees per round, feature gain.
type TreeParts = (Vec<f64>, Vec<Vec<Tree>>, Vec<f64>);

/// Rebuilds the trees (`k` outputs per round) from their flat node arrays.
fn trees_from(t: &HashMap<String, Tensor>, k: usize, path: &Path) -> Result<TreeParts> {
    let damaged = || {
        Error::model(
            "the tree tensors are inconsistent; re-export the model",
            path,
        )
    };
    let offsets = vec1_i64(t, "trees.tree_offsets", path)?;
    let outputs = vec1_i64(t, "trees.tree_output", path)?;
    let feature = vec1_i64(t, "trees.feature", path)?;
    let threshold = vec1_f64(t, "trees.threshold", path)?;
    let missing_left = vec1_i64(t, "trees.missing_left", path)?;
    let is_cat = vec1_i64(t, "trees.is_categorical", path)?;
    let left = vec1_i64(t, "trees.left", path)?;
    let right = vec1_i64(t, "trees.right", path)?;
    let value = vec1_f64(t, "trees.value", path)?;
    let cats = get(t, "trees.categories_left", path)?
        .to_dtype(DType::U32)?
        .flatten_all()?
        .to_vec1::<u32>()?;
    let base = vec1_f64(t, "trees.base_score", path)?;
    let feature_gain = vec1_f64(t, "trees.feature_gain", path).unwrap_or_default();
    let n = feature.len();
    if [
        threshold.len(),
        missing_left.len(),
        is_cat.len(),
        left.len(),
        right.len(),
        value.len(),
    ]
    .iter()
    .any(|&l| l != n)
        || cats.len() != n * 8
        || base.len() != k
        || outputs.len() + 1 != offsets.len()
    {
        return Err(damaged());
    }
    let mut trees: Vec<Vec<Tree>> = Vec::new();
    for (ti, w) in offsets.windows(2).enumerate() {
        let (start, end) = (w[0] as usize, w[1] as usize);
        if start > end || end > n {
            return Err(damaged());
        }
        let mut nodes = Vec::with_capacity(end - start);
        for i in start..end {
            let leaf = feature[i] < 0;
            let node_count = end - start;
            let child = |c: i64| -> Result<usize> {
                if leaf {
                    return Ok(0);
                }
                usize::try_from(c)
                    .ok()
                    .filter(|&c| c > 0 && c < node_count)
                    .ok_or_else(damaged)
            };
            let categories_left = (is_cat[i] != 0).then(|| {
                let mut set = [0u64; 4];
                for (wi, s) in set.iter_mut().enumerate() {
                    let lo = cats.get(i * 8 + wi * 2).copied().unwrap_or(0) as u64;
                    let hi = cats.get(i * 8 + wi * 2 + 1).copied().unwrap_or(0) as u64;
                    *s = lo | (hi << 32);
                }
                set
            });
            nodes.push(Node {
                feature: feature[i].max(0) as usize,
                threshold: threshold[i],
                bin_threshold: 0,
                missing_left: missing_left[i] != 0,
                categories_left,
                left: child(left[i])?,
                right: child(right[i])?,
                value: value[i],
                gain: 0.0,
                count: 0,
            });
        }
        let j = outputs.get(ti).copied().unwrap_or(0) as usize;
        if j >= k {
            return Err(damaged());
        }
        if j == 0 {
            trees.push(Vec::with_capacity(k));
        }
        trees.last_mut().ok_or_else(damaged)?.push(Tree { nodes });
    }
    Ok((base, trees, feature_gain))
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
