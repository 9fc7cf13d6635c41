//! The maxent text classifier as one ONNX graph. Input `counts`: float32 `[N, V]`, the number
//! of times each vocabulary term occurs in the text, at the term's index in `vocabulary`
//! (metadata and the sidecar); ONNX has no tokenizer operator for the engine's word and
//! character n-grams, so counting terms is the app's job, with the rules of the Core ML export
//! (metadata `tokenizer`, sidecar `<model>.tokenizer.json` next to the `.onnx`). In the graph,
//! the engine's TF-IDF row and logistic regression: sublinear TF `Relu(Log(Max(count, 0.3)) +
//! 1)` (0 for an absent term, exactly, `1 + ln(count)` otherwise), × IDF, L2 normalization
//! (0 stays 0), `Gemm`, `Softmax` → `probabilities` `[N, labels]` and `label` (string `[N]`).
//! The sentence-encoder (transfer) model exports as the BERT encoder + pooling + head over token
//! ids (`onnx_encoder`), the Hugging Face `tokenizer.json` written next to the `.onnx`.

use crate::error::{Error, Result};
use crate::export::onnx::graph::{self, Dim, Graph};
use crate::export::onnx::ops::Weights;
use crate::export::onnx::proto::data_type;
use crate::export::onnx::{self, Exported, Options, meta};
use crate::fsutil::write_json;
use crate::nets::head::Head;
use crate::nets::text_encoder::{self, TextEncoder};
use crate::templates::text::coreml::{sidecar_path, tokenizer_rules};
use crate::templates::text::model::{Classifier, TextModel};
use crate::templates::text::onnx_encoder::{self, BertShape};
use candle_core::Device;
use std::collections::BTreeMap;
use std::path::Path;

/// Name of the term-count input.
pub const INPUT: &str = "counts";

/// Counts below this (only 0 occurs) give TF 0: `ln(0.3) + 1 < 0`, cut by the ReLU.
const TF_FLOOR: f32 = 0.3;

/// Exports the text classifier in `model_dir` to `out` (and its tokenizer sidecar).
pub fn export(model_dir: &Path, out: &Path, options: &Options) -> Result<Exported> {
    let model = TextModel::load(model_dir, &Device::Cpu)?;
    let (vectorizer, maxent) = match &model.classifier {
        Classifier::Maxent { vectorizer, model } => (vectorizer, model),
        Classifier::Transfer { encoder, head, .. } => {
            return export_transfer(model_dir, out, options, &model, encoder, head);
        }
    };
    let labels = model.labels.clone();
    let dim = vectorizer.dim();
    let weight = maxent.weight_class_major();
    if maxent.dim != dim
        || vectorizer.idf.len() != dim
        || weight.len() != maxent.classes * dim
        || maxent.bias.len() != maxent.classes
        || maxent.classes != labels.len()
    {
        return Err(Error::Unsupported(
            "ONNX export: the vocabulary, IDF and weights have different sizes (a bug); retrain the model".into(),
        ));
    }
    let mut g = Graph::new();
    g.input(
        INPUT,
        data_type::FLOAT,
        &[Dim::Named("N"), Dim::Fixed(dim as i64)],
        "count of each vocabulary term in the text, in `vocabulary` order (see the tokenizer metadata)",
    );
    let floor = g.floats("tf.floor", &[], &[TF_FLOOR]);
    let one = g.floats("one", &[], &[1.0]);
    let t = g.node("Max", &[INPUT, &floor], vec![]);
    let t = g.node("Log", &[&t], vec![]);
    let t = g.node("Add", &[&t, &one], vec![]);
    let tf = g.node("Relu", &[&t], vec![]);
    let idf = g.floats("idf", &[dim as i64], &vectorizer.idf);
    let tfidf = g.node("Mul", &[&tf, &idf], vec![]);
    // Opset 17: ReduceSumSquare's axes are an attribute (an input from opset 18 on).
    let sq = g.node(
        "ReduceSumSquare",
        &[&tfidf],
        vec![graph::ints("axes", vec![1]), graph::int("keepdims", 1)],
    );
    let norm = g.node("Sqrt", &[&sq], vec![]);
    let tiny = g.floats("norm.floor", &[], &[1e-30]);
    let norm = g.node("Max", &[&norm, &tiny], vec![]);
    let x = g.node("Div", &[&tfidf, &norm], vec![]);
    let k = maxent.classes as i64;
    let w = g.floats("classifier.weight", &[k, dim as i64], &weight);
    let b = g.floats("classifier.bias", &[k], &maxent.bias);
    let logits = g.node("Gemm", &[&x, &w, &b], vec![graph::int("transB", 1)]);
    g.node_to(
        "Softmax",
        &[&logits],
        "probabilities",
        vec![graph::int("axis", 1)],
    );
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
        &[Dim::Named("N"), Dim::Fixed(k)],
        "one probability per label, in `labels` order",
    );
    g.output(
        "label",
        data_type::STRING,
        &[Dim::Named("N")],
        "the most probable label",
    );

    let mut rules = tokenizer_rules(vectorizer);
    rules["input"] = serde_json::json!(INPUT);
    rules["counts"] = serde_json::json!(
        "float32 [N, V]: the number of times each vocabulary term occurs in the text (the first max_chars characters), at the term's index in `vocabulary`; 0 for the others"
    );
    let mut extra = BTreeMap::new();
    extra.insert(
        "tokenizer".to_string(),
        serde_json::to_string(&rules).unwrap_or_default(),
    );
    extra.insert(
        "vocabulary".into(),
        serde_json::to_string(&vectorizer.vocab).unwrap_or_default(),
    );
    extra.insert("algorithm".into(), "maxent".into());
    extra.insert("text_column".into(), model.columns.text.clone());
    extra.insert(
        "preprocessing".into(),
        "input `counts` float32 [N, V]: term counts in `vocabulary` order, by the `tokenizer` rules (also in the sidecar <model>.tokenizer.json)".into(),
    );
    let description = format!(
        "Text classifier (word and character n-gram TF-IDF + logistic regression, {dim} terms) for {} labels, trained with Lathe. Input: term counts; see the tokenizer metadata.",
        labels.len()
    );
    let props = meta::props(
        model_dir,
        "text-classification",
        &labels,
        description.clone(),
        options,
        extra,
    )?;
    let exported = onnx::write(out, &g.finish("lathe_text_maxent", &description, props))?;
    let mut sidecar = rules;
    sidecar["labels"] = serde_json::json!(labels);
    sidecar["vocabulary"] = serde_json::json!(vectorizer.vocab);
    sidecar["model"] = serde_json::json!(out.file_name().map(|n| n.to_string_lossy().into_owned()));
    write_json(&sidecar_path(out), &sidecar)?;
    Ok(exported)
}

