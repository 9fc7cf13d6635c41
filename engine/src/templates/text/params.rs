//! The text classifier's parameters: the specs the settings form and `--param` use, and the
//! checked [`TextParams`] the pipeline reads.

use crate::data::text_data::Columns;
use crate::nets::head::HeadKind;
use crate::params::{ParamKind, ParamSpec, ParamValue, ResolvedParams};
use crate::templates::text::features::TokenizerRules;
use crate::templates::text::maxent::MaxentConfig;
use std::path::PathBuf;

/// Which algorithm(s) to train.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    /// Both when the encoder is available, keeping the better on validation; else maxent.
    Auto,
    Maxent,
    Transfer,
}

/// Parameters after checking.
#[derive(Clone, Debug)]
pub struct TextParams {
    pub algorithm: Algorithm,
    pub columns: Columns,
    pub validation_split: f64,
    pub rules: TokenizerRules,
    pub maxent: MaxentConfig,
    /// Choose maxent's L2 penalty by cross-validation (then `maxent.l2` is not used).
    pub choose_regularization: bool,
    pub encoder: Option<PathBuf>,
    pub head: HeadKind,
    pub epochs: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    pub weight_decay: f64,
    pub patience: usize,
    pub embedding_batch_size: usize,
}

impl TextParams {
    pub fn from_resolved(p: &ResolvedParams) -> Self {
        let algorithm = match p.text("algorithm") {
            "maxent" => Algorithm::Maxent,
            "transfer" => Algorithm::Transfer,
            _ => Algorithm::Auto,
        };
        let head = match p.text("head") {
            "mlp" => HeadKind::Mlp {
                hidden: p.usize("mlp_hidden"),
                dropout: p.float("dropout") as f32,
            },
            _ => HeadKind::Logistic,
        };
        Self {
            algorithm,
            columns: Columns {
                text: p.text("text_column").to_string(),
                label: p.text("target").to_string(),
            },
            validation_split: p.float("validation_split"),
            rules: TokenizerRules {
                word_ngrams: p.usize("word_ngrams"),
                char_ngram_min: p.usize("char_ngram_min"),
                char_ngram_max: p.usize("char_ngram_max"),
                max_features: p.usize("max_features"),
                min_count: p.usize("min_count"),
            },
            choose_regularization: p.bool("choose_regularization"),
            maxent: MaxentConfig {
                l2: p.float("regularization"),
                max_iterations: p.usize("max_iterations"),
                patience: p.usize("early_stopping_patience"),
            },
            encoder: Some(p.text("encoder"))
                .filter(|w| !w.is_empty())
                .map(PathBuf::from),
            head,
            epochs: p.usize("epochs"),
            batch_size: p.usize("batch_size"),
            learning_rate: p.float("learning_rate"),
            weight_decay: p.float("weight_decay"),
            patience: p.usize("early_stopping_patience"),
            embedding_batch_size: p.usize("embedding_batch_size"),
        }
    }
}

