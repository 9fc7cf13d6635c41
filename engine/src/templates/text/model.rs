//! The exported text classifier: the model folder (`model.safetensors` with PyTorch names,
//! `config.json`, `manifest.json`; for transfer also `tokenizer.json` and `encoder_config.json`),
//! loading it back, and predicting / evaluating texts.
//!
//! - maxent: `vectorizer.idf [V]`, `classifier.weight [C, V]`, `classifier.bias [C]`; the
//!   vocabulary and the tokenizer rules are in `config.json` (`vectorizer`), so the model is
//!   self-contained.
//! - transfer: the head (`classifier.1.*`, MLP also `classifier.4.*`) on raw embeddings; the
//!   encoder is referenced (`config.json` → `encoder`: id, hub repo, path and BLAKE3 of the
//!   weights) and found again at that path or in the Hugging Face cache.

use crate::data::text_data::{self, Columns};
use crate::error::{Error, Result};
use crate::eval::ClassificationReport;
use crate::export::st;
use crate::fsutil::{read_json, replace_dir, write_json};
use crate::nets::head::{Head, HeadKind};
use crate::nets::text_encoder::{self, EncoderFiles, TextEncoder};
use crate::task::{Evaluation, Model, Prediction, ScanProgress};
use crate::templates::text::features::{TokenizerRules, Vectorizer};
use crate::templates::text::maxent::Maxent;
use candle_core::{D, DType, Device, Tensor};
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// Version of the text model-folder layout.
pub const MODEL_FORMAT_VERSION: u32 = 1;

/// The trained classifier of either algorithm.
pub enum Classifier {
    Maxent {
        vectorizer: Vectorizer,
        model: Maxent,
    },
    /// `head` works on raw (unstandardized) embeddings.
    Transfer {
        encoder: Box<TextEncoder>,
        head: Head,
        embedding_batch_size: usize,
    },
}

/// A text classifier ready to predict.
pub struct TextModel {
    pub labels: Vec<String>,
    pub columns: Columns,
    pub classifier: Classifier,
    pub device: Device,
}

