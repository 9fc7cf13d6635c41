//! The exported image classifier: writing the model folder (safetensors with PyTorch names,
//! `config.json`, `preprocessor_config.json`, `manifest.json`), the run's report and plots, and
//! loading a model folder back to predict and evaluate.

use crate::data::image_decode::Preprocessing;
use crate::data::image_folder::{self, LabeledFile};
use crate::error::{Error, Result};
use crate::eval::{ClassificationReport, plots};
use crate::export::st;
use crate::fsutil::{read_json, replace_dir, write_json};
use crate::nets::backbone::Backbone;
use crate::nets::head::{Head, HeadKind};
use crate::task::{Evaluation, Model, Prediction, ScanProgress};
use crate::templates::image::classifier::{ImageSplits, image_scan};
use crate::train::EpochMetrics;
use crate::train::{Event, Phase, RunContext};
use candle_core::{D, DType, Device, Tensor};
use rayon::prelude::*;
use serde_json::json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Version of the model-folder layout.
pub const MODEL_FORMAT_VERSION: u32 = 1;

/// What goes into an exported image classifier.
pub struct ExportedImageModel<'a> {
    pub backbone: &'a Backbone,
    pub head: &'a Head,
    pub mean: &'a Tensor,
    pub std: &'a Tensor,
    pub labels: &'a [String],
    /// Multi-label models: the probability at which a label is predicted (sigmoid outputs).
    pub multi_label: Option<f32>,
}

/// How training went, for the report and the manifest.
pub struct TrainingSummary {
    pub history: Vec<EpochMetrics>,
    pub best_epoch: usize,
    pub stopped_early: bool,
    /// How the head was chosen (`train::head_choice`), when it was.
    pub head_selection: Option<serde_json::Value>,
    /// How `backbone = "auto"` chose (`backbone_choice`), when it did.
    pub backbone_selection: Option<serde_json::Value>,
}

/// Writes `report.json`, the plots and the `model/` folder of a finished run.
pub fn write_run_outputs(
    ctx: &RunContext,
    model: &ExportedImageModel,
    splits: &ImageSplits,
    outcome: &TrainingSummary,
    reports: &[(String, ClassificationReport)],
) -> Result<PathBuf> {
    let dir = &ctx.run_dir;
    let total_files = 2 + reports.len() + 4;
    let mut phase = ctx.phase(Phase::Exporting, total_files as u64);
    let mut written = 0;
    let report = json!({
        "template": ctx.project.template,
        "labels": model.labels,
        "data": {
            "num_train": splits.train.len(),
            "num_validation": splits.validation.len(),
            "num_test": splits.test.len(),
            "issues": splits.summary.issues,
        },
        "training": {
            "epochs_run": outcome.history.len(),
            "best_epoch": outcome.best_epoch,
            "stopped_early": outcome.stopped_early,
            "history": outcome.history,
            "head_selection": outcome.head_selection,
            "backbone_selection": outcome.backbone_selection,
        },
        "evaluation": reports.iter().map(|(k, v)| (k.clone(), v)).collect::<BTreeMap<_, _>>(),
        "elapsed_secs": ctx.started.elapsed().as_secs_f64(),
    });
    write_json(&dir.report_json(), &report)?;
    written += 1;
    phase.set(written);
    plots::classifier_curves(&dir.report_dir(), &outcome.history)?;
    written += 2;
    phase.set(written);
    for (name, r) in reports {
        plots::report_confusion_matrix(&dir.report_dir(), name, r)?;
        written += 1;
        phase.set(written);
    }
    let manifest = manifest(ctx, model, splits, outcome);
    let target = dir.model();
    write_model_dir(&target, model, &ctx.project.template, &manifest)?;
    phase.set(total_files as u64);
    ctx.emit(Event::Exported {
        format: "safetensors".into(),
        path: target.join(crate::train::run_dir::MODEL_WEIGHTS),
    });
    Ok(target)
}

