//! The object detector as a model: backbone + [`DetectHead`] running on batches, the exported
//! model folder (`model.safetensors` with PyTorch names, `config.json` with labels, stride,
//! input size and thresholds, `preprocessor_config.json`, `manifest.json`), and loading it back
//! to predict boxes and evaluate mAP.

use crate::data::annotations::{self, Rect};
use crate::data::image_decode::{self, Preprocessing};
use crate::error::{Error, Result};
use crate::eval::map::{Detection, DetectionReport};
use crate::export::st;
use crate::fsutil::{read_json, replace_dir, write_json};
use crate::nets::backbone::Backbone;
use crate::nets::detect_head::{self, DecodeConfig, DetectHead, RawBoxes, STRIDE, TAPS};
use crate::task::{Evaluation, Model, PredictedBox, Prediction, ScanProgress};
use candle_core::{DType, Device, Tensor};
use rayon::prelude::*;
use serde_json::json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Task id of the object detector.
pub const TASK_ID: &str = "object-detection";
/// Version of the model-folder layout.
pub const MODEL_FORMAT_VERSION: u32 = 1;
/// Decoding used for evaluation: a low threshold so the precision/recall curve is complete.
pub const EVAL_CONFIDENCE: f32 = 0.01;

/// A decoded, normalized image and its original size, or why it could not be read.
type Decoded = std::result::Result<(Vec<f32>, (u32, u32)), String>;

/// Backbone + head + what decoding needs.
pub struct Detector {
    pub backbone: Backbone,
    pub head: DetectHead,
    pub labels: Vec<String>,
    pub image_size: u32,
    pub decode: DecodeConfig,
}

impl Detector {
    /// Raw outputs `(heatmap logits, box channels)` of a normalized batch `[N, 3, S, S]`.
    pub fn forward(&self, x: &Tensor, train: bool) -> Result<(Tensor, Tensor)> {
        let maps = self.backbone.feature_maps(x, train, &TAPS)?;
        let (Some(s16), Some(s32)) = (maps.first(), maps.get(1)) else {
            return Err(Error::Unsupported(
                "backbone returned no feature maps".into(),
            ));
        };
        Ok(self.head.forward(s16, s32)?)
    }

    /// Heatmap probabilities and box channels of a batch of normalized images (`None` when empty).
    fn dense(&self, images: Vec<Vec<f32>>, device: &Device) -> Result<Option<Dense>> {
        let n = images.len();
        if n == 0 {
            return Ok(None);
        }
        let s = self.image_size as usize;
        let x = Tensor::from_vec(
            images.into_iter().flatten().collect::<Vec<f32>>(),
            (n, 3, s, s),
            device,
        )?;
        let (heat, boxes) = self.forward(&x, false)?;
        let (_, classes, grid_h, grid_w) = heat.dims4()?;
        let heat = candle_nn::ops::sigmoid(&heat)?
            .to_dtype(DType::F32)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        let boxes = boxes
            .to_dtype(DType::F32)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        Ok(Some(Dense {
            batch: n,
            classes,
            grid_h,
            grid_w,
            heat,
            boxes,
        }))
    }

    /// Boxes (in model-input pixels) of a batch of normalized images.
    pub fn detect(
        &self,
        images: Vec<Vec<f32>>,
        cfg: &DecodeConfig,
        device: &Device,
    ) -> Result<Vec<Vec<Detection>>> {
        let Some(d) = self.dense(images, device)? else {
            return Ok(Vec::new());
        };
        let (n, c, gh, gw) = (d.batch, d.classes, d.grid_h, d.grid_w);
        let (heat, boxes) = (d.heat, d.boxes);
        let (hp, bp) = (c * gh * gw, 4 * gh * gw);
        Ok((0..n)
            .map(|i| {
                detect_head::decode(
                    heat.get(i * hp..(i + 1) * hp).unwrap_or_default(),
                    boxes.get(i * bp..(i + 1) * bp).unwrap_or_default(),
                    c,
                    gh,
                    gw,
                    STRIDE,
                    cfg,
                )
            })
            .collect())
    }

