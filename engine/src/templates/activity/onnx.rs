//! The activity classifier as one ONNX graph over prediction windows. Input `window`: float32
//! `[N, prediction_window, channels]` — one window per row (`N` = 1 for a single window, the
//! layout of the Core ML export's `windowData`): the samples in time order, one row per sample,
//! the sensor columns in the order of the metadata's `columns`, raw sensor units. Outputs
//! `probabilities` `[N, labels]` and `label` (string `[N]`). Cutting a recording into windows
//! every `window_hop` samples (the last one ending at the last sample) and averaging their
//! probabilities for the session stays in app code, as for Core ML.
//!
//! - `cnn`: the per-channel standardization (`(x − mean) · inv_std`), the three 1-D
//!   convolutions (kernel 5, padding 2, strides 1, 2, 2) each followed by `Relu`, the mean over
//!   time, the linear classifier and `Softmax` — the engine's `ActivityCnn` in f32;
//! - `boosted_trees`: the per-window statistics of `features.rs` computed in the graph in
//!   float64 as the engine computes them (per channel, then per x/y/z magnitude
//!   `√(x² + y² + z²)`: mean, population standard deviation `√max(E[x²] − mean², 0)`, minimum,
//!   maximum, energy `E[x²]`, lag-1 autocorrelation `Σ(x[t] − m)(x[t+1] − m) / (n · var)`, 0 when
//!   var ≤ 1e-12), then the trees as one `TreeEnsembleRegressor` over the double features with
//!   double thresholds (`tabular::onnx_trees::ensemble_f64`: every split decides as the
//!   engine's f64 comparison), then `Softmax` (or `Sigmoid` → `[1 − p, p]` for two activities).

use super::cnn::{KERNEL, STRIDES};
use super::features::{self, STATS};
use super::model::{ActivityModel, ActivityNet};
use crate::error::Result;
use crate::export::coreml::backbone::values;
use crate::export::onnx::graph::{self, Dim, Graph};
use crate::export::onnx::proto::data_type;
use crate::export::onnx::{self, Exported, Options, meta};
use crate::learners::gbt::{Gbt, Objective};
use crate::task::Model;
use crate::templates::activity::cnn::ActivityCnn;
use crate::templates::tabular::onnx_trees;
use candle_core::Device;
use std::collections::BTreeMap;
use std::path::Path;

/// Name of the window input.
pub const INPUT: &str = "window";

/// Exports the activity classifier in `model_dir` to `out`.
pub fn export(model_dir: &Path, out: &Path, options: &Options) -> Result<Exported> {
    let model = ActivityModel::load(model_dir, &Device::Cpu)?;
    let (w, c) = (model.window, model.columns.len());
    let labels = model.labels().to_vec();
    let mut g = Graph::new();
    g.input(
        INPUT,
        data_type::FLOAT,
        &[Dim::Named("N"), Dim::Fixed(w as i64), Dim::Fixed(c as i64)],
        "prediction windows: samples in time order, one row per sample, sensor columns in `columns` order, raw units",
    );
    let (probabilities, what) = match &model.net {
        ActivityNet::Cnn(net) => (cnn(&mut g, net, c)?, "1-D CNN"),
        ActivityNet::Trees(gbt) => (
            trees(&mut g, gbt, &model.columns, w)?,
            "per-window statistics + boosted trees",
        ),
    };
    g.node_to("Identity", &[&probabilities], "probabilities", vec![]);
    let index = g.node(
        "ArgMax",
        &["probabilities"],
        vec![graph::int("axis", 1), graph::int("keepdims", 0)],
    );
    let names = g.strings("labels", &labels);
    g.node_to(
        "Gather",
        &[&names, &index],
        "label",
        vec![graph::int("axis", 0)],
    );
    g.output(
        "probabilities",
        data_type::FLOAT,
        &[Dim::Named("N"), Dim::Fixed(labels.len() as i64)],
        "one probability per activity, in `labels` order",
    );
    g.output(
        "label",
        data_type::STRING,
        &[Dim::Named("N")],
        "the most probable activity",
    );

    let description = format!(
        "Activity classifier ({what} over {c} motion-sensor channels) for {} activities, trained with Lathe. Input: windows of {w} samples.",
        labels.len()
    );
    let mut extra = BTreeMap::new();
    extra.insert("algorithm".to_string(), model.algorithm().to_string());
    extra.insert(
        "columns".into(),
        serde_json::to_string(&model.columns).unwrap_or_default(),
    );
    extra.insert("prediction_window".into(), w.to_string());
    extra.insert("window_hop".into(), model.hop.to_string());
    extra.insert("sample_rate".into(), format!("{}", model.sample_rate));
    extra.insert(
        "session_prediction".into(),
        "mean of the window probabilities".into(),
    );
    extra.insert(
        "preprocessing".into(),
        format!(
            "input `window` float32 [N, {w}, {c}]: N prediction windows of {w} samples each, one row per sample in time order, the columns {} in raw sensor units (recorded at {:.1} Hz); for a recording classify windows starting every {} samples (the last one ending at the last sample) and average their probabilities for the session, as Lathe does",
            model.columns.join(", "),
            model.sample_rate,
            model.hop
        ),
    );
    let props = meta::props(
        model_dir,
        super::model::TASK_ID,
        &labels,
        description.clone(),
        options,
        extra,
    )?;
    onnx::write(
        out,
        &g.finish("lathe_activity_classifier", &description, props),
    )
}