/// The reproducibility manifest: what data, seed, parameters, backbone and Lathe made the model.
fn manifest(
    ctx: &RunContext,
    model: &ExportedImageModel,
    splits: &ImageSplits,
    outcome: &TrainingSummary,
) -> serde_json::Value {
    let data_hash = |files: &[LabeledFile]| {
        let mut h = blake3::Hasher::new();
        let mut sorted: Vec<&LabeledFile> = files.iter().collect();
        sorted.sort_by_key(|f| f.hash);
        for f in sorted {
            h.update(&f.hash);
            h.update(
                model
                    .labels
                    .get(f.label)
                    .map(String::as_bytes)
                    .unwrap_or_default(),
            );
        }
        h.finalize().to_hex().to_string()
    };
    let resolved: BTreeMap<&String, &crate::params::ParamValue> = ctx.params.0.iter().collect();
    json!({
        "lathe_version": env!("CARGO_PKG_VERSION"),
        "created": crate::train::run_dir::utc_iso(std::time::SystemTime::now()),
        "template": ctx.project.template,
        "seed": ctx.project.seed,
        "device": crate::device::label(&ctx.device),
        "params": resolved,
        "data": {
            "train": { "path": ctx.project.resolve(&ctx.project.data.train), "num_files": splits.train.len(), "blake3": data_hash(&splits.train) },
            "validation": { "num_files": splits.validation.len(), "blake3": data_hash(&splits.validation) },
            "test": { "num_files": splits.test.len(), "blake3": data_hash(&splits.test) },
        },
        "backbone": {
            "id": model.backbone.id,
            "weights_source": model.backbone.weights_source,
            "weights_blake3": model.backbone.weights_hash,
        },
        "training": { "epochs_run": outcome.history.len(), "best_epoch": outcome.best_epoch },
    })
}

/// Writes a complete model folder at `target` (staged, then swapped in atomically).
pub fn write_model_dir(
    target: &Path,
    model: &ExportedImageModel,
    template: &str,
    manifest: &serde_json::Value,
) -> Result<()> {
    let staging = crate::fsutil::temp_sibling(target).with_extension("staging");
    if staging.exists() {
        std::fs::remove_dir_all(&staging).map_err(|e| Error::io("clearing", &staging, e))?;
    }
    std::fs::create_dir_all(&staging).map_err(|e| Error::io("creating", &staging, e))?;
    let mut tensors = model.backbone.state_dict();
    tensors.extend(model.head.export_tensors(model.mean, model.std)?);
    let labels_json = serde_json::to_string(model.labels).unwrap_or_default();
    st::save(
        &staging.join(crate::train::run_dir::MODEL_WEIGHTS),
        &tensors,
        &[
            ("lathe_task", task_id(model).into()),
            ("labels", labels_json),
        ],
    )?;
    let id2label: BTreeMap<String, &String> = model
        .labels
        .iter()
        .enumerate()
        .map(|(i, l)| (i.to_string(), l))
        .collect();
    let label2id: BTreeMap<&String, usize> = model
        .labels
        .iter()
        .enumerate()
        .map(|(i, l)| (l, i))
        .collect();
    let pre = &model.backbone.preprocessing;
    let torchvision = match (&model.head.kind, model.backbone.id.as_str()) {
        (HeadKind::Logistic, "mobilenet_v2") => Some(format!(
            "torchvision.models.mobilenet_v2(num_classes={})",
            model.labels.len()
        )),
        _ => None,
    };
    let config = json!({
        "model_type": "lathe_image_classifier",
        "backbone": model.backbone.id,
        "feature_dim": model.backbone.feature_dim,
        "head": model.head.kind,
        "image_size": pre.width,
        "num_labels": model.labels.len(),
        "id2label": id2label,
        "label2id": label2id,
        "torchvision_equivalent": torchvision,
        "problem_type": if model.multi_label.is_some() { "multi_label_classification" } else { "single_label_classification" },
        "threshold": model.multi_label,
        "lathe": { "task": task_id(model), "template": template, "version": env!("CARGO_PKG_VERSION"), "format_version": MODEL_FORMAT_VERSION },
    });
    write_json(&staging.join(crate::train::run_dir::MODEL_CONFIG), &config)?;
    let preprocessor = json!({
        "image_processor_type": "LatheImageProcessor",
        "do_convert_rgb": true,
        "do_resize": true,
        "size": { "height": pre.height, "width": pre.width },
        "resize_policy": "whole image to size, aspect ratio not kept",
        "resample": 2,
        "resample_name": "bilinear (antialiased, as PIL)",
        "do_rescale": true,
        "rescale_factor": 1.0 / 255.0,
        "do_normalize": true,
        "image_mean": pre.mean.map(short_f64),
        "image_std": pre.std.map(short_f64),
    });
    write_json(&staging.join("preprocessor_config.json"), &preprocessor)?;
    write_json(&staging.join("manifest.json"), manifest)?;
    replace_dir(&staging, target)
}

/// The task that trained (and loads) `model`.
fn task_id(model: &ExportedImageModel) -> &'static str {
    if model.multi_label.is_some() {
        crate::templates::image::multilabel::TASK_ID
    } else {
        "image-classification"
    }
}

/// An f32 as the f64 with the same shortest decimal form (0.498f32 → 0.498, not 0.49799999…).
fn short_f64(x: f32) -> f64 {
    x.to_string().parse().unwrap_or(x as f64)
}

