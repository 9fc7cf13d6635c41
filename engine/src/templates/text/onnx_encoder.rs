//! The text classifier's sentence-encoder (`transfer`) model as one ONNX graph: the BERT encoder
//! (all-MiniLM-L6-v2) + mean pooling + L2 normalization + the head, as `nets::text_encoder` and
//! candle-transformers' `BertModel` compute it. The tokenizer stays outside the graph, as for any
//! BERT ONNX model: inputs `input_ids` and `attention_mask`, int64 `[N, L]` — the Hugging Face
//! tokenizer's ids and mask (`tokenizer.json`, written next to the `.onnx` as
//! `<model>.tokenizer.json`; `[CLS]` … `[SEP]`, at most 256 tokens, rows of a batch padded at
//! the end with mask 0). Token types are all 0 (one sentence per row).
//!
//! In the graph: word embeddings (`Gather`) + token-type row 0 + the positional rows `[0, L)`,
//! `LayerNormalization`; the additive attention mask `(1 − mask) · f32::MIN` as candle and
//! transformers build it; per layer (post-norm) self-attention, `+`, layer norm, the GELU MLP,
//! `+`, layer norm (`export::onnx::transformer`); the mean of the rows over the mask (count at
//! least 1e-9), divided by its L2 norm (at least 1e-12); the head's `Gemm`s and `Softmax`.

use crate::error::{Error, Result};
use crate::export::onnx::graph;
use crate::export::onnx::graph::{Dim, Graph};
use crate::export::onnx::ops::{
    Weights, cast, head_layers, i64s, slice, slice_to, softmax_and_label,
};
use crate::export::onnx::proto::data_type;
use crate::export::onnx::transformer::{AttentionNames, gelu, layer_norm, linear, self_attention};
use crate::nets::head::Head;
use std::path::Path;

/// Name of the token-id input.
pub const INPUT_IDS: &str = "input_ids";
/// Name of the attention-mask input.
pub const ATTENTION_MASK: &str = "attention_mask";

/// What the graph needs of the encoder's `config.json`.
pub struct BertShape {
    pub layers: usize,
    pub heads: usize,
    pub hidden: usize,
    pub layer_norm_eps: f32,
}

impl BertShape {
    /// Reads a BERT `config.json` (exact GELU only: what candle runs for `"gelu"`).
    pub fn from_config(config: &serde_json::Value, path: &Path) -> Result<Self> {
        let int = |k: &str| {
            config[k]
                .as_u64()
                .map(|v| v as usize)
                .ok_or_else(|| Error::model(format!("encoder config has no `{k}`"), path))
        };
        let shape = Self {
            layers: int("num_hidden_layers")?,
            heads: int("num_attention_heads")?,
            hidden: int("hidden_size")?,
            layer_norm_eps: config["layer_norm_eps"].as_f64().unwrap_or(1e-12) as f32,
        };
        let act = config["hidden_act"].as_str().unwrap_or("gelu");
        if act != "gelu" || shape.heads == 0 || shape.hidden % shape.heads != 0 {
            return Err(Error::Unsupported(format!(
                "ONNX export of this sentence encoder: hidden_act `{act}`, {} heads of width {} (expected exact GELU and whole heads): {}",
                shape.heads,
                shape.hidden,
                path.display()
            )));
        }
        Ok(shape)
    }
}

