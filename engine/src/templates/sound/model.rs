//! The exported sound classifier: writing the model folder (safetensors with PyTorch names,
//! `config.json`, `feature_extractor_config.json`, `manifest.json`), loading it back, and
//! predicting files of any length by streaming them through the front end and averaging the
//! class probabilities of their windows (as Create ML and Turi Create do).

use crate::data::audio_decode;
use crate::data::audio_frontend::{FrontEndConfig, LogMel, WindowStream};
use crate::data::image_folder;
use crate::error::{Error, Result};
use crate::eval::ClassificationReport;
use crate::export::st;
use crate::fsutil::{read_json, replace_dir, write_json};
use crate::nets::audio_cnn::{AudioCnn, AudioCnnConfig};
use crate::nets::crepe::Crepe;
use crate::nets::head::{Head, HeadKind};
use crate::nets::speech_embedding::SpeechEmbedding;
use crate::nets::whisper_encoder::WhisperEncoder;
use crate::nets::yamnet::Yamnet;
use crate::task::{Evaluation, Model, Prediction, ScanProgress};
use crate::templates::sound::encoder::Encoder;
use crate::templates::sound::train::sound_scan;
use crate::templates::sound::transfer::SampleWindower;
use candle_core::{D, DType, Device, Tensor};
use candle_nn::VarBuilder;
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// Version of the model-folder layout.
pub const MODEL_FORMAT_VERSION: u32 = 1;
/// Task id recorded in `config.json`.
pub const TASK_ID: &str = "sound-classification";
/// Windows per forward pass when predicting.
const PREDICT_BATCH: usize = 32;

/// A trained network with its front end and input normalization.
pub struct SoundNet {
    pub frontend: LogMel,
    pub cnn: AudioCnn,
    /// Per-mel-band mean and std of the training windows, shape `(n_mels,)`.
    pub mean: Tensor,
    pub std: Tensor,
    pub device: Device,
}

impl SoundNet {
    /// Class probabilities of raw windows (`window_len()` values each).
    pub fn probabilities(&self, windows: &[Vec<f32>]) -> Result<Vec<Vec<f32>>> {
        if windows.is_empty() {
            return Ok(Vec::new());
        }
        let x = self.normalize(windows)?;
        let logits = self.cnn.forward_t(&x, false)?;
        Ok(candle_nn::ops::softmax(&logits, D::Minus1)?.to_vec2::<f32>()?)
    }

    /// Stacks raw windows and standardizes them per mel band: `(n, frames × n_mels)`.
    pub fn normalize(&self, windows: &[Vec<f32>]) -> Result<Tensor> {
        let cfg = &self.frontend.cfg;
        let flat: Vec<f32> = windows.iter().flatten().copied().collect();
        let x = Tensor::from_vec(
            flat,
            (windows.len(), cfg.window_frames, cfg.n_mels),
            &self.device,
        )?;
        let x = x.broadcast_sub(&self.mean)?.broadcast_div(&self.std)?;
        Ok(x.reshape((windows.len(), cfg.window_len()))?)
    }

    /// Streams a file through the front end; the mean window probabilities and window count.
    pub fn predict_file(&self, path: &Path) -> Result<(Vec<f32>, usize)> {
        let mut acc = Averager::new(self.cnn.cfg.num_classes);
        let mut batch: Vec<Vec<f32>> = Vec::new();
        let mut stream = WindowStream::new(&self.frontend);
        audio_decode::decode(path, &mut |chunk| {
            stream.push(chunk, &mut |w| batch.push(w.to_vec()));
            if batch.len() >= PREDICT_BATCH {
                acc.add(self.probabilities(&batch));
                batch.clear();
            }
            acc.failure.is_none()
        })
        .map_err(|reason| Error::data(reason, path))?;
        stream.finish(&mut |w| batch.push(w.to_vec()));
        acc.add(self.probabilities(&batch));
        acc.mean()
    }