impl TextModel {
    /// `maxent` or `transfer`.
    pub fn algorithm(&self) -> &'static str {
        match self.classifier {
            Classifier::Maxent { .. } => "maxent",
            Classifier::Transfer { .. } => "transfer",
        }
    }

    /// Class probabilities of each text.
    pub fn probabilities(
        &self,
        texts: &[&str],
        progress: ScanProgress<'_>,
    ) -> Result<Vec<Vec<f32>>> {
        let total = texts.len() as u64;
        match &self.classifier {
            Classifier::Maxent { vectorizer, model } => {
                let rows = vectorizer.transform_many(texts);
                progress(total, total);
                Ok(rows.iter().map(|r| model.probabilities(r)).collect())
            }
            Classifier::Transfer {
                encoder,
                head,
                embedding_batch_size,
            } => {
                let e = encoder.embed_many(
                    texts,
                    *embedding_batch_size,
                    &mut |d| progress(d as u64, total),
                    &|| Ok(()),
                )?;
                head_probabilities(head, &e, encoder.dim, &self.device)
            }
        }
    }

    /// Writes the model folder at `target` (staged, then swapped in).
    pub fn write(&self, target: &Path, template: &str, manifest: &serde_json::Value) -> Result<()> {
        let staging = crate::fsutil::temp_sibling(target).with_extension("staging");
        if staging.exists() {
            std::fs::remove_dir_all(&staging).map_err(|e| Error::io("clearing", &staging, e))?;
        }
        std::fs::create_dir_all(&staging).map_err(|e| Error::io("creating", &staging, e))?;
        let cpu = Device::Cpu;
        let labels_json = serde_json::to_string(&self.labels).unwrap_or_default();
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
        let mut config = json!({
            "model_type": "lathe_text_classifier",
            "algorithm": self.algorithm(),
            "num_labels": self.labels.len(),
            "id2label": id2label,
            "label2id": label2id,
            "text_column": self.columns.text,
            "target": self.columns.label,
            "lathe": { "task": "text-classification", "template": template, "version": env!("CARGO_PKG_VERSION"), "format_version": MODEL_FORMAT_VERSION },
        });
        let tensors: Vec<(String, Tensor)> = match &self.classifier {
            Classifier::Maxent { vectorizer, model } => {
                config["vectorizer"] = json!({
                    "segmentation": "Unicode words (UAX #29), lower-cased; punctuation dropped",
                    "max_chars": crate::templates::text::features::MAX_CHARS,
                    "rules": vectorizer.rules,
                    "terms": "word n-grams `w:a b`, character n-grams of \" word \" `c:…`",
                    "tf": "1 + ln(count)",
                    "idf": "ln((1 + n) / (1 + df)) + 1 (tensor vectorizer.idf)",
                    "norm": "l2",
                    "vocabulary": vectorizer.vocab,
                });
                let v = vectorizer.dim();
                vec![
                    (
                        "vectorizer.idf".into(),
                        Tensor::from_slice(&vectorizer.idf, v, &cpu)?,
                    ),
                    (
                        "classifier.weight".into(),
                        Tensor::from_vec(model.weight_class_major(), (model.classes, v), &cpu)?,
                    ),
                    (
                        "classifier.bias".into(),
                        Tensor::from_slice(&model.bias, model.classes, &cpu)?,
                    ),
                ]
            }
            Classifier::Transfer { encoder, head, .. } => {
                let f = &encoder.files;
                config["head"] = serde_json::to_value(&head.kind).unwrap_or_default();
                config["encoder"] = json!({
                    "id": text_encoder::ENCODER_ID,
                    "architecture": "BertModel",
                    "hub_repo": text_encoder::HUB_REPO,
                    "weights_source": f.source,
                    "weights_path": std::path::absolute(&f.weights).unwrap_or_else(|_| f.weights.clone()),
                    "weights_blake3": encoder.weights_hash,
                    "embedding_dim": encoder.dim,
                    "max_tokens": text_encoder::MAX_TOKENS,
                    "pooling": "mean over attention mask, then L2 normalize",
                });
                for (from, to) in [
                    (&f.tokenizer, "tokenizer.json"),
                    (&f.config, "encoder_config.json"),
                ] {
                    std::fs::copy(from, staging.join(to))
                        .map_err(|e| Error::io("copying encoder file", from, e))?;
                }
                let zeros = Tensor::zeros(encoder.dim, DType::F32, &cpu)?;
                let ones = Tensor::ones(encoder.dim, DType::F32, &cpu)?;
                head.export_tensors(
                    &zeros.to_device(&self.device)?,
                    &ones.to_device(&self.device)?,
                )?
            }
        };
        st::save(
            &staging.join(crate::train::run_dir::MODEL_WEIGHTS),
            &tensors,
            &[
                ("lathe_task", "text-classification".into()),
                ("algorithm", self.algorithm().into()),
                ("labels", labels_json),
            ],
        )?;
        write_json(&staging.join(crate::train::run_dir::MODEL_CONFIG), &config)?;
        write_json(&staging.join("manifest.json"), manifest)?;
        replace_dir(&staging, target)
    }

    /// Loads a model folder written by [`TextModel::write`].
    pub fn load(dir: &Path, device: &Device) -> Result<Self> {
        let config_path = dir.join(crate::train::run_dir::MODEL_CONFIG);
        let config: serde_json::Value = read_json(&config_path)?;
        let bad = |what: &str| {
            Error::model(
                format!("config.json has no valid `{what}`; re-export the model"),
                &config_path,
            )
        };
        let id2label = config["id2label"]
            .as_object()
            .ok_or_else(|| bad("id2label"))?;
        let mut labels = vec![String::new(); id2label.len()];
        for (k, v) in id2label {
            let (Ok(i), Some(name)) = (k.parse::<usize>(), v.as_str()) else {
                return Err(bad("id2label"));
            };
            *labels.get_mut(i).ok_or_else(|| bad("id2label"))? = name.to_string();
        }
        let columns = Columns {
            text: config["text_column"].as_str().unwrap_or("text").to_string(),
            label: config["target"].as_str().unwrap_or("label").to_string(),
        };
        let st_path = dir.join(crate::train::run_dir::MODEL_WEIGHTS);
        let (tensors, _) = st::load(&st_path, &Device::Cpu)?;
        let get = |name: &str| -> Result<Vec<f32>> {
            let t = tensors.get(name).ok_or_else(|| {
                Error::model(format!("no tensor `{name}`; re-export the model"), &st_path)
            })?;
            Ok(t.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()?)
        };
        let classifier = match config["algorithm"].as_str() {
            Some("maxent") => {
                let v = &config["vectorizer"];
                let rules: TokenizerRules = serde_json::from_value(v["rules"].clone())
                    .map_err(|_| bad("vectorizer.rules"))?;
                let vocab: Vec<String> = serde_json::from_value(v["vocabulary"].clone())
                    .map_err(|_| bad("vectorizer.vocabulary"))?;
                let idf = get("vectorizer.idf")?;
                let bias = get("classifier.bias")?;
                let weight = get("classifier.weight")?;
                if idf.len() != vocab.len()
                    || weight.len() != vocab.len() * bias.len()
                    || bias.len() != labels.len()
                {
                    return Err(Error::model(
                        "tensor sizes do not match the vocabulary and labels; re-export the model",
                        &st_path,
                    ));
                }
                let dim = vocab.len();
                Classifier::Maxent {
                    vectorizer: Vectorizer::from_parts(rules, vocab, idf),
                    model: Maxent::from_class_major(&weight, bias, dim),
                }
            }
            Some("transfer") => {
                let kind: HeadKind =
                    serde_json::from_value(config["head"].clone()).map_err(|_| bad("head"))?;
                let on_device: HashMap<String, Tensor> = tensors
                    .iter()
                    .map(|(k, t)| Ok((k.clone(), t.to_device(device)?)))
                    .collect::<Result<_>>()?;
                let head = Head::from_tensors(kind, &on_device)
                    .map_err(|e| Error::model(e.to_string(), &st_path))?;
                let files = find_encoder(dir, &config["encoder"])?;
                let encoder = TextEncoder::load(&files, device)?;
                Classifier::Transfer {
                    encoder: Box::new(encoder),
                    head,
                    embedding_batch_size: 32,
                }
            }
            _ => return Err(bad("algorithm")),
        };
        Ok(Self {
            labels,
            columns,
            classifier,
            device: device.clone(),
        })
    }
}