    /// Boxes in each file's own pixels, in batches of 16; each file may fail on its own.
    pub fn detect_files(
        &self,
        paths: &[PathBuf],
        cfg: &DecodeConfig,
        device: &Device,
        progress: ScanProgress<'_>,
    ) -> Vec<Result<Vec<Detection>>> {
        let pre = &self.backbone.preprocessing;
        let mut out = Vec::with_capacity(paths.len());
        progress(0, paths.len() as u64);
        for chunk in paths.chunks(16) {
            let decoded: Vec<Decoded> = chunk.par_iter().map(|p| decode_file(p, pre)).collect();
            let ok: Vec<Vec<f32>> = decoded
                .iter()
                .filter_map(|r| r.as_ref().ok().map(|x| x.0.clone()))
                .collect();
            let mut found = match self.detect(ok, cfg, device) {
                Ok(d) => d.into_iter(),
                Err(e) => {
                    let msg = e.to_string();
                    out.extend(chunk.iter().map(|_| Err(Error::Unsupported(msg.clone()))));
                    continue;
                }
            };
            for (path, r) in chunk.iter().zip(decoded) {
                out.push(match r {
                    Ok((_, (w, h))) => {
                        let (sx, sy) = (w as f32 / pre.width as f32, h as f32 / pre.height as f32);
                        Ok(found
                            .next()
                            .unwrap_or_default()
                            .into_iter()
                            .map(|d| Detection {
                                rect: d.rect.scale(sx, sy).clip(w as f32, h as f32),
                                ..d
                            })
                            .filter(|d| d.rect.area() > 0.0)
                            .collect())
                    }
                    Err(reason) => Err(Error::data(reason, path)),
                });
            }
            progress(out.len() as u64, paths.len() as u64);
        }
        out
    }

    /// Every cell's box before thresholds and NMS ([`RawBoxes`]: what the Core ML export's
    /// network outputs) for each image file, in batches of 16.
    pub fn raw_files(&self, paths: &[PathBuf], device: &Device) -> Vec<Result<RawBoxes>> {
        let pre = &self.backbone.preprocessing;
        let mut out = Vec::with_capacity(paths.len());
        for chunk in paths.chunks(16) {
            let decoded: Vec<Decoded> = chunk.par_iter().map(|p| decode_file(p, pre)).collect();
            let ok: Vec<Vec<f32>> = decoded
                .iter()
                .filter_map(|r| r.as_ref().ok().map(|x| x.0.clone()))
                .collect();
            let mut raw = match self.raw_outputs(ok, device) {
                Ok(r) => r.into_iter(),
                Err(e) => {
                    let msg = e.to_string();
                    out.extend(chunk.iter().map(|_| Err(Error::Unsupported(msg.clone()))));
                    continue;
                }
            };
            for (path, r) in chunk.iter().zip(decoded) {
                out.push(match r {
                    Ok(_) => raw
                        .next()
                        .ok_or_else(|| Error::Unsupported("missing raw output".into())),
                    Err(reason) => Err(Error::data(reason, path)),
                });
            }
        }
        out
    }

    /// [`RawBoxes`] of a batch of normalized images.
    pub fn raw_outputs(&self, images: Vec<Vec<f32>>, device: &Device) -> Result<Vec<RawBoxes>> {
        let Some(d) = self.dense(images, device)? else {
            return Ok(Vec::new());
        };
        let (n, c, gh, gw) = (d.batch, d.classes, d.grid_h, d.grid_w);
        let (heat, boxes) = (d.heat, d.boxes);
        let (hp, bp) = (c * gh * gw, 4 * gh * gw);
        Ok((0..n)
            .map(|i| {
                detect_head::raw_boxes(
                    heat.get(i * hp..(i + 1) * hp).unwrap_or_default(),
                    boxes.get(i * bp..(i + 1) * bp).unwrap_or_default(),
                    c,
                    gh,
                    gw,
                )
            })
            .collect())
    }

    /// mAP of the detector on a dataset with boxes in its images' pixels.
    pub fn evaluate_set(
        &self,
        set: &annotations::Annotations,
        device: &Device,
        progress: ScanProgress<'_>,
        warn: &mut dyn FnMut(String, &Path),
    ) -> DetectionReport {
        let paths: Vec<PathBuf> = set.images.iter().map(|i| i.path.clone()).collect();
        let cfg = DecodeConfig {
            confidence_threshold: EVAL_CONFIDENCE.min(self.decode.confidence_threshold),
            ..self.decode
        };
        let results = self.detect_files(&paths, &cfg, device, progress);
        let (mut dets, mut truth) = (Vec::new(), Vec::new());
        for (img, r) in set.images.iter().zip(results) {
            match r {
                Ok(d) => {
                    dets.push(d);
                    truth.push(img.objects.clone());
                }
                Err(e) => warn(format!("{e}; skipped in evaluation"), &img.path),
            }
        }
        DetectionReport::compute(&self.labels, &dets, &truth)
    }
}