/// Writes inputs, the encoder, pooling, `head`, and the outputs `probabilities` / `label`.
pub fn build(
    g: &mut Graph,
    w: &Weights,
    shape: &BertShape,
    head: &Head,
    labels: &[String],
) -> Result<()> {
    let dims = [Dim::Named("N"), Dim::Named("L")];
    g.input(
        INPUT_IDS,
        data_type::INT64,
        &dims,
        "token ids of the Hugging Face tokenizer (tokenizer.json), [CLS] … [SEP], at most 256",
    );
    g.input(
        ATTENTION_MASK,
        data_type::INT64,
        &dims,
        "1 for a token, 0 for padding at the end of a row",
    );
    let prefix = if w
        .tensors
        .contains_key("bert.embeddings.word_embeddings.weight")
    {
        "bert."
    } else {
        ""
    };
    let p = |k: &str| format!("{prefix}{k}");
    // Embeddings.
    let words = w.initializer(g, &p("embeddings.word_embeddings.weight"))?;
    let x = g.node("Gather", &[&words, INPUT_IDS], vec![graph::int("axis", 0)]);
    let types = w.initializer(g, &p("embeddings.token_type_embeddings.weight"))?;
    let type0 = slice(g, &types, 0, 0, 1);
    let x = g.node("Add", &[&x, &type0], vec![]);
    let positions = w.initializer(g, &p("embeddings.position_embeddings.weight"))?;
    let ids_shape = g.node("Shape", &[INPUT_IDS], vec![]);
    let len = slice(g, &ids_shape, 0, 1, 2);
    let positions = slice_to(g, &positions, 0, &len);
    let x = g.node("Add", &[&x, &positions], vec![]);
    let mut h = layer_norm(g, w, &p("embeddings.LayerNorm"), &x, shape.layer_norm_eps)?;
    // Mask: float [N, L], additive [N, 1, 1, L].
    let mask = cast(g, ATTENTION_MASK, data_type::FLOAT);
    let one = g.floats("one", &[], &[1.0]);
    let inverse = g.node("Sub", &[&one, &mask], vec![]);
    let lowest = g.floats("mask.lowest", &[], &[f32::MIN]);
    let additive = g.node("Mul", &[&inverse, &lowest], vec![]);
    let axes = i64s(g, "axes", &[1, 2]);
    let additive = g.node("Unsqueeze", &[&additive, &axes], vec![]);
    let head_dim = shape.hidden / shape.heads;
    for i in 0..shape.layers {
        let l = |k: &str| p(&format!("encoder.layer.{i}.{k}"));
        let names = AttentionNames {
            query: &l("attention.self.query"),
            key: &l("attention.self.key"),
            value: &l("attention.self.value"),
            out: &l("attention.output.dense"),
        };
        let a = self_attention(g, w, &names, &h, shape.heads, head_dim, Some(&additive))?;
        let a = g.node("Add", &[&a, &h], vec![]);
        h = layer_norm(
            g,
            w,
            &l("attention.output.LayerNorm"),
            &a,
            shape.layer_norm_eps,
        )?;
        let m = linear(g, w, &l("intermediate.dense"), &h, false)?;
        let m = gelu(g, &m);
        let m = linear(g, w, &l("output.dense"), &m, false)?;
        let m = g.node("Add", &[&m, &h], vec![]);
        h = layer_norm(g, w, &l("output.LayerNorm"), &m, shape.layer_norm_eps)?;
    }
    // Mean over real tokens, then L2 normalization.
    let axes = i64s(g, "axes", &[2]);
    let m = g.node("Unsqueeze", &[&mask, &axes], vec![]);
    let masked = g.node("Mul", &[&h, &m], vec![]);
    let axis1 = i64s(g, "axes", &[1]);
    let keep0 = || vec![graph::int("keepdims", 0)];
    let sum = g.node("ReduceSum", &[&masked, &axis1], keep0());
    let count = g.node("ReduceSum", &[&m, &axis1], keep0());
    let tiny = g.floats("pool.floor", &[], &[1e-9]);
    let count = g.node("Max", &[&count, &tiny], vec![]);
    let mean = g.node("Div", &[&sum, &count], vec![]);
    let sq = g.node(
        "ReduceSumSquare",
        &[&mean],
        vec![graph::ints("axes", vec![1]), graph::int("keepdims", 1)],
    );
    let norm = g.node("Sqrt", &[&sq], vec![]);
    let tiny = g.floats("norm.floor", &[], &[1e-12]);
    let norm = g.node("Max", &[&norm, &tiny], vec![]);
    let embedding = g.node("Div", &[&mean, &norm], vec![]);
    let logits = head_layers(g, head, &embedding)?;
    softmax_and_label(g, &logits, labels);
    let k = labels.len() as i64;
    g.output(
        "probabilities",
        data_type::FLOAT,
        &[Dim::Named("N"), Dim::Fixed(k)],
        "one probability per label, in `labels` order",
    );
    g.output(
        "label",
        data_type::STRING,
        &[Dim::Named("N")],
        "the most probable label",
    );
    Ok(())
}
