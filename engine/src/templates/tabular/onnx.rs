//! The table models (tabular classifier and regressor) as one ONNX graph with one input,
//! `features`: float32 `[N, F]`, one column per feature in the model's column order
//! (`metadata_props["columns"]` lists them with their kind and levels):
//!
//! | column kind | value |
//! |---|---|
//! | numeric | the number; NaN when the cell is missing or unreadable |
//! | boolean | 1 for true/yes/t/y, 0 for false/no/f/n, NaN when missing |
//! | categorical | the level's code: its position in the column's `levels`; NaN or `len(levels)` for missing, unseen or rare |
//!
//! Categorical NaN becomes the "other or missing" code first (`Where(IsNaN)`). Then:
//! - boosted trees / random forests: one `ai.onnx.ml` `TreeEnsembleRegressor`
//!   (`onnx_trees.rs`) gives the raw scores; boosting adds `Sigmoid` (binary, `[1 − p, p]`) or
//!   `Softmax`; a forest classifier's averaged class frequencies are clipped to `[1 − p, p]`
//!   (two classes) or divided by their total (uniform when it is 0), as the engine does;
//! - linear models and MLPs: the engine's design in plain operators — each number's training
//!   median for NaN, numbers clipped into their training range (`Max`/`Min`), level codes
//!   one-hot (`Relu(1 − |code − level|)`, exact on whole codes) — then `Gemm` + `Softmax`
//!   (linear), or standardization and `Gemm`/`Relu` layers (MLP).
//!
//! - a weighted ensemble: every member's graph as above (its own initializers), each member's
//!   probabilities (or value) times its weight, then one `Sum`.
//!
//! Outputs: a classifier writes `probabilities` (float `[N, classes]`, in `labels` order) and
//! `label` (string `[N]`, the most probable); a regressor writes `value` (float `[N, 1]`).

use crate::data::table_schema::{ColumnKind, FeatureColumn};
use crate::error::{Error, Result};
use crate::export::onnx::graph::{self, Dim, Graph};
use crate::export::onnx::proto::data_type;
use crate::export::onnx::{self, Exported, Options, meta};
use crate::learners::forest::ForestKind;
use crate::learners::gbt::Objective;
use crate::learners::mlp::Mlp;
use crate::templates::tabular::data::TargetKind;
use crate::templates::tabular::model::{Fitted, TabularModel};
use crate::templates::tabular::onnx_trees;
use std::collections::BTreeMap;
use std::path::Path;

/// Name of the graph input.
pub const INPUT: &str = "features";

/// Exports the table model in `model_dir` to `out`.
pub fn export(model_dir: &Path, out: &Path, options: &Options) -> Result<Exported> {
    let m = TabularModel::load(model_dir)?;
    let features = &m.schema.features;
    let nf = features.len();
    let mut g = Graph::new();
    g.input(
        INPUT,
        data_type::FLOAT,
        &[Dim::Named("N"), Dim::Fixed(nf as i64)],
        "one column per feature (metadata `columns`): numbers (NaN = missing), booleans 1/0/NaN, categorical level codes (NaN or len(levels) = missing or other)",
    );
    // Categorical NaN → the "other or missing" code; numbers keep NaN.
    let fill: Vec<f32> = features
        .iter()
        .map(|f| match f.kind {
            ColumnKind::Categorical => f.missing_code() as f32,
            _ => f32::NAN,
        })
        .collect();
    let x = where_nan(&mut g, INPUT, &fill, nf);
    let classes = m.labels.len();
    let (scores, title) = scores_of(&mut g, m.kind, &m.fitted, &x, features, true)?;
    match scores {
        Scores::Value(v) => {
            g.node_to("Identity", &[&v], "value", vec![]);
            g.output(
                "value",
                data_type::FLOAT,
                &[Dim::Named("N"), Dim::Fixed(1)],
                "predicted value",
            );
        }
        Scores::Probabilities(p) => {
            if classes < 2 {
                return Err(mismatch("classifier"));
            }
            g.node_to("Identity", &[&p], "probabilities", vec![]);
            label_output(&mut g, "probabilities", &m.labels);
            g.output(
                "probabilities",
                data_type::FLOAT,
                &[Dim::Named("N"), Dim::Fixed(classes as i64)],
                "class probabilities in `labels` order",
            );
        }
    }

    let columns: Vec<serde_json::Value> = features
        .iter()
        .map(|f| {
            let kind = match f.kind {
                ColumnKind::Numeric => "numeric",
                ColumnKind::Boolean => "boolean",
                ColumnKind::Categorical => "categorical",
            };
            serde_json::json!({"name": f.name, "kind": kind, "levels": f.categories})
        })
        .collect();
    let mut extra = BTreeMap::new();
    extra.insert(
        "columns".to_string(),
        serde_json::to_string(&columns).unwrap_or_default(),
    );
    extra.insert("target".into(), m.target.clone());
    extra.insert("algorithm".into(), m.algorithm.clone());
    extra.insert(
        "preprocessing".into(),
        "input `features` float32 [N, F] in `columns` order: numbers and booleans (1/0) as they are, NaN when missing; a categorical cell as the position of its text in the column's `levels`, NaN (or len(levels)) when missing or not a level".into(),
    );
    let description = match m.kind {
        TargetKind::Classification => format!(
            "Table classifier ({title}) predicting `{}` ({classes} labels) from {nf} columns, trained with Lathe.",
            m.target
        ),
        TargetKind::Regression => format!(
            "Table regressor ({title}) predicting `{}` from {nf} columns, trained with Lathe.",
            m.target
        ),
    };
    let task = match m.kind {
        TargetKind::Classification => "tabular-classification",
        TargetKind::Regression => "tabular-regression",
    };
    let props = meta::props(
        model_dir,
        task,
        &m.labels,
        description.clone(),
        options,
        extra,
    )?;
    let model = g.finish("lathe_tabular", &description, props);
    onnx::write(out, &model)
}