/// The head's outputs of a batch as flat vectors: heatmap probabilities `[N, C, H, W]` and box
/// channels `[N, 4, H, W]`.
struct Dense {
    batch: usize,
    classes: usize,
    grid_h: usize,
    grid_w: usize,
    heat: Vec<f32>,
    boxes: Vec<f32>,
}

/// A file decoded, resized to the model input and normalized, with its original size.
fn decode_file(path: &Path, pre: &Preprocessing) -> Decoded {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read image ({e})"))?;
    let rgb = image_decode::decode_rgb(&bytes)?;
    let size = rgb.dimensions();
    let resized = image_decode::resize(&rgb, pre.width, pre.height)?;
    Ok((pre.normalize(&resized), size))
}

/// Writes a complete detector folder at `target` (staged, then swapped in atomically).
pub fn write_model_dir(
    target: &Path,
    det: &Detector,
    template: &str,
    manifest: &serde_json::Value,
) -> Result<()> {
    let staging = crate::fsutil::temp_sibling(target).with_extension("staging");
    if staging.exists() {
        std::fs::remove_dir_all(&staging).map_err(|e| Error::io("clearing", &staging, e))?;
    }
    std::fs::create_dir_all(&staging).map_err(|e| Error::io("creating", &staging, e))?;
    let mut tensors = det.backbone.state_dict();
    tensors.extend(det.head.state_dict());
    st::save(
        &staging.join(crate::train::run_dir::MODEL_WEIGHTS),
        &tensors,
        &[
            ("lathe_task", TASK_ID.into()),
            (
                "labels",
                serde_json::to_string(&det.labels).unwrap_or_default(),
            ),
        ],
    )?;
    let id2label: BTreeMap<String, &String> = det
        .labels
        .iter()
        .enumerate()
        .map(|(i, l)| (i.to_string(), l))
        .collect();
    let label2id: BTreeMap<&String, usize> =
        det.labels.iter().enumerate().map(|(i, l)| (l, i)).collect();
    let pre = &det.backbone.preprocessing;
    let config = json!({
        "model_type": "lathe_object_detector",
        "architecture": "centernet",
        "backbone": det.backbone.id,
        "backbone_taps": TAPS,
        "image_size": det.image_size,
        "strides": [STRIDE],
        "head_channels": det.head.channels,
        "box_encoding": "per cell of the stride grid: heatmap = sigmoid(class logits); box = (dx, dy, ln(w/stride), ln(h/stride)); centre = ((col + dx) * stride, (row + dy) * stride); peaks = 3x3 local maxima",
        "confidence_threshold": det.decode.confidence_threshold,
        "iou_threshold": det.decode.iou_threshold,
        "max_detections": det.decode.max_detections,
        "num_labels": det.labels.len(),
        "id2label": id2label,
        "label2id": label2id,
        "lathe": { "task": TASK_ID, "template": template, "version": env!("CARGO_PKG_VERSION"), "format_version": MODEL_FORMAT_VERSION },
    });
    write_json(&staging.join(crate::train::run_dir::MODEL_CONFIG), &config)?;
    let preprocessor = json!({
        "image_processor_type": "LatheImageProcessor",
        "do_convert_rgb": true,
        "do_resize": true,
        "size": { "height": pre.height, "width": pre.width },
        "resize_policy": "whole image to size, aspect ratio not kept; boxes scale back by the same factors",
        "resample": 2,
        "do_rescale": true,
        "rescale_factor": 1.0 / 255.0,
        "do_normalize": true,
        "image_mean": pre.mean,
        "image_std": pre.std,
    });
    write_json(&staging.join("preprocessor_config.json"), &preprocessor)?;
    write_json(&staging.join("manifest.json"), manifest)?;
    replace_dir(&staging, target)
}

/// A loaded detector on a device.
pub struct DetectorModel {
    pub detector: Detector,
    device: Device,
}