/// `[n]` int64 constant.
fn i64s(g: &mut Graph, name: &str, v: &[i64]) -> String {
    g.ints(name, &[v.len() as i64], v)
}

/// The CNN on the window input; the probabilities `[N, labels]`.
fn cnn(g: &mut Graph, net: &ActivityCnn, c: usize) -> Result<String> {
    // [N, W, C] → [N, C, W], standardized per channel.
    let x = g.node(
        "Transpose",
        &[INPUT],
        vec![graph::ints("perm", vec![0, 2, 1])],
    );
    let mean = g.floats("input.mean", &[1, c as i64, 1], &values(&net.mean)?);
    let inv_std = g.floats("input.inv_std", &[1, c as i64, 1], &values(&net.inv_std)?);
    let x = g.node("Sub", &[&x, &mean], vec![]);
    let mut x = g.node("Mul", &[&x, &inv_std], vec![]);
    for (i, (conv, &stride)) in net.convs.iter().zip(&STRIDES).enumerate() {
        let dims: Vec<i64> = conv.weight().dims().iter().map(|&d| d as i64).collect();
        let wt = g.floats(
            &format!("features.{i}.weight"),
            &dims,
            &values(conv.weight())?,
        );
        let mut inputs = vec![x.clone(), wt];
        if let Some(b) = conv.bias() {
            let b = values(b)?;
            inputs.push(g.floats(&format!("features.{i}.bias"), &[b.len() as i64], &b));
        }
        let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
        let pad = (KERNEL / 2) as i64;
        x = g.node(
            "Conv",
            &refs,
            vec![
                graph::ints("kernel_shape", vec![KERNEL as i64]),
                graph::ints("strides", vec![stride as i64]),
                graph::ints("pads", vec![pad, pad]),
            ],
        );
        x = g.node("Relu", &[&x], vec![]);
    }
    let pooled = g.node(
        "ReduceMean",
        &[&x],
        vec![graph::ints("axes", vec![2]), graph::int("keepdims", 0)],
    );
    let weight = net.classifier.weight();
    let (classes, in_dim) = weight.dims2()?;
    let wn = g.floats(
        "classifier.weight",
        &[classes as i64, in_dim as i64],
        &values(weight)?,
    );
    let bias = match net.classifier.bias() {
        Some(b) => values(b)?,
        None => vec![0.0; classes],
    };
    let bn = g.floats("classifier.bias", &[classes as i64], &bias);
    let logits = g.node("Gemm", &[&pooled, &wn, &bn], vec![graph::int("transB", 1)]);
    Ok(g.node("Softmax", &[&logits], vec![graph::int("axis", 1)]))
}