/// Exports a sentence-encoder model: the encoder graph + head ([`onnx_encoder`]) and the
/// tokenizer beside it (`<model>.tokenizer.json`, the model folder's `tokenizer.json`).
fn export_transfer(
    model_dir: &Path,
    out: &Path,
    options: &Options,
    model: &TextModel,
    encoder: &TextEncoder,
    head: &Head,
) -> Result<Exported> {
    let files = &encoder.files;
    let (tensors, _) = crate::export::st::load(&files.weights, &Device::Cpu)?;
    let config: serde_json::Value = crate::fsutil::read_json(&files.config)?;
    let shape = BertShape::from_config(&config, &files.config)?;
    let w = Weights {
        tensors: &tensors,
        path: &files.weights,
    };
    let labels = model.labels.clone();
    let mut g = Graph::new();
    onnx_encoder::build(&mut g, &w, &shape, head, &labels)?;
    let tokenizer = model_dir.join("tokenizer.json");
    let sidecar = sidecar_path(out);
    let mut extra = BTreeMap::new();
    extra.insert("algorithm".to_string(), "transfer".to_string());
    extra.insert("encoder".into(), text_encoder::ENCODER_ID.into());
    extra.insert("max_tokens".into(), text_encoder::MAX_TOKENS.to_string());
    extra.insert("text_column".into(), model.columns.text.clone());
    extra.insert(
        "preprocessing".into(),
        format!(
            "inputs `{}` and `{}` int64 [N, L]: the Hugging Face tokenizer in the sidecar {} (the \
             model folder's tokenizer.json) on the text (its first 8,192 characters), with special \
             tokens, truncated to {} tokens; pad the rows of a batch at the end with mask 0",
            onnx_encoder::INPUT_IDS,
            onnx_encoder::ATTENTION_MASK,
            sidecar
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            text_encoder::MAX_TOKENS
        ),
    );
    let description = format!(
        "Text classifier ({} sentence embeddings + head) for {} labels, trained with Lathe. Inputs: token ids and attention mask of the tokenizer beside the model.",
        text_encoder::ENCODER_ID,
        labels.len()
    );
    let props = meta::props(
        model_dir,
        "text-classification",
        &labels,
        description.clone(),
        options,
        extra,
    )?;
    let exported = onnx::write(out, &g.finish("lathe_text_encoder", &description, props))?;
    std::fs::copy(&tokenizer, &sidecar)
        .map_err(|e| Error::io("copying the tokenizer", &tokenizer, e))?;
    Ok(exported)
}