/// The graph of one model from the filled features `x`: its probabilities or value and its
/// title; an ensemble (only at the `top`) sums its members' graphs times their weights.
fn scores_of(
    g: &mut Graph,
    kind: TargetKind,
    fitted: &Fitted,
    x: &str,
    features: &[FeatureColumn],
    top: bool,
) -> Result<(Scores, &'static str)> {
    Ok(match fitted {
        Fitted::Trees(gbt) => {
            let outputs = gbt.objective.outputs();
            let raw =
                onnx_trees::ensemble(g, &x, &gbt.trees, outputs, &gbt.base, &domains(features))?;
            let scores = match gbt.objective {
                Objective::Regression => Scores::Value(raw),
                Objective::Binary => {
                    let p = g.node("Sigmoid", &[&raw], vec![]);
                    Scores::Probabilities(two_classes(g, &p))
                }
                Objective::Multiclass { .. } => {
                    Scores::Probabilities(g.node("Softmax", &[&raw], vec![graph::int("axis", 1)]))
                }
            };
            (scores, "gradient-boosted trees")
        }
        Fitted::Forest(f) => {
            let outputs = f.kind.outputs();
            let raw = onnx_trees::ensemble(g, &x, &f.trees, outputs, &[], &domains(features))?;
            let scores = match f.kind {
                ForestKind::Regression => Scores::Value(raw),
                ForestKind::Classification { .. } if outputs == 1 => {
                    let (zero, one) = (g.floats("zero", &[], &[0.0]), g.floats("one", &[], &[1.0]));
                    let p = g.node("Clip", &[&raw, &zero, &one], vec![]);
                    Scores::Probabilities(two_classes(g, &p))
                }
                ForestKind::Classification { .. } => {
                    Scores::Probabilities(forest_frequencies(g, &raw, outputs))
                }
            };
            (scores, "random forest")
        }
        Fitted::Linear(glm) => {
            let (design, dim) = design(g, features, &x);
            if dim != glm.dim {
                return Err(mismatch("linear"));
            }
            let w: Vec<f32> = glm.weight.iter().map(|&v| v as f32).collect();
            let b: Vec<f32> = glm.bias.iter().map(|&v| v as f32).collect();
            let k = glm.outputs();
            if w.len() != k * dim || b.len() != k {
                return Err(mismatch("linear"));
            }
            let w = g.floats("linear.weight", &[k as i64, dim as i64], &w);
            let b = g.floats("linear.bias", &[k as i64], &b);
            let raw = g.node("Gemm", &[&design, &w, &b], vec![graph::int("transB", 1)]);
            let scores = match kind {
                TargetKind::Regression => Scores::Value(raw),
                TargetKind::Classification => {
                    Scores::Probabilities(g.node("Softmax", &[&raw], vec![graph::int("axis", 1)]))
                }
            };
            let title = match kind {
                TargetKind::Regression => "ridge regression",
                TargetKind::Classification => "logistic regression",
            };
            (scores, title)
        }
        Fitted::Ensemble(e) if top => {
            // Each member's probabilities (or values) × its weight, then one Sum.
            let mut weighted = Vec::with_capacity(e.members.len());
            for member in &e.members {
                let (member_scores, _) = scores_of(g, kind, &member.fitted, x, features, false)?;
                let s = match member_scores {
                    Scores::Value(v) | Scores::Probabilities(v) => v,
                };
                let w = g.floats("ensemble.weight", &[], &[member.weight as f32]);
                weighted.push(g.node("Mul", &[&s, &w], vec![]));
            }
            let refs: Vec<&str> = weighted.iter().map(String::as_str).collect();
            let sum = g.node("Sum", &refs, vec![]);
            let scores = match kind {
                TargetKind::Regression => Scores::Value(sum),
                TargetKind::Classification => Scores::Probabilities(sum),
            };
            (scores, "weighted ensemble")
        }
        Fitted::Ensemble(_) => return Err(mismatch("ensemble member")),
        Fitted::Mlp(mlp) => {
            let (design, dim) = design(g, features, &x);
            let raw = mlp_layers(g, mlp, &design, dim)?;
            let scores = match kind {
                TargetKind::Regression => {
                    let std = g.floats("target.std", &[], &[mlp.target_std as f32]);
                    let mean = g.floats("target.mean", &[], &[mlp.target_mean as f32]);
                    let t = g.node("Mul", &[&raw, &std], vec![]);
                    Scores::Value(g.node("Add", &[&t, &mean], vec![]))
                }
                TargetKind::Classification => {
                    Scores::Probabilities(g.node("Softmax", &[&raw], vec![graph::int("axis", 1)]))
                }
            };
            (scores, "MLP")
        }
    })
}