/// The per-window statistics (double `[N, series · 6]`, in `features::feature_names` order) of
/// the window input.
fn statistics(g: &mut Graph, columns: &[String], window: usize) -> String {
    let x = g.node(
        "Cast",
        &[INPUT],
        vec![graph::int("to", data_type::DOUBLE as i64)],
    );
    let doubles = |g: &mut Graph, name: &str, v: f64| -> String {
        let t = crate::export::onnx::proto::TensorProto {
            dims: vec![],
            data_type: data_type::DOUBLE,
            raw_data: v.to_le_bytes().to_vec(),
            ..Default::default()
        };
        let out = g.fresh(name);
        g.node_to("Constant", &[], &out, vec![graph::tensor("value", t)])
    };
    // Series [N, W, S]: every channel, then each x/y/z group's magnitude.
    let mut series = vec![x.clone()];
    for (_, axes) in features::axis_groups(columns) {
        let mut sum: Option<String> = None;
        for a in axes {
            let idx = i64s(g, "magnitude.axis", &[a as i64]);
            let v = g.node("Gather", &[&x, &idx], vec![graph::int("axis", 2)]);
            let sq = g.node("Mul", &[&v, &v], vec![]);
            sum = Some(match sum {
                None => sq,
                Some(s) => g.node("Add", &[&s, &sq], vec![]),
            });
        }
        if let Some(s) = sum {
            series.push(g.node("Sqrt", &[&s], vec![]));
        }
    }
    let refs: Vec<&str> = series.iter().map(String::as_str).collect();
    let s = g.node("Concat", &refs, vec![graph::int("axis", 2)]);
    let n = doubles(g, "window.length", window as f64);
    let axes1 = i64s(g, "axes", &[1]);
    let sum = g.node("ReduceSum", &[&s, &axes1], vec![graph::int("keepdims", 1)]);
    let mean = g.node("Div", &[&sum, &n], vec![]);
    let squares = g.node("Mul", &[&s, &s], vec![]);
    let sq = g.node(
        "ReduceSum",
        &[&squares, &axes1],
        vec![graph::int("keepdims", 1)],
    );
    let energy = g.node("Div", &[&sq, &n], vec![]);
    let m2 = g.node("Mul", &[&mean, &mean], vec![]);
    let var = g.node("Sub", &[&energy, &m2], vec![]);
    let zero = doubles(g, "zero", 0.0);
    let var = g.node("Max", &[&var, &zero], vec![]);
    let std = g.node("Sqrt", &[&var], vec![]);
    let reduce = |g: &mut Graph, op: &str| {
        g.node(
            op,
            &[&s],
            vec![graph::ints("axes", vec![1]), graph::int("keepdims", 1)],
        )
    };
    let lo = reduce(g, "ReduceMin");
    let hi = reduce(g, "ReduceMax");
    // Lag-1 autocorrelation: Σ (x[t] − m)(x[t+1] − m) / (n · var), 0 when var ≤ 1e-12.
    let centered = g.node("Sub", &[&s, &mean], vec![]);
    let (start1, start0) = (i64s(g, "slice.start", &[1]), i64s(g, "slice.start", &[0]));
    let (end_all, end_last) = (
        i64s(g, "slice.end", &[i64::MAX]),
        i64s(g, "slice.end", &[-1]),
    );
    let next = g.node("Slice", &[&centered, &start1, &end_all, &axes1], vec![]);
    let prev = g.node("Slice", &[&centered, &start0, &end_last, &axes1], vec![]);
    let prod = g.node("Mul", &[&prev, &next], vec![]);
    let cov = g.node(
        "ReduceSum",
        &[&prod, &axes1],
        vec![graph::int("keepdims", 1)],
    );
    let nvar = g.node("Mul", &[&n, &var], vec![]);
    let ratio = g.node("Div", &[&cov, &nvar], vec![]);
    let tiny = doubles(g, "autocorr.min_var", 1e-12);
    let spread = g.node("Greater", &[&var, &tiny], vec![]);
    let autocorr = g.node("Where", &[&spread, &ratio, &zero], vec![]);
    // [N, 6, S] → [N, S, 6] → [N, S · 6]: per series its six statistics.
    let parts = [&mean, &std, &lo, &hi, &energy, &autocorr];
    debug_assert_eq!(parts.len(), STATS.len());
    let parts: Vec<&str> = parts.iter().map(|p| p.as_str()).collect();
    let stacked = g.node("Concat", &parts, vec![graph::int("axis", 1)]);
    let per_series = g.node(
        "Transpose",
        &[&stacked],
        vec![graph::ints("perm", vec![0, 2, 1])],
    );
    let count = features::feature_names(columns).len() as i64;
    let shape = i64s(g, "shape", &[-1, count]);
    g.node("Reshape", &[&per_series, &shape], vec![])
}

/// Statistics then the trees; the probabilities `[N, labels]`.
fn trees(g: &mut Graph, gbt: &Gbt, columns: &[String], window: usize) -> Result<String> {
    let x = statistics(g, columns, window);
    let outputs = gbt.objective.outputs();
    let raw = onnx_trees::ensemble_f64(g, &x, &gbt.trees, outputs, &gbt.base)?;
    Ok(match gbt.objective {
        Objective::Binary => {
            let p = g.node("Sigmoid", &[&raw], vec![]);
            let one = g.floats("one", &[], &[1.0]);
            let q = g.node("Sub", &[&one, &p], vec![]);
            g.node("Concat", &[&q, &p], vec![graph::int("axis", 1)])
        }
        Objective::Multiclass { .. } => g.node("Softmax", &[&raw], vec![graph::int("axis", 1)]),
        Objective::Regression => {
            return Err(crate::error::Error::Unsupported(
                "ONNX export: the activity model's trees are a regressor, not a classifier (a damaged model folder); re-train it".into(),
            ));
        }
    })
}