    /// Tensors to export: the network's (PyTorch names) and the normalization.
    pub fn state_dict(&self, vars: &HashMap<String, Tensor>) -> Vec<(String, Tensor)> {
        let mut out: Vec<(String, Tensor)> =
            vars.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        out.push(("frontend.mean".into(), self.mean.clone()));
        out.push(("frontend.std".into(), self.std.clone()));
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

/// The transfer model: CREPE-tiny window features and a head on raw features.
pub struct TransferNet {
    pub encoder: Encoder,
    pub head: Head,
    /// Window and hop in samples (the same timing as the log-mel windows).
    pub window: usize,
    pub hop: usize,
    pub device: Device,
}

impl TransferNet {
    /// Class probabilities of raw sample windows.
    pub fn probabilities(&self, windows: &[Vec<f32>]) -> Result<Vec<Vec<f32>>> {
        if windows.is_empty() {
            return Ok(Vec::new());
        }
        let f = self.encoder.window_features(windows, &self.device)?;
        let n = f.len();
        let x = Tensor::from_vec(
            f.into_iter().flatten().collect::<Vec<f32>>(),
            (n, self.encoder.feature_dim()),
            &self.device,
        )?;
        let logits = self.head.forward(&x, false, None)?;
        Ok(candle_nn::ops::softmax(&logits, D::Minus1)?.to_vec2::<f32>()?)
    }

    /// Streams a file; the mean window probabilities and window count.
    pub fn predict_file(&self, path: &Path) -> Result<(Vec<f32>, usize)> {
        let mut acc = Averager::new(self.head_classes());
        let mut batch: Vec<Vec<f32>> = Vec::new();
        let mut windower = SampleWindower::new(self.window, self.hop);
        audio_decode::decode(path, &mut |chunk| {
            windower.push(chunk, &mut |w| batch.push(w.to_vec()));
            if batch.len() >= 16 {
                acc.add(self.probabilities(&batch));
                batch.clear();
            }
            acc.failure.is_none()
        })
        .map_err(|reason| Error::data(reason, path))?;
        windower.finish(&mut |w| batch.push(w.to_vec()));
        acc.add(self.probabilities(&batch));
        acc.mean()
    }

    fn head_classes(&self) -> usize {
        self.head
            .layers
            .last()
            .and_then(|(w, _)| w.dims().first().copied())
            .unwrap_or(0)
    }
}

/// Sums window probabilities; remembers the first failure.
struct Averager {
    sum: Vec<f64>,
    count: usize,
    failure: Option<Error>,
}

impl Averager {
    fn new(classes: usize) -> Self {
        Self {
            sum: vec![0.0; classes],
            count: 0,
            failure: None,
        }
    }

    fn add(&mut self, probs: Result<Vec<Vec<f32>>>) {
        match probs {
            Ok(rows) => {
                for row in rows {
                    for (s, v) in self.sum.iter_mut().zip(row) {
                        *s += v as f64;
                    }
                    self.count += 1;
                }
            }
            Err(e) => {
                if self.failure.is_none() {
                    self.failure = Some(e);
                }
            }
        }
    }

    fn mean(self) -> Result<(Vec<f32>, usize)> {
        if let Some(e) = self.failure {
            return Err(e);
        }
        let n = self.count.max(1) as f64;
        Ok((
            self.sum.iter().map(|s| (s / n) as f32).collect(),
            self.count,
        ))
    }
}

/// Either trained model.
pub enum SoundPredictor {
    Cnn(SoundNet),
    Transfer(TransferNet),
}

impl SoundPredictor {
    pub fn predict_file(&self, path: &Path) -> Result<(Vec<f32>, usize)> {
        match self {
            Self::Cnn(n) => n.predict_file(path),
            Self::Transfer(n) => n.predict_file(path),
        }
    }
}

/// `feature_extractor_config.json`: everything needed to recompute the network's input.
pub fn feature_extractor_config(cfg: &FrontEndConfig) -> serde_json::Value {
    json!({
        "feature_extractor_type": "LatheLogMelExtractor",
        "sampling_rate": cfg.sample_rate,
        "resampler": "rubato FftFixedIn, downmix to mono by averaging channels",
        "window_length_samples": cfg.win_length,
        "window_ms": cfg.win_length as f64 * 1000.0 / cfg.sample_rate as f64,
        "hop_length_samples": cfg.hop_length,
        "hop_ms": cfg.hop_length as f64 * 1000.0 / cfg.sample_rate as f64,
        "n_fft": cfg.n_fft,
        "window_function": "hann (periodic), zero-padded at the end to n_fft",
        "center": false,
        "n_mels": cfg.n_mels,
        "mel_scale": "htk",
        "mel_norm": null,
        "fmin_hz": cfg.fmin_hz,
        "fmax_hz": cfg.fmax_hz,
        "spectrum": "power",
        "log": "natural log of mel power + log_offset",
        "log_offset": cfg.log_offset,
        "normalization": "per mel band: (x - frontend.mean) / frontend.std, tensors in model.safetensors",
        "example_window_frames": cfg.window_frames,
        "example_window_secs": cfg.window_frames as f64 * cfg.hop_length as f64 / cfg.sample_rate as f64,
        "example_hop_frames": cfg.window_hop_frames,
        "trim_silence": cfg.trim_silence,
        "silence_threshold_db": cfg.silence_threshold_db,
        "file_prediction": "mean of per-window softmax probabilities",
        "lathe_frontend": cfg,
    })
}

/// Writes a complete model folder at `target` (staged, then swapped in atomically).
pub fn write_model_dir(
    target: &Path,
    frontend: &FrontEndConfig,
    model_config: serde_json::Value,
    tensors: &[(String, Tensor)],
    labels: &[String],
    template: &str,
    manifest: &serde_json::Value,
) -> Result<()> {
    let staging = crate::fsutil::temp_sibling(target).with_extension("staging");
    if staging.exists() {
        std::fs::remove_dir_all(&staging).map_err(|e| Error::io("clearing", &staging, e))?;
    }
    std::fs::create_dir_all(&staging).map_err(|e| Error::io("creating", &staging, e))?;
    let labels_json = serde_json::to_string(labels).unwrap_or_default();
    st::save(
        &staging.join(crate::train::run_dir::MODEL_WEIGHTS),
        tensors,
        &[("lathe_task", TASK_ID.into()), ("labels", labels_json)],
    )?;
    let id2label: BTreeMap<String, &String> = labels
        .iter()
        .enumerate()
        .map(|(i, l)| (i.to_string(), l))
        .collect();
    let label2id: BTreeMap<&String, usize> =
        labels.iter().enumerate().map(|(i, l)| (l, i)).collect();
    let mut config = json!({
        "model_type": "lathe_sound_classifier",
        "num_labels": labels.len(),
        "id2label": id2label,
        "label2id": label2id,
        "lathe": { "task": TASK_ID, "template": template, "version": env!("CARGO_PKG_VERSION"), "format_version": MODEL_FORMAT_VERSION },
    });
    if let (Some(c), Some(extra)) = (config.as_object_mut(), model_config.as_object()) {
        c.extend(extra.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    write_json(&staging.join(crate::train::run_dir::MODEL_CONFIG), &config)?;
    write_json(
        &staging.join("feature_extractor_config.json"),
        &feature_extractor_config(frontend),
    )?;
    write_json(&staging.join("manifest.json"), manifest)?;
    replace_dir(&staging, target)
}

/// A loaded sound classifier.
pub struct SoundModel {
    net: SoundPredictor,
    labels: Vec<String>,
}

impl SoundModel {
    /// Loads a model folder written by [`write_model_dir`].
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
            let Some(slot) = labels.get_mut(i) else {
                return Err(bad("id2label"));
            };
            *slot = name.to_string();
        }
        let fe_path = dir.join("feature_extractor_config.json");
        let fe: serde_json::Value = read_json(&fe_path)?;
        let frontend: FrontEndConfig = serde_json::from_value(fe["lathe_frontend"].clone())
            .map_err(|_| {
                Error::model(
                    "feature_extractor_config.json has no valid `lathe_frontend`; re-export the model",
                    &fe_path,
                )
            })?;
        let weights = dir.join(crate::train::run_dir::MODEL_WEIGHTS);
        let (tensors, _) = st::load(&weights, device)?;
        let get = |k: &str| {
            tensors
                .get(k)
                .cloned()
                .ok_or_else(|| Error::model(format!("missing tensor `{k}`"), &weights))
        };
        let net = match config["algorithm"].as_str() {
            Some("cnn") => {
                let cnn_cfg: AudioCnnConfig =
                    serde_json::from_value(config["cnn"].clone()).map_err(|_| bad("cnn"))?;
                if labels.len() != cnn_cfg.num_classes {
                    return Err(bad("num_labels"));
                }
                let (mean, std) = (get("frontend.mean")?, get("frontend.std")?);
                let vb = VarBuilder::from_tensors(tensors, DType::F32, device);
                let cnn = AudioCnn::new(cnn_cfg, vb).map_err(|e| {
                    Error::model(format!("weights do not fit the network ({e})"), &weights)
                })?;
                SoundPredictor::Cnn(SoundNet {
                    frontend: LogMel::new(frontend),
                    cnn,
                    mean,
                    std,
                    device: device.clone(),
                })
            }
            Some("transfer") => {
                let kind: HeadKind =
                    serde_json::from_value(config["head"].clone()).map_err(|_| bad("head"))?;
                let head = Head::from_tensors(kind, &tensors)
                    .map_err(|e| Error::model(format!("{e}"), &weights))?;
                let encoder_tensors = || -> HashMap<String, Tensor> {
                    tensors
                        .iter()
                        .filter_map(|(k, v)| {
                            k.strip_prefix("encoder.")
                                .map(|n| (n.to_string(), v.clone()))
                        })
                        .collect()
                };
                let encoder = match config["encoder"].as_str() {
                    // The MFCC parts are in the layout only of models that name them.
                    Some("logmel_mfcc_stats") => Encoder::statistics_layout(&frontend, true),
                    Some("logmel_stats") => Encoder::statistics_layout(&frontend, false),
                    Some("speech_embedding") => Encoder::Speech(Box::new(
                        SpeechEmbedding::from_tensors(&encoder_tensors(), device)
                            .map_err(|e| Error::model(format!("{e}"), &weights))?,
                    )),
                    Some("whisper_tiny_en") => Encoder::Whisper(Box::new(
                        WhisperEncoder::from_tensors(&encoder_tensors(), device)
                            .map_err(|e| Error::model(format!("{e}"), &weights))?,
                    )),
                    Some("yamnet") => Encoder::Yamnet(Box::new(
                        Yamnet::from_tensors(&encoder_tensors(), device)
                            .map_err(|e| Error::model(format!("{e}"), &weights))?,
                    )),
                    // Models from before the statistics encoder name CREPE or nothing.
                    Some("crepe_tiny") | None => Encoder::Crepe(Box::new(
                        Crepe::from_tensors(&encoder_tensors(), device)
                            .map_err(|e| Error::model(format!("{e}"), &weights))?,
                    )),
                    Some(_) => return Err(bad("encoder")),
                };
                let hop = frontend.hop_length;
                SoundPredictor::Transfer(TransferNet {
                    encoder,
                    head,
                    window: frontend.window_frames * hop,
                    hop: frontend.window_hop_frames * hop,
                    device: device.clone(),
                })
            }
            _ => return Err(bad("algorithm")),
        };
        Ok(Self { net, labels })
    }
}

impl Model for SoundModel {
    fn labels(&self) -> &[String] {
        &self.labels
    }

    fn predict(&self, inputs: &[String], progress: ScanProgress<'_>) -> Vec<Result<Prediction>> {
        let mut out = Vec::with_capacity(inputs.len());
        progress(0, inputs.len() as u64);
        for input in inputs {
            let path = Path::new(input);
            let r = if path.is_file() {
                self.net
                    .predict_file(path)
                    .map(|(p, _)| Prediction::from_probabilities(input.clone(), &self.labels, &p))
            } else {
                Err(Error::data("no such sound file", path))
            };
            out.push(r);
            progress(out.len() as u64, inputs.len() as u64);
        }
        out
    }

    fn evaluate(
        &self,
        data: &Path,
        progress: ScanProgress<'_>,
        warn: &mut dyn FnMut(String),
    ) -> Result<Evaluation> {
        let never = || Ok(());
        let mut split =
            image_folder::scan(data, &sound_scan("evaluation"), &mut |_, _| {}, &never)?;
        split.relabel(&self.labels);
        for issue in &split.issues {
            warn(issue.line());
        }
        if split.files.is_empty() {
            return Err(Error::data(
                "no sound files of the model's classes found; the folder needs one subfolder per class",
                data,
            ));
        }
        let (mut truth, mut probs, mut inputs) = (Vec::new(), Vec::new(), Vec::<PathBuf>::new());
        let total = split.files.len() as u64;
        for (i, f) in split.files.iter().enumerate() {
            match self.net.predict_file(&f.path) {
                Ok((p, _)) => {
                    truth.push(f.label);
                    probs.push(p);
                    inputs.push(f.path.clone());
                }
                Err(e) => warn(format!("{e}; skipped")),
            }
            progress(i as u64 + 1, total);
        }
        Ok(Evaluation::Classification(ClassificationReport::compute(
            &self.labels,
            &truth,
            &probs,
            &inputs,
        )))
    }
}