/// What the model computes before its outputs.
enum Scores {
    /// Float `[N, 1]`.
    Value(String),
    /// Float `[N, classes]`.
    Probabilities(String),
}

fn mismatch(what: &str) -> Error {
    Error::Unsupported(format!(
        "ONNX export: the {what} weights do not match the feature pipeline (a bug); retrain the model"
    ))
}

/// Per feature: the "other or missing" code of a categorical feature.
fn domains(features: &[FeatureColumn]) -> Vec<Option<usize>> {
    features
        .iter()
        .map(|f| (f.kind == ColumnKind::Categorical).then(|| f.missing_code()))
        .collect()
}

/// `Where(IsNaN(x), fill, x)` with `fill` per column.
fn where_nan(g: &mut Graph, x: &str, fill: &[f32], nf: usize) -> String {
    let fill = g.floats("fill", &[nf as i64], fill);
    let nan = g.node("IsNaN", &[x], vec![]);
    g.node("Where", &[&nan, &fill, x], vec![])
}

/// `[1 − p, p]` from p `[N, 1]`.
fn two_classes(g: &mut Graph, p: &str) -> String {
    let one = g.floats("one", &[], &[1.0]);
    let q = g.node("Sub", &[&one, p], vec![]);
    g.node("Concat", &[&q, p], vec![graph::int("axis", 1)])
}

/// A forest's class frequencies `[N, k]` as the engine's probabilities: clipped at 0, over
/// their total, uniform where the total is 0.
fn forest_frequencies(g: &mut Graph, raw: &str, k: usize) -> String {
    let zero = g.floats("zero", &[], &[0.0]);
    let c = g.node("Relu", &[raw], vec![]);
    let axes = g.ints("axes", &[1], &[1]);
    let total = g.node("ReduceSum", &[&c, &axes], vec![graph::int("keepdims", 1)]);
    let positive = g.node("Greater", &[&total, &zero], vec![]);
    let share = g.node("Div", &[&c, &total], vec![]);
    let uniform = g.floats("uniform", &[k as i64], &vec![1.0 / k as f32; k]);
    g.node("Where", &[&positive, &share, &uniform], vec![])
}

/// `ArgMax` over the probabilities, then the label text: output `label` (string `[N]`).
fn label_output(g: &mut Graph, probabilities: &str, labels: &[String]) {
    let index = g.node(
        "ArgMax",
        &[probabilities],
        vec![graph::int("axis", 1), graph::int("keepdims", 0)],
    );
    let names = g.strings("labels", labels);
    g.node_to(
        "Gather",
        &[&names, &index],
        "label",
        vec![graph::int("axis", 0)],
    );
    g.output(
        "label",
        data_type::STRING,
        &[Dim::Named("N")],
        "the most probable label",
    );
}