/// Every parameter of the text classifier, with defaults and help.
pub fn param_specs() -> Vec<ParamSpec> {
    let text = |key: &str, label: &str, group: &str, help: &str, default: &str| {
        ParamSpec::new(
            key,
            label,
            group,
            help,
            ParamKind::Text,
            ParamValue::Text(default.into()),
        )
    };
    vec![
        ParamSpec::choice(
            "algorithm",
            "Algorithm",
            "Model",
            "maxent: word and character n-gram TF-IDF + logistic regression, fast, no download; transfer: the all-MiniLM-L6-v2 sentence encoder + a classifier; auto: both when the encoder is available, keeping the better on validation.",
            &["auto", "maxent", "transfer"],
            "auto",
        ),
        text(
            "text_column",
            "Text column",
            "Data",
            "Column (CSV) or key (JSON) holding the text, for table datasets.",
            "text",
        ),
        text(
            "target",
            "Label column",
            "Data",
            "Column (CSV) or key (JSON) holding the label, for table datasets.",
            "label",
        ),
        ParamSpec::float(
            "validation_split",
            "Validation split",
            "Data",
            "Share of training examples held out for validation when no validation data is given.",
            (0.0, 0.5),
            0.1,
        ),
        ParamSpec::int(
            "max_features",
            "Vocabulary size",
            "Maxent",
            "Most frequent terms (words, word pairs, character n-grams) kept as features.",
            (10, 5_000_000),
            100_000,
        ),
        ParamSpec::int(
            "min_count",
            "Minimum count",
            "Maxent",
            "A term must appear in at least this many training texts to become a feature.",
            (1, 1_000_000),
            2,
        ),
        ParamSpec::int(
            "word_ngrams",
            "Word n-grams",
            "Maxent",
            "Word sequences up to this length become features (2 = words and word pairs).",
            (1, 3),
            2,
        ),
        ParamSpec::int(
            "char_ngram_min",
            "Shortest character n-gram",
            "Maxent",
            "Shortest character sequence inside a word used as a feature.",
            (1, 10),
            2,
        ),
        ParamSpec::int(
            "char_ngram_max",
            "Longest character n-gram",
            "Maxent",
            "Longest character sequence inside a word used as a feature (0 = no character n-grams).",
            (0, 10),
            4,
        ),
        ParamSpec::float(
            "regularization",
            "L2 regularization",
            "Maxent",
            "Penalty on large weights, used when choose_regularization is off; raise it if the model overfits a small dataset.",
            (0.0, 10.0),
            1e-4,
        ),
        ParamSpec::bool(
            "choose_regularization",
            "Choose regularization",
            "Maxent",
            "Choose the L2 penalty by 3-fold cross-validation on the training texts (as scikit-learn's LogisticRegressionCV chooses C); off uses the value above.",
            true,
        ),
        ParamSpec::int(
            "max_iterations",
            "Maximum iterations",
            "Maxent",
            "L-BFGS iterations at most (each is reported as an epoch).",
            (1, 100_000),
            300,
        ),
        text(
            "encoder",
            "Sentence encoder",
            "Transfer",
            "Folder with all-MiniLM-L6-v2 (model.safetensors, tokenizer.json, config.json), its model.safetensors, or hf://owner/repo; empty uses --weights or the Hugging Face cache.",
            "",
        ),
        ParamSpec::choice(
            "head",
            "Classifier",
            "Transfer",
            "logistic: fast and robust; mlp: one hidden layer, can fit more complex boundaries.",
            &["logistic", "mlp"],
            "logistic",
        ),
        ParamSpec::int(
            "mlp_hidden",
            "MLP hidden units",
            "Transfer",
            "Width of the MLP's hidden layer.",
            (8, 8192),
            256,
        ),
        ParamSpec::float(
            "dropout",
            "MLP dropout",
            "Transfer",
            "Share of hidden units dropped while training the MLP.",
            (0.0, 0.9),
            0.2,
        ),
        ParamSpec::int(
            "epochs",
            "Maximum epochs",
            "Transfer",
            "Passes over the sentence embeddings; early stopping may end sooner.",
            (1, 100_000),
            100,
        ),
        ParamSpec::int(
            "batch_size",
            "Batch size",
            "Transfer",
            "Examples per optimizer step when training the classifier.",
            (1, 65_536),
            64,
        ),
        ParamSpec::float(
            "learning_rate",
            "Learning rate",
            "Transfer",
            "Peak AdamW step size (warm-up, then cosine decay).",
            (1e-7, 1.0),
            1e-3,
        ),
        ParamSpec::float(
            "weight_decay",
            "Weight decay",
            "Transfer",
            "L2-style regularization of the classifier weights.",
            (0.0, 1.0),
            1e-4,
        ),
        ParamSpec::int(
            "early_stopping_patience",
            "Early stopping patience",
            "Training",
            "Stop after this many epochs (maxent: iterations) without validation improvement (0 = never).",
            (0, 10_000),
            10,
        ),
        ParamSpec::int(
            "embedding_batch_size",
            "Encoder batch size",
            "Performance",
            "Texts per sentence-encoder batch.",
            (1, 4096),
            32,
        ),
    ]
}
