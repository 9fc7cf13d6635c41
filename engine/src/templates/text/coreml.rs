//! The maxent text classifier as a Core ML `PipelineClassifier` (specification 1; 2 with fp16
//! weights): input `terms`, a dictionary term → count of the text's in-vocabulary terms, then
//!
//! 1. `DictVectorizer` over the vocabulary (the engine's column order) → counts;
//! 2. a `NeuralNetworkClassifier` that computes the engine's TF-IDF row and its logistic
//!    regression: sublinear TF `relu(ln(max(count, 0.3)) + 1)` (0 for an absent term, exactly,
//!    and `1 + ln(count)` otherwise) as `THRESHOLD` → `LOG` → linear → ReLU layers, × IDF (a
//!    `scale` layer), `l2normalize` (ε = 1e-12: 0 stays 0), inner product, softmax.
//!
//! Outputs `classLabel` and `classLabelProbability`. Core ML has no tokenizer layer (and Create
//! ML's `TextClassifier` model type is a private format), so counting terms is the app's job:
//! the rules are in the metadata (`tokenizer`, `vocabulary`) and in a sidecar
//! `<model>.tokenizer.json` written next to the `.mlmodel`, with the vocabulary. Terms not in
//! the vocabulary must be left out of the dictionary. The transfer-learning variant (a BERT
//! sentence encoder) is not exported: it would need the encoder as Core ML layers.

use crate::error::{Error, Result};
use crate::export::coreml::builder::{Activation, NetworkBuilder};
use crate::export::coreml::spec::{self, feature};
use crate::export::coreml::{Exported, Options, meta};
use crate::fsutil::write_json;
use crate::templates::text::features::{MAX_CHARS, Vectorizer};
use crate::templates::text::maxent::Maxent;
use crate::templates::text::model::{Classifier, TextModel};
use candle_core::Device;
use coreml_proto::proto::{
    DictVectorizer, DictionaryFeatureType, NeuralNetworkClassifier, Pipeline, PipelineClassifier,
    dict_vectorizer, dictionary_feature_type, feature_type, model, neural_network_classifier,
};
use std::path::{Path, PathBuf};

/// Name of the term-count input.
pub const INPUT: &str = "terms";
/// Name of the top-label output.
pub const LABEL_OUTPUT: &str = "classLabel";
/// Name of the probabilities output (and of the softmax blob).
pub const PROBABILITY_OUTPUT: &str = "classLabelProbability";

/// Counts below this (only 0 occurs) give TF 0: `ln(0.3) + 1 < 0`, cut by the ReLU.
const TF_FLOOR: f32 = 0.3;

/// The sidecar written next to `out`: `<stem>.tokenizer.json`.
pub fn sidecar_path(out: &Path) -> PathBuf {
    let stem = out
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".into());
    out.with_file_name(format!("{stem}.tokenizer.json"))
}

/// How an app turns a text into the `terms` input (metadata `tokenizer`, and the sidecar).
pub(crate) fn tokenizer_rules(v: &Vectorizer) -> serde_json::Value {
    serde_json::json!({
        "input": INPUT,
        "max_chars": MAX_CHARS,
        "segmentation": "Unicode word boundaries (UAX #29: the words of unicode-segmentation's unicode_words, i.e. segments holding a letter or digit; punctuation and spaces dropped), each lower-cased (Unicode lowercase)",
        "word_ngrams": format!("for n in 1..={}: every run of n consecutive words, joined by one space, prefixed `w:` (e.g. `w:free money`)", v.rules.word_ngrams.max(1)),
        "char_ngrams": if v.rules.char_ngram_max > 0 {
            format!("for each word, padded with one space on each side: every run of n characters for n in {}..={}, prefixed `c:` (e.g. `c: fr`)", v.rules.char_ngram_min.max(1), v.rules.char_ngram_max)
        } else {
            "none".into()
        },
        "counts": "the number of times each term occurs in the text (the first max_chars characters); keep only terms in the vocabulary",
        "rules": v.rules,
        "in_model": "sublinear TF 1 + ln(count), × IDF, L2 normalization, logistic regression, softmax",
    })
}