/// A loaded image classifier.
pub struct ImageModel {
    backbone: Backbone,
    head: Head,
    labels: Vec<String>,
    device: Device,
    /// Multi-label models: the prediction threshold of every label.
    multi_label: Option<f32>,
}

impl ImageModel {
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
        let backbone_id = config["backbone"].as_str().ok_or_else(|| bad("backbone"))?;
        let size = config["image_size"]
            .as_u64()
            .ok_or_else(|| bad("image_size"))? as u32;
        let head_kind: HeadKind =
            serde_json::from_value(config["head"].clone()).map_err(|_| bad("head"))?;
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
        let pre_path = dir.join("preprocessor_config.json");
        let pre_json: serde_json::Value = read_json(&pre_path)?;
        let triple = |key: &str| -> Result<[f32; 3]> {
            let v: Vec<f32> = serde_json::from_value(pre_json[key].clone()).map_err(|_| {
                Error::model(
                    format!("preprocessor_config.json has no valid `{key}`"),
                    &pre_path,
                )
            })?;
            v.try_into()
                .map_err(|_| Error::model(format!("`{key}` must have 3 values"), &pre_path))
        };
        let (tensors, _) = st::load(&dir.join(crate::train::run_dir::MODEL_WEIGHTS), device)?;
        let head = Head::from_tensors(head_kind, &tensors).map_err(|e| {
            Error::model(
                format!("{e}"),
                dir.join(crate::train::run_dir::MODEL_WEIGHTS),
            )
        })?;
        let mut backbone = Backbone::from_tensors(backbone_id, tensors, size, 0)?;
        backbone.preprocessing = Preprocessing {
            width: size,
            height: size,
            mean: triple("image_mean")?,
            std: triple("image_std")?,
        };
        let multi_label = match config["problem_type"].as_str() {
            Some("multi_label_classification") => Some(
                config["threshold"]
                    .as_f64()
                    .ok_or_else(|| bad("threshold"))? as f32,
            ),
            _ => None,
        };
        Ok(Self {
            backbone,
            head,
            labels,
            device: device.clone(),
            multi_label,
        })
    }
}

impl ImageModel {
    /// The backbone (with the model's preprocessing).
    pub fn backbone(&self) -> &Backbone {
        &self.backbone
    }

    /// The backbone alone (the data explorer's feature extractor).
    pub fn into_backbone(self) -> Backbone {
        self.backbone
    }

    /// The classifier head (over raw backbone features).
    pub fn head(&self) -> &Head {
        &self.head
    }

    /// Multi-label models: the threshold at which a label is predicted (sigmoid outputs).
    pub fn multi_label(&self) -> Option<f32> {
        self.multi_label
    }
}

/// Class probabilities of normalized CHW images through `backbone` and a raw-feature `head`.
fn probabilities(
    backbone: &Backbone,
    head: &Head,
    images: Vec<Vec<f32>>,
    device: &Device,
    multi_label: bool,
) -> Result<Vec<Vec<f32>>> {
    let pre = &backbone.preprocessing;
    let n = images.len();
    let flat: Vec<f32> = images.into_iter().flatten().collect();
    let x = Tensor::from_vec(
        flat,
        (n, 3, pre.height as usize, pre.width as usize),
        device,
    )?;
    let f = backbone.features(&x, false)?.to_dtype(DType::F32)?;
    let logits = head.forward(&f, false, None)?;
    let p = if multi_label {
        candle_nn::ops::sigmoid(&logits)?
    } else {
        candle_nn::ops::softmax(&logits, D::Minus1)?
    };
    Ok(p.to_vec2::<f32>()?)
}

/// Class probabilities (softmax) for image files, in batches of 32; each file may fail on its own.
pub fn predict_files(
    backbone: &Backbone,
    head: &Head,
    device: &Device,
    paths: &[PathBuf],
    progress: ScanProgress<'_>,
) -> Vec<Result<Vec<f32>>> {
    predict_files_as(backbone, head, device, paths, false, progress)
}

