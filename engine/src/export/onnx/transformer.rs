//! Transformer pieces in ONNX operators, shared by the Whisper encoder (sound) and the BERT
//! sentence encoder (text): a linear layer (`MatMul` by the transposed PyTorch weight + `Add`),
//! `LayerNormalization` (opset 17), the exact GELU (`0.5 · x · (1 + erf(x / √2))`, as candle's
//! `gelu_erf`; opset 17 has no `Gelu`) and multi-head self-attention over `[B, T, D]` with an
//! optional additive mask `[B, 1, 1, T]`. Batch and sequence length stay symbolic (`Reshape`
//! with 0 copies a dimension), so one graph takes any number of rows.

use crate::error::{Error, Result};
use crate::export::onnx::graph::{self, Graph};
use crate::export::onnx::ops::{Weights, reshape};

/// `x · Wᵀ + b` for the PyTorch linear layer `prefix` (`{prefix}.weight` `[out, in]`,
/// `{prefix}.bias` `[out]`, the bias optional when `bias_optional`).
pub fn linear(
    g: &mut Graph,
    w: &Weights,
    prefix: &str,
    x: &str,
    bias_optional: bool,
) -> Result<String> {
    let name = format!("{prefix}.weight");
    let dims = w.dims(&name)?;
    let [out_dim, in_dim] = dims[..] else {
        return Err(Error::model(format!("`{name}` is not a matrix"), w.path));
    };
    let values = w.values(&name)?;
    let mut t = vec![0f32; values.len()];
    for o in 0..out_dim {
        for i in 0..in_dim {
            t[i * out_dim + o] = values[o * in_dim + i];
        }
    }
    let wt = g.floats(&name, &[in_dim as i64, out_dim as i64], &t);
    let y = g.node("MatMul", &[x, &wt], vec![]);
    let bias = format!("{prefix}.bias");
    if bias_optional && !w.tensors.contains_key(&bias) {
        return Ok(y);
    }
    let b = w.initializer(g, &bias)?;
    Ok(g.node("Add", &[&y, &b], vec![]))
}

/// `LayerNormalization` over the last axis with `{prefix}.weight` and `{prefix}.bias`.
pub fn layer_norm(g: &mut Graph, w: &Weights, prefix: &str, x: &str, eps: f32) -> Result<String> {
    let scale = w.initializer(g, &format!("{prefix}.weight"))?;
    let bias = w.initializer(g, &format!("{prefix}.bias"))?;
    Ok(g.node(
        "LayerNormalization",
        &[x, &scale, &bias],
        vec![graph::int("axis", -1), graph::float("epsilon", eps)],
    ))
}

/// The exact GELU `0.5 · x · (1 + erf(x / √2))`.
pub fn gelu(g: &mut Graph, x: &str) -> String {
    let root2 = g.floats("gelu.sqrt2", &[], &[std::f32::consts::SQRT_2]);
    let one = g.floats("one", &[], &[1.0]);
    let half = g.floats("half", &[], &[0.5]);
    let t = g.node("Div", &[x, &root2], vec![]);
    let t = g.node("Erf", &[&t], vec![]);
    let t = g.node("Add", &[&t, &one], vec![]);
    let t = g.node("Mul", &[x, &t], vec![]);
    g.node("Mul", &[&t, &half], vec![])
}

/// The names of one attention block's projections.
pub struct AttentionNames<'a> {
    pub query: &'a str,
    pub key: &'a str,
    pub value: &'a str,
    pub out: &'a str,
}

/// Multi-head self-attention of `x` `[B, T, heads · head_dim]`: `softmax(q kᵀ / √head_dim +
/// mask) v`, heads concatenated, then the output projection. The key projection's bias is
/// optional (Whisper has none).
pub fn self_attention(
    g: &mut Graph,
    w: &Weights,
    names: &AttentionNames,
    x: &str,
    heads: usize,
    head_dim: usize,
    mask: Option<&str>,
) -> Result<String> {
    let (h, d) = (heads as i64, head_dim as i64);
    let q = linear(g, w, names.query, x, false)?;
    let k = linear(g, w, names.key, x, true)?;
    let v = linear(g, w, names.value, x, false)?;
    let split = |g: &mut Graph, y: &str, perm: Vec<i64>| {
        let y = reshape(g, y, &[0, 0, h, d]);
        g.node("Transpose", &[&y], vec![graph::ints("perm", perm)])
    };
    let q = split(g, &q, vec![0, 2, 1, 3]);
    let k = split(g, &k, vec![0, 2, 3, 1]);
    let v = split(g, &v, vec![0, 2, 1, 3]);
    let scale = g.floats("attention.scale", &[], &[1.0 / (head_dim as f32).sqrt()]);
    let scores = g.node("MatMul", &[&q, &k], vec![]);
    let mut scores = g.node("Mul", &[&scores, &scale], vec![]);
    if let Some(m) = mask {
        scores = g.node("Add", &[&scores, m], vec![]);
    }
    let p = g.node("Softmax", &[&scores], vec![graph::int("axis", -1)]);
    let y = g.node("MatMul", &[&p, &v], vec![]);
    let y = g.node(
        "Transpose",
        &[&y],
        vec![graph::ints("perm", vec![0, 2, 1, 3])],
    );
    let y = reshape(g, &y, &[0, 0, h * d]);
    linear(g, w, names.out, &y, false)
}
