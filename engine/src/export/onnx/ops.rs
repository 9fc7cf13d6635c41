//! Small pieces many ONNX graphs share: int64 constants, static `Slice` / `Reshape`, casts,
//! a model folder's tensors read by name ([`Weights`]), the last non-zero sample of a window
//! ([`trimmed_end`], the engine's `trim_padding`), and a feature head's `Gemm` layers
//! ([`head_layers`]).

use crate::error::{Error, Result};
use crate::export::coreml::backbone::values;
use crate::export::onnx::graph::{self, Graph};
use crate::export::onnx::proto::data_type;
use crate::nets::head::Head;
use candle_core::{DType, Tensor};
use std::collections::HashMap;
use std::path::Path;

/// A model folder's (or weights file's) tensors, read by name; errors name the file.
pub struct Weights<'a> {
    pub tensors: &'a HashMap<String, Tensor>,
    pub path: &'a Path,
}

impl Weights<'_> {
    pub fn tensor(&self, name: &str) -> Result<&Tensor> {
        self.tensors.get(name).ok_or_else(|| {
            Error::model(
                format!("missing tensor `{name}`; re-export the model"),
                self.path,
            )
        })
    }

    pub fn values(&self, name: &str) -> Result<Vec<f32>> {
        values(&self.tensor(name)?.to_dtype(DType::F32)?)
    }

    pub fn dims(&self, name: &str) -> Result<Vec<usize>> {
        Ok(self.tensor(name)?.dims().to_vec())
    }

    /// The tensor as a float initializer of its own shape, named `name`.
    pub fn initializer(&self, g: &mut Graph, name: &str) -> Result<String> {
        let dims: Vec<i64> = self.dims(name)?.iter().map(|&d| d as i64).collect();
        Ok(g.floats(name, &dims, &self.values(name)?))
    }
}

/// An int64 vector constant.
pub fn i64s(g: &mut Graph, name: &str, v: &[i64]) -> String {
    g.ints(name, &[v.len() as i64], v)
}

/// `Slice` of `x` along `axis` from `start` to `end`.
pub fn slice(g: &mut Graph, x: &str, axis: i64, start: i64, end: i64) -> String {
    let s = i64s(g, "slice.start", &[start]);
    let e = i64s(g, "slice.end", &[end]);
    let a = i64s(g, "slice.axis", &[axis]);
    g.node("Slice", &[x, &s, &e, &a], vec![])
}

/// `Slice` of `x` along `axis` from 0 to the int64 `[1]` value `end` (computed in the graph).
pub fn slice_to(g: &mut Graph, x: &str, axis: i64, end: &str) -> String {
    let s = i64s(g, "slice.start", &[0]);
    let a = i64s(g, "slice.axis", &[axis]);
    g.node("Slice", &[x, &s, end, &a], vec![])
}

/// `Reshape` of `x` to `shape` (0 keeps a dimension, −1 infers one).
pub fn reshape(g: &mut Graph, x: &str, shape: &[i64]) -> String {
    let s = i64s(g, "shape", shape);
    g.node("Reshape", &[x, &s], vec![])
}

/// `Cast` of `x` to `to` (a `data_type`).
pub fn cast(g: &mut Graph, x: &str, to: i32) -> String {
    g.node("Cast", &[x], vec![graph::int("to", i64::from(to))])
}

/// A float scalar `x` (an exact whole number) as an int64 `[1]` for `Slice` bounds.
pub fn to_index(g: &mut Graph, x: &str) -> String {
    let i = cast(g, x, data_type::INT64);
    reshape(g, &i, &[1])
}

/// The engine's `trim_padding` on `x` `[1, n]`: the float scalar `max(last non-zero sample + 1,
/// min)`, at most `n` — where a window zero-padded at the end stops sounding.
pub fn trimmed_end(g: &mut Graph, x: &str, n: usize, min: usize) -> String {
    let zero = g.floats("zero", &[], &[0.0]);
    let eq = g.node("Equal", &[x, &zero], vec![]);
    let ne = g.node("Not", &[&eq], vec![]);
    let nonzero = cast(g, &ne, data_type::FLOAT);
    let positions: Vec<f32> = (1..=n).map(|i| i as f32).collect();
    let positions = g.floats("trim.positions", &[1, n as i64], &positions);
    let ends = g.node("Mul", &[&nonzero, &positions], vec![]);
    let end = g.node(
        "ReduceMax",
        &[&ends],
        vec![graph::ints("axes", vec![0, 1]), graph::int("keepdims", 0)],
    );
    let lo = g.floats("trim.min", &[], &[min.min(n) as f32]);
    g.node("Max", &[&end, &lo], vec![])
}

/// A feature head's `Gemm` layers (ReLU between) on `features` `[N, in]`; the logits.
pub fn head_layers(g: &mut Graph, head: &Head, features: &str) -> Result<String> {
    let names = Head::layer_names(&head.kind);
    let last = head.layers.len().saturating_sub(1);
    let mut x = features.to_string();
    for (i, ((wt, bias), name)) in head.layers.iter().zip(names).enumerate() {
        let (out_dim, in_dim) = wt.as_tensor().dims2()?;
        let wn = g.floats(
            &format!("head.{name}.weight"),
            &[out_dim as i64, in_dim as i64],
            &values(wt.as_tensor())?,
        );
        let bn = g.floats(
            &format!("head.{name}.bias"),
            &[out_dim as i64],
            &values(bias.as_tensor())?,
        );
        x = g.node("Gemm", &[&x, &wn, &bn], vec![graph::int("transB", 1)]);
        if i < last {
            x = g.node("Relu", &[&x], vec![]);
        }
    }
    Ok(x)
}

/// `Softmax` of `logits` `[N, labels]` as the output `probabilities`, and the output `label`
/// (the string of the most probable one, `[N]`).
pub fn softmax_and_label(g: &mut Graph, logits: &str, labels: &[String]) {
    g.node_to(
        "Softmax",
        &[logits],
        "probabilities",
        vec![graph::int("axis", 1)],
    );
    let index = g.node(
        "ArgMax",
        &["probabilities"],
        vec![graph::int("axis", 1), graph::int("keepdims", 0)],
    );
    let names = g.strings("labels", labels);
    g.node_to(
        "Gather",
        &[&names, &index],
        "label",
        vec![graph::int("axis", 0)],
    );
}