/// Probabilities for image files: softmax over classes, or one sigmoid per label when
/// `multi_label`; in batches of 32, each file may fail on its own.
pub fn predict_files_as(
    backbone: &Backbone,
    head: &Head,
    device: &Device,
    paths: &[PathBuf],
    multi_label: bool,
    progress: ScanProgress<'_>,
) -> Vec<Result<Vec<f32>>> {
    let mut out = Vec::with_capacity(paths.len());
    let pre = &backbone.preprocessing;
    progress(0, paths.len() as u64);
    for chunk in paths.chunks(32) {
        let decoded: Vec<std::result::Result<Vec<f32>, String>> = chunk
            .par_iter()
            .map(|p| {
                std::fs::read(p)
                    .map_err(|e| format!("cannot read image ({e})"))
                    .and_then(|b| pre.load(&b))
            })
            .collect();
        let ok: Vec<Vec<f32>> = decoded
            .iter()
            .filter_map(|r| r.as_ref().ok().cloned())
            .collect();
        let probs = if ok.is_empty() {
            Ok(Vec::new())
        } else {
            probabilities(backbone, head, ok, device, multi_label)
        };
        let mut probs_iter = match probs {
            Ok(p) => p.into_iter(),
            Err(e) => {
                let msg = e.to_string();
                out.extend(chunk.iter().map(|_| Err(Error::Unsupported(msg.clone()))));
                continue;
            }
        };
        for (path, r) in chunk.iter().zip(decoded) {
            out.push(match r {
                Ok(_) => probs_iter
                    .next()
                    .ok_or_else(|| Error::Unsupported("missing prediction".into())),
                Err(reason) => Err(Error::data(reason, path)),
            });
        }
        progress(out.len() as u64, paths.len() as u64);
    }
    out
}

impl Model for ImageModel {
    fn labels(&self) -> &[String] {
        &self.labels
    }

    fn predict(&self, inputs: &[String], progress: ScanProgress<'_>) -> Vec<Result<Prediction>> {
        let paths: Vec<PathBuf> = inputs.iter().map(PathBuf::from).collect();
        let multi = self.multi_label;
        predict_files_as(
            &self.backbone,
            &self.head,
            &self.device,
            &paths,
            multi.is_some(),
            progress,
        )
        .into_iter()
        .zip(inputs)
        .map(|(r, input)| {
            r.map(|p| {
                let pred = Prediction::from_probabilities(input.clone(), &self.labels, &p);
                match multi {
                    Some(t) => pred.with_labels_at(t),
                    None => pred,
                }
            })
        })
        .collect()
    }

    fn evaluate(
        &self,
        data: &Path,
        progress: ScanProgress<'_>,
        warn: &mut dyn FnMut(String),
    ) -> Result<Evaluation> {
        if let Some(threshold) = self.multi_label {
            return crate::templates::image::multilabel::evaluate_folder(
                &self.backbone,
                &self.head,
                &self.device,
                &self.labels,
                threshold,
                data,
                progress,
                warn,
            );
        }
        let never = || Ok(());
        let mut split =
            image_folder::scan(data, &image_scan("evaluation"), &mut |_, _| {}, &never)?;
        split.relabel(&self.labels);
        for issue in &split.issues {
            warn(issue.line());
        }
        if split.files.is_empty() {
            return Err(Error::data(
                "no images of the model's classes found; the folder needs one subfolder per class",
                data,
            ));
        }
        let paths: Vec<PathBuf> = split.files.iter().map(|f| f.path.clone()).collect();
        let results = predict_files(&self.backbone, &self.head, &self.device, &paths, progress);
        let (mut truth, mut probs, mut inputs) = (Vec::new(), Vec::new(), Vec::new());
        for (f, r) in split.files.iter().zip(results) {
            match r {
                Ok(p) => {
                    truth.push(f.label);
                    probs.push(p);
                    inputs.push(f.path.clone());
                }
                Err(e) => warn(format!("{e}; skipped")),
            }
        }
        Ok(Evaluation::Classification(ClassificationReport::compute(
            &self.labels,
            &truth,
            &probs,
            &inputs,
        )))
    }
}

/// Golden-check helper: ImageNet logits of the pretrained backbone's own classifier.
pub fn imagenet_probabilities(backbone: &Backbone, image: &[u8]) -> Result<Vec<f32>> {
    let pre = &backbone.preprocessing;
    let x = pre.load(image).map_err(Error::Unsupported)?;
    let fc = crate::nets::conv_bn::Linear::load(&backbone.tensors, backbone.imagenet_classifier())?;
    let device = backbone
        .tensors
        .get(&format!("{}.weight", backbone.imagenet_classifier()))
        .map(|t| t.device().clone())
        .unwrap_or(Device::Cpu);
    let x = Tensor::from_vec(x, (1, 3, pre.height as usize, pre.width as usize), &device)?;
    let f = backbone
        .features(&x, false)?
        .to_dtype(candle_core::DType::F32)?;
    let p = candle_nn::ops::softmax(&fc.forward(&f)?, D::Minus1)?;
    Ok(p.squeeze(0)?.to_vec1::<f32>()?)
}