/// Exports the text classifier in `model_dir` to `out` (and its tokenizer sidecar).
pub fn export(model_dir: &Path, out: &Path, options: &Options) -> Result<Exported> {
    let model = TextModel::load(model_dir, &Device::Cpu)?;
    let (vectorizer, maxent) = match &model.classifier {
        Classifier::Maxent { vectorizer, model } => (vectorizer, model),
        Classifier::Transfer { .. } => {
            return Err(Error::Unsupported(
                "Core ML export of transfer-learning text models (sentence encoder) is not available; train with --param algorithm=maxent to export Core ML".into(),
            ));
        }
    };
    let labels = model.labels.clone();
    let dim = vectorizer.dim();
    let version = options.precision.specification_version();
    let (layers, counts) = network(vectorizer, maxent, options)?;
    let num_layers = layers.len();

    let dictionary = || {
        feature_type::Type::DictionaryType(DictionaryFeatureType {
            key_type: Some(dictionary_feature_type::KeyType::StringKeyType(
                coreml_proto::proto::StringFeatureType {},
            )),
        })
    };
    let input = feature(
        INPUT,
        "Count of each vocabulary term in the text (word n-grams `w:…`, character n-grams `c:…`; see the tokenizer metadata)",
        dictionary(),
    );
    let counts_type = spec::array_type(&[dim], true);
    let vectorizer_model = spec::model(
        version,
        spec::description(
            vec![input.clone()],
            vec![feature(&counts, "", counts_type.clone())],
        ),
        model::Type::DictVectorizer(DictVectorizer {
            map: Some(dict_vectorizer::Map::StringToIndex(spec::strings(
                &vectorizer.vocab,
            ))),
        }),
    );
    let classifier = spec::model(
        version,
        spec::classifier_description(
            vec![feature(&counts, "", counts_type)],
            LABEL_OUTPUT,
            PROBABILITY_OUTPUT,
        ),
        model::Type::NeuralNetworkClassifier(NeuralNetworkClassifier {
            layers,
            label_probability_layer_name: PROBABILITY_OUTPUT.into(),
            class_labels: Some(neural_network_classifier::ClassLabels::StringClassLabels(
                spec::strings(&labels),
            )),
            ..Default::default()
        }),
    );

    let rules = tokenizer_rules(vectorizer);
    let mut user = meta::provenance(model_dir, &labels, options)?;
    user.insert(
        "tokenizer".into(),
        serde_json::to_string(&rules).unwrap_or_default(),
    );
    user.insert(
        "vocabulary".into(),
        serde_json::to_string(&vectorizer.vocab).unwrap_or_default(),
    );
    user.insert("algorithm".into(), "maxent".into());
    user.insert("text_column".into(), model.columns.text.clone());
    let metadata = meta::metadata(
        options,
        format!(
            "Text classifier (word and character n-gram TF-IDF + logistic regression, {dim} terms) for {} labels ({}), trained with Lathe. Input: term counts; see the tokenizer metadata.",
            labels.len(),
            meta::label_list(&labels)
        ),
        "Unspecified (set with --license).",
        user,
    );
    let mut description =
        spec::classifier_description(vec![input], LABEL_OUTPUT, PROBABILITY_OUTPUT);
    description.metadata = Some(metadata.message());
    let whole = spec::model(
        version,
        description,
        model::Type::PipelineClassifier(PipelineClassifier {
            pipeline: Some(Pipeline {
                models: vec![vectorizer_model, classifier],
                names: vec!["dict_vectorizer".into(), "tfidf_logistic".into()],
            }),
        }),
    );
    let bytes = spec::write(out, &whole)?;
    let mut sidecar = rules;
    sidecar["labels"] = serde_json::json!(labels);
    sidecar["vocabulary"] = serde_json::json!(vectorizer.vocab);
    sidecar["model"] = serde_json::json!(out.file_name().map(|n| n.to_string_lossy().into_owned()));
    write_json(&sidecar_path(out), &sidecar)?;
    Ok(Exported {
        path: out.to_path_buf(),
        bytes,
        specification_version: version,
        num_layers,
    })
}

/// The network over the counts blob; returns its layers and the input blob's name.
fn network(
    vectorizer: &Vectorizer,
    maxent: &Maxent,
    options: &Options,
) -> Result<(Vec<coreml_proto::proto::NeuralNetworkLayer>, String)> {
    let dim = vectorizer.dim();
    if maxent.dim != dim || vectorizer.idf.len() != dim {
        return Err(Error::Unsupported(
            "Core ML export: the vocabulary, IDF and weights have different sizes (a bug)".into(),
        ));
    }
    let counts = "counts".to_string();
    let mut b = NetworkBuilder::new(options.precision);
    let t = b.threshold("tf.floor", &counts, "tf.floor", 1.0, TF_FLOOR);
    let t = b.log("tf.log", &t, "tf.log", 1.0, 0.0);
    let t = b.activation(
        "tf.plus_one",
        &t,
        "tf.plus_one",
        Activation::Linear {
            alpha: 1.0,
            beta: 1.0,
        },
    );
    let t = b.activation("tf", &t, "tf", Activation::Relu);
    let t = b.scale("tfidf", &t, "tfidf", &vectorizer.idf, None)?;
    let t = b.l2_normalize("tfidf.l2", &t, "tfidf.l2", 1e-12);
    let logits = b.inner_product(
        "classifier",
        &t,
        "logits",
        &maxent.weight_class_major(),
        Some(&maxent.bias),
        (maxent.classes, dim),
    )?;
    b.softmax("probabilities", &logits, PROBABILITY_OUTPUT);
    Ok((b.finish(), counts))
}