/// The encoder a transfer model was trained with: at its recorded path (same BLAKE3), else in the
/// Hugging Face cache; the tokenizer and config come from the model folder.
fn find_encoder(dir: &Path, info: &serde_json::Value) -> Result<EncoderFiles> {
    let want = info["weights_blake3"].as_str().unwrap_or_default();
    let recorded = info["weights_path"].as_str().map(PathBuf::from);
    let mut candidates: Vec<(PathBuf, String)> = Vec::new();
    if let Some(p) = &recorded
        && p.is_file()
    {
        candidates.push((
            p.clone(),
            info["weights_source"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        ));
    }
    if let Ok(files) = text_encoder::locate(None, false) {
        candidates.push((files.weights, files.source));
    }
    for (weights, source) in candidates {
        let Ok(bytes) = std::fs::read(&weights) else {
            continue;
        };
        if want.is_empty() || crate::fsutil::hash_hex(&bytes) == want {
            return Ok(EncoderFiles {
                weights,
                tokenizer: dir.join("tokenizer.json"),
                config: dir.join("encoder_config.json"),
                source,
            });
        }
    }
    Err(Error::Weights(format!(
        "the model's sentence encoder {} (blake3 {want}) is neither at {} nor in the Hugging Face cache; put it back, or run scripts/fetch-minilm.sh and retrain",
        text_encoder::ENCODER_ID,
        recorded
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "its recorded path".into()),
    )))
}