/// The engine's design (`glm::design`) from `x` (categorical codes already filled): numbers
/// with the median for NaN and clipped into the training range, levels one-hot. Returns it
/// (float `[N, dim]`) and `dim`.
fn design(g: &mut Graph, features: &[FeatureColumn], x: &str) -> (String, usize) {
    let nf = features.len();
    let median: Vec<f32> = features
        .iter()
        .map(|f| match f.kind {
            ColumnKind::Categorical => f.missing_code() as f32,
            _ => f.median as f32,
        })
        .collect();
    let imputed = where_nan(g, x, &median, nf);
    let (lo, hi): (Vec<f32>, Vec<f32>) = features
        .iter()
        .map(|f| match f.kind {
            ColumnKind::Categorical => (0.0, f.missing_code() as f32),
            _ => (f.min as f32, f.max.max(f.min) as f32),
        })
        .unzip();
    let lo = g.floats("clip.lo", &[nf as i64], &lo);
    let hi = g.floats("clip.hi", &[nf as i64], &hi);
    let t = g.node("Max", &[&imputed, &lo], vec![]);
    let clipped = g.node("Min", &[&t, &hi], vec![]);

    let mut offsets = Vec::with_capacity(nf);
    let mut dim = 0;
    for f in features {
        offsets.push(dim);
        dim += match f.kind {
            ColumnKind::Categorical => f.categories.len() + 1,
            _ => 1,
        };
    }
    // (feature, level, design column) of every one-hot level.
    let levels: Vec<(usize, usize, usize)> = features
        .iter()
        .zip(&offsets)
        .enumerate()
        .filter(|(_, (f, _))| f.kind == ColumnKind::Categorical)
        .flat_map(|(i, (f, &off))| (0..=f.categories.len()).map(move |l| (i, l, off + l)))
        .collect();
    let mut place_numbers = vec![0f32; nf * dim];
    for (i, (f, &off)) in features.iter().zip(&offsets).enumerate() {
        if f.kind != ColumnKind::Categorical {
            place_numbers[i * dim + off] = 1.0;
        }
    }
    let p = g.floats("design.numbers", &[nf as i64, dim as i64], &place_numbers);
    let numbers = g.node("MatMul", &[&clipped, &p], vec![]);
    if levels.is_empty() {
        return (numbers, dim);
    }
    let nl = levels.len();
    let mut expand = vec![0f32; nf * nl];
    let mut shift = vec![0f32; nl];
    let mut place_levels = vec![0f32; nl * dim];
    for (r, &(f, l, col)) in levels.iter().enumerate() {
        expand[f * nl + r] = 1.0;
        shift[r] = -(l as f32);
        place_levels[r * dim + col] = 1.0;
    }
    let e = g.floats("onehot.expand", &[nf as i64, nl as i64], &expand);
    let s = g.floats("onehot.shift", &[nl as i64], &shift);
    let one = g.floats("one", &[], &[1.0]);
    let t = g.node("MatMul", &[&clipped, &e], vec![]);
    let t = g.node("Add", &[&t, &s], vec![]);
    let t = g.node("Abs", &[&t], vec![]);
    let t = g.node("Sub", &[&one, &t], vec![]);
    let onehot = g.node("Relu", &[&t], vec![]);
    let p = g.floats("design.levels", &[nl as i64, dim as i64], &place_levels);
    let by_level = g.node("MatMul", &[&onehot, &p], vec![]);
    (g.node("Add", &[&numbers, &by_level], vec![]), dim)
}

/// The MLP over the design: standardized, then `Gemm` (+ `Relu` but after the last layer).
fn mlp_layers(g: &mut Graph, mlp: &Mlp, design: &str, dim: usize) -> Result<String> {
    if dim != mlp.in_dim
        || mlp.input_mean.len() != dim
        || mlp.input_std.len() != dim
        || mlp.layers.is_empty()
    {
        return Err(mismatch("MLP"));
    }
    let mean = g.floats("mlp.input_mean", &[dim as i64], &mlp.input_mean);
    let std = g.floats("mlp.input_std", &[dim as i64], &mlp.input_std);
    let t = g.node("Sub", &[design, &mean], vec![]);
    let mut h = g.node("Div", &[&t, &std], vec![]);
    let mut fan_in = dim;
    let last = mlp.layers.len() - 1;
    for (i, (w, b)) in mlp.layers.iter().enumerate() {
        let out = b.len();
        if w.len() != out * fan_in {
            return Err(mismatch("MLP"));
        }
        let wn = g.floats(
            &format!("mlp.{}.weight", 2 * i),
            &[out as i64, fan_in as i64],
            w,
        );
        let bn = g.floats(&format!("mlp.{}.bias", 2 * i), &[out as i64], b);
        h = g.node("Gemm", &[&h, &wn, &bn], vec![graph::int("transB", 1)]);
        if i < last {
            h = g.node("Relu", &[&h], vec![]);
        }
        fan_in = out;
    }
    Ok(h)
}