impl DetectorModel {
    /// Loads a folder written by [`write_model_dir`].
    pub fn load(dir: &Path, device: &Device) -> Result<Self> {
        let config_path = dir.join(crate::train::run_dir::MODEL_CONFIG);
        let config: serde_json::Value = read_json(&config_path)?;
        let bad = |what: &str| {
            Error::model(
                format!("config.json has no valid `{what}`; re-export the model"),
                &config_path,
            )
        };
        let size = config["image_size"]
            .as_u64()
            .ok_or_else(|| bad("image_size"))? as u32;
        let channels = config["head_channels"]
            .as_u64()
            .ok_or_else(|| bad("head_channels"))? as usize;
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
        let decode = DecodeConfig {
            confidence_threshold: config["confidence_threshold"]
                .as_f64()
                .ok_or_else(|| bad("confidence_threshold"))?
                as f32,
            iou_threshold: config["iou_threshold"]
                .as_f64()
                .ok_or_else(|| bad("iou_threshold"))? as f32,
            max_detections: config["max_detections"]
                .as_u64()
                .ok_or_else(|| bad("max_detections"))? as usize,
        };
        let pre_path = dir.join("preprocessor_config.json");
        let pre_json: serde_json::Value = read_json(&pre_path)?;
        let triple = |key: &str| -> Result<[f32; 3]> {
            serde_json::from_value(pre_json[key].clone()).map_err(|_| {
                Error::model(
                    format!("preprocessor_config.json has no valid `{key}`"),
                    &pre_path,
                )
            })
        };
        let weights = dir.join(crate::train::run_dir::MODEL_WEIGHTS);
        let (tensors, _) = st::load(&weights, device)?;
        let head = DetectHead::from_tensors(&tensors, labels.len(), channels)
            .map_err(|e| Error::model(format!("{e}"), &weights))?;
        let backbone_id = config["backbone"].as_str().ok_or_else(|| bad("backbone"))?;
        let mut backbone = Backbone::from_tensors(backbone_id, tensors, size, 0)?;
        backbone.preprocessing = Preprocessing {
            width: size,
            height: size,
            mean: triple("image_mean")?,
            std: triple("image_std")?,
        };
        Ok(Self {
            detector: Detector {
                backbone,
                head,
                labels,
                image_size: size,
                decode,
            },
            device: device.clone(),
        })
    }
}

/// A prediction from an image's boxes: `label` is the most confident box's label.
pub fn prediction(input: String, labels: &[String], dets: &[Detection]) -> Prediction {
    let boxes: Vec<PredictedBox> = dets
        .iter()
        .map(|d| {
            let (cx, cy) = d.rect.center();
            PredictedBox {
                label: labels.get(d.label).cloned().unwrap_or_default(),
                confidence: d.score,
                x: cx,
                y: cy,
                width: d.rect.width,
                height: d.rect.height,
            }
        })
        .collect();
    Prediction {
        input,
        label: boxes.first().map(|b| b.label.clone()).unwrap_or_default(),
        boxes,
        ..Default::default()
    }
}

impl Model for DetectorModel {
    fn labels(&self) -> &[String] {
        &self.detector.labels
    }

    fn predict(&self, inputs: &[String], progress: ScanProgress<'_>) -> Vec<Result<Prediction>> {
        let paths: Vec<PathBuf> = inputs.iter().map(PathBuf::from).collect();
        self.detector
            .detect_files(&paths, &self.detector.decode, &self.device, progress)
            .into_iter()
            .zip(inputs)
            .map(|(r, input)| r.map(|d| prediction(input.clone(), &self.detector.labels, &d)))
            .collect()
    }

    fn evaluate(
        &self,
        data: &Path,
        progress: ScanProgress<'_>,
        warn: &mut dyn FnMut(String),
    ) -> Result<Evaluation> {
        let set = annotations::load(data, Some(&self.detector.labels))?;
        for issue in &set.issues {
            warn(issue.line());
        }
        if let Some(e) = set
            .issues
            .iter()
            .find(|i| i.severity == crate::data::Severity::Error)
        {
            return Err(Error::data(
                e.message.clone(),
                e.paths.first().cloned().unwrap_or(set.file.clone()),
            ));
        }
        let report = self
            .detector
            .evaluate_set(&set, &self.device, progress, &mut |m, p| {
                warn(format!("{m}: {}", p.display()))
            });
        Ok(Evaluation::Detection(report))
    }
}

/// Box of a prediction in top-left form.
pub fn predicted_rect(b: &PredictedBox) -> Rect {
    Rect::from_center(b.x, b.y, b.width, b.height)
}