/// Softmax of a raw-feature head over embedding rows.
pub fn head_probabilities(
    head: &Head,
    rows: &[Vec<f32>],
    dim: usize,
    device: &Device,
) -> Result<Vec<Vec<f32>>> {
    let mut out = Vec::with_capacity(rows.len());
    for chunk in rows.chunks(4096) {
        let flat: Vec<f32> = chunk.iter().flatten().copied().collect();
        let x = Tensor::from_vec(flat, (chunk.len(), dim), device)?;
        let p = candle_nn::ops::softmax(&head.forward(&x, false, None)?, D::Minus1)?;
        out.extend(p.to_dtype(DType::F32)?.to_vec2::<f32>()?);
    }
    Ok(out)
}

/// What `lathe predict` was given: an existing `.txt` (one text), a table (one text per row), or
/// the text itself.
fn inputs_to_texts(inputs: &[String], columns: &Columns) -> Vec<Result<(String, String)>> {
    let mut out = Vec::new();
    for input in inputs {
        let path = Path::new(input);
        if input.len() < 4096 && path.is_file() {
            if text_data::is_table(path) {
                match text_data::read_rows(path, &columns.text, None) {
                    Ok(rows) => {
                        for issue in rows.issues {
                            eprintln!("warning: {}", issue.line());
                        }
                        out.extend(
                            rows.rows
                                .into_iter()
                                .map(|r| Ok((format!("{input}:{}", r.line), r.text))),
                        );
                    }
                    Err(e) => out.push(Err(e)),
                }
            } else {
                match std::fs::read(path) {
                    Ok(bytes) => {
                        let (text, note) = text_data::decode(&bytes);
                        if let Some(note) = note {
                            eprintln!("warning: the file is {note}: {input}");
                        }
                        out.push(Ok((input.clone(), text)));
                    }
                    Err(e) => out.push(Err(Error::io("reading", path, e))),
                }
            }
        } else {
            out.push(Ok((input.clone(), input.clone())));
        }
    }
    out
}

impl Model for TextModel {
    fn labels(&self) -> &[String] {
        &self.labels
    }

    fn predict(&self, inputs: &[String], progress: ScanProgress<'_>) -> Vec<Result<Prediction>> {
        let items = inputs_to_texts(inputs, &self.columns);
        let texts: Vec<&str> = items
            .iter()
            .filter_map(|r| r.as_ref().ok().map(|(_, t)| t.as_str()))
            .collect();
        let probs = self.probabilities(&texts, progress);
        let mut probs = match probs {
            Ok(p) => p.into_iter(),
            Err(e) => {
                let msg = e.to_string();
                return items
                    .into_iter()
                    .map(|_| Err(Error::Unsupported(msg.clone())))
                    .collect();
            }
        };
        items
            .into_iter()
            .map(|r| {
                let (input, _) = r?;
                let p = probs
                    .next()
                    .ok_or_else(|| Error::Unsupported("missing prediction".into()))?;
                Ok(Prediction::from_probabilities(input, &self.labels, &p))
            })
            .collect()
    }

    fn evaluate(
        &self,
        data: &Path,
        progress: ScanProgress<'_>,
        warn: &mut dyn FnMut(String),
    ) -> Result<Evaluation> {
        let mut split = text_data::load(
            data,
            "evaluation",
            &self.columns,
            &mut |_, _| {},
            &|| Ok(()),
        )?;
        split.split.relabel(&self.labels);
        for issue in &split.split.issues {
            warn(issue.line());
        }
        if split.split.files.is_empty() {
            return Err(Error::data(
                "no texts of the model's classes found; give class folders of .txt files or a table with the model's text and label columns",
                data,
            ));
        }
        let texts: Vec<&str> = split.split.files.iter().map(|f| split.text(f)).collect();
        let probs = self.probabilities(&texts, progress)?;
        let truth: Vec<usize> = split.split.files.iter().map(|f| f.label).collect();
        let inputs: Vec<PathBuf> = split.split.files.iter().map(|f| f.path.clone()).collect();
        Ok(Evaluation::Classification(ClassificationReport::compute(
            &self.labels,
            &truth,
            &probs,
            &inputs,
        )))
    }
}
