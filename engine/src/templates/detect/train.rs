//! The object detector, trained as Create ML does it (transfer learning): read and check the
//! annotations, hold out a seeded validation share of the images, train the detection head on
//! the frozen pretrained MobileNetV2 (`epochs`), then train the head together with the last
//! backbone blocks, batch norm in train mode, at a smaller learning rate (`fine_tune_epochs`).
//! Every batch is augmented afresh with boxes kept consistent (crop / pad, flip, colour). The
//! run evaluates mAP on validation and test and exports the model folder.

use crate::data::annotations::{self, AnnotatedImage, Annotations, ObjectBox};
use crate::data::box_augment::BoxAugment;
use crate::data::image_decode::{self, Preprocessing};
use crate::data::{ClassCount, DataKind, DatasetSummary, HealthIssue, Severity, SplitSummary};
use crate::error::Result;
use crate::eval::map::DetectionReport;
use crate::eval::plots;
use crate::fit::optim::{AdamW, cosine_lr};
use crate::fsutil::write_json;
use crate::nets::backbone::Backbone;
use crate::nets::detect_head::{self, DetectHead, STRIDE};
use crate::params::{ParamSpec, ResolvedParams};
use crate::task::{Model, ResolvedData, ScanProgress, Task};
use crate::templates::detect::model::{self as detect_model, Detector, DetectorModel, TASK_ID};
pub use crate::templates::detect::params::{DetectParams, param_specs};
use crate::templates::detect::resume::{self as detect_resume, Checkpoint};
use crate::train::scan_report::SplitSizes;
use crate::train::{Control, EpochMetrics, Event, Phase, RunContext};
use candle_core::{DType, Device, Tensor};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rayon::prelude::*;
use serde_json::json;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Object detection with transfer learning.
pub struct ObjectDetection;

impl Task for ObjectDetection {
    fn id(&self) -> &'static str {
        TASK_ID
    }

    fn param_specs(&self) -> Vec<ParamSpec> {
        param_specs()
    }

    fn scan(
        &self,
        data: &ResolvedData,
        params: &ResolvedParams,
        progress: ScanProgress<'_>,
        _control: &Control,
    ) -> Result<DatasetSummary> {
        progress(0, 1);
        let splits = load_splits(data, params.float("validation_split"))?;
        progress(1, 1);
        Ok(splits.summary)
    }

    fn train(&self, ctx: &RunContext) -> Result<PathBuf> {
        train(ctx)
    }

    fn load(&self, model_dir: &Path, device: &Device) -> Result<Box<dyn Model>> {
        Ok(Box::new(DetectorModel::load(model_dir, device)?))
    }
}

/// The data of a detection run: training, validation and test images with their boxes.
pub struct DetectSplits {
    pub labels: Vec<String>,
    pub train: Vec<AnnotatedImage>,
    pub validation: Vec<AnnotatedImage>,
    pub test: Vec<AnnotatedImage>,
    pub train_set: Annotations,
    pub summary: DatasetSummary,
}

fn split_summary(
    name: &str,
    root: &Path,
    labels: &[String],
    images: &[AnnotatedImage],
    skipped: usize,
) -> SplitSummary {
    let mut classes: Vec<ClassCount> = labels
        .iter()
        .map(|l| ClassCount {
            label: l.clone(),
            count: 0,
            examples: Vec::new(),
        })
        .collect();
    for img in images {
        for o in &img.objects {
            if let Some(c) = classes.get_mut(o.label) {
                c.count += 1;
                if c.examples.len() < 3 && !c.examples.contains(&img.path) {
                    c.examples.push(img.path.clone());
                }
            }
        }
    }
    SplitSummary {
        name: name.into(),
        root: root.to_path_buf(),
        classes,
        num_examples: images.len(),
        num_skipped: skipped,
    }
}

/// Reads train (and validation / test) annotations and splits off validation images.
pub fn load_splits(data: &ResolvedData, validation_split: f64) -> Result<DetectSplits> {
    let train_set = annotations::load(&data.train, None)?;
    let labels = train_set.labels.clone();
    let mut issues: Vec<HealthIssue> = train_set.issues.clone();
    let mut train = train_set.images.clone();
    let validation = match &data.validation {
        Some(dir) => {
            let v = annotations::load(dir, Some(&labels))?;
            issues.extend(v.issues);
            v.images
        }
        None => {
            let n = ((train.len() as f64) * validation_split).round() as usize;
            let n = if validation_split > 0.0 && train.len() >= 4 {
                n.max(1)
            } else {
                0
            };
            let mut order: Vec<usize> = (0..train.len()).collect();
            order.shuffle(&mut StdRng::seed_from_u64(data.seed ^ 0x5EED_DE7E));
            let held: HashSet<usize> = order.into_iter().take(n).collect();
            let (v, t): (Vec<_>, Vec<_>) = train
                .into_iter()
                .enumerate()
                .partition(|(i, _)| held.contains(i));
            train = t.into_iter().map(|(_, x)| x).collect();
            v.into_iter().map(|(_, x)| x).collect()
        }
    };
    let test = match &data.test {
        Some(dir) => {
            let t = annotations::load(dir, Some(&labels))?;
            issues.extend(t.issues);
            t.images
        }
        None => Vec::new(),
    };
    if !train.iter().any(|i| !i.objects.is_empty())
        && !issues.iter().any(|i| i.severity == Severity::Error)
    {
        issues.push(HealthIssue::error(
            "no_boxes",
            "no training image with a box is left after the validation split; add annotated images",
            vec![train_set.file.clone()],
        ));
    }
    let counts = train_set.counts();
    for (label, count) in labels.iter().zip(&counts) {
        if *count < 2 {
            issues.push(HealthIssue::warning(
                "too_few_examples",
                format!("label \"{label}\" has {count} box; add more examples of it"),
                vec![train_set.file.clone()],
            ));
        }
    }
    let root = |p: &Option<PathBuf>| p.clone().unwrap_or_else(|| data.train.clone());
    let mut splits = vec![split_summary("train", &data.train, &labels, &train, 0)];
    if !validation.is_empty() {
        splits.push(split_summary(
            "validation",
            &root(&data.validation),
            &labels,
            &validation,
            0,
        ));
    }
    if let Some(t) = &data.test {
        splits.push(split_summary("test", t, &labels, &test, 0));
    }
    let mut facts = BTreeMap::new();
    facts.insert(
        "format".into(),
        match train_set.format {
            annotations::Format::CreateMl => "Create ML JSON".to_string(),
            annotations::Format::Coco => "COCO JSON".to_string(),
        },
    );
    facts.insert(
        "annotation_file".into(),
        train_set.file.display().to_string(),
    );
    facts.insert("boxes".into(), counts.iter().sum::<usize>().to_string());
    let summary = DatasetSummary {
        kind: DataKind::Detection,
        labels: labels.clone(),
        splits,
        issues,
        facts,
    };
    Ok(DetectSplits {
        labels,
        train,
        validation,
        test,
        train_set,
        summary,
    })
}

/// Decodes one image, resizes it to the model input, maps its boxes, and augments both.
pub fn load_sample(
    pre: &Preprocessing,
    img: &AnnotatedImage,
    augment: Option<(&BoxAugment, u64)>,
) -> std::result::Result<(Vec<f32>, Vec<ObjectBox>), String> {
    let bytes = std::fs::read(&img.path).map_err(|e| format!("cannot read image ({e})"))?;
    let rgb = image_decode::decode_rgb(&bytes)?;
    let (w, h) = rgb.dimensions();
    let resized = image_decode::resize(&rgb, pre.width, pre.height)?;
    let (sx, sy) = (pre.width as f32 / w as f32, pre.height as f32 / h as f32);
    let objects: Vec<ObjectBox> = img
        .objects
        .iter()
        .map(|o| ObjectBox {
            label: o.label,
            rect: o.rect.scale(sx, sy),
        })
        .collect();
    let (out, objects) = match augment {
        Some((a, seed)) if a.any() => a.apply(&resized, &objects, &mut StdRng::seed_from_u64(seed)),
        _ => (resized, objects),
    };
    Ok((pre.normalize(&out), objects))
}

/// One phase of training (frozen backbone, or fine-tuning).
struct PhasePlan {
    phase: Phase,
    epochs: usize,
    learning_rate: f64,
    train_backbone: bool,
    epoch_offset: usize,
    total_epochs: usize,
}

/// Batches of images decoded in parallel; failures warned once and skipped.
struct Loader<'a> {
    ctx: &'a RunContext,
    pre: Preprocessing,
    warned: Mutex<HashSet<PathBuf>>,
}

impl Loader<'_> {
    fn batch(
        &self,
        items: &[&AnnotatedImage],
        augment: Option<(&BoxAugment, u64)>,
    ) -> Result<Option<(Tensor, Vec<Vec<ObjectBox>>)>> {
        let decoded: Vec<_> = items
            .par_iter()
            .enumerate()
            .map(|(k, it)| {
                load_sample(
                    &self.pre,
                    it,
                    augment.map(|(a, s)| (a, s.wrapping_add(k as u64 * 0x9E37_79B9))),
                )
            })
            .collect();
        let (mut rows, mut objects) = (Vec::new(), Vec::new());
        for (it, r) in items.iter().zip(decoded) {
            match r {
                Ok((x, o)) => {
                    rows.extend(x);
                    objects.push(o);
                }
                Err(reason) => {
                    if self
                        .warned
                        .lock()
                        .map(|mut w| w.insert(it.path.clone()))
                        .unwrap_or(false)
                    {
                        self.ctx
                            .warn(format!("{reason}; the image was skipped"), Some(&it.path));
                    }
                }
            }
        }
        if objects.is_empty() {
            return Ok(None);
        }
        let (n, s) = (objects.len(), self.pre.width as usize);
        Ok(Some((
            Tensor::from_vec(rows, (n, 3, s, s), &self.ctx.device)?,
            objects,
        )))
    }
}

fn scalar(t: &Tensor) -> Result<f64> {
    Ok(t.to_dtype(DType::F64)?.to_scalar::<f64>()?)
}

/// Loss of a batch (training or validation).
fn batch_loss(
    det: &Detector,
    x: &Tensor,
    objects: &[Vec<ObjectBox>],
    train: bool,
) -> Result<detect_head::Loss> {
    let (heat, boxes) = det.forward(x, train)?;
    let (_, c, gh, gw) = heat.dims4()?;
    let targets = detect_head::build_targets(objects, c, gh, gw, STRIDE);
    Ok(detect_head::loss(&heat, &boxes, &targets)?)
}

#[allow(clippy::too_many_arguments)]
fn run_phase(
    ctx: &RunContext,
    loader: &Loader,
    det: &Detector,
    p: &DetectParams,
    plan: &PhasePlan,
    train: &[AnnotatedImage],
    validation: &[AnnotatedImage],
    history: &mut Vec<EpochMetrics>,
    resume: Option<&Checkpoint>,
) -> Result<()> {
    let mut vars: Vec<(candle_core::Var, bool)> = det
        .head
        .vars()
        .into_iter()
        .map(|v| {
            let decay = v.rank() > 1;
            (v, decay)
        })
        .collect();
    if plan.train_backbone {
        vars.extend(det.backbone.vars().into_iter().map(|v| {
            let decay = v.rank() > 1;
            (v, decay)
        }));
    }
    let mut opt = AdamW::new(vars, plan.learning_rate, p.weight_decay)?;
    if let Some(c) = resume {
        opt.load_state(&c.tensors, c.optimizer_step)?;
    }
    // Epochs of this phase already done (by a run this one resumes).
    let done = history
        .len()
        .saturating_sub(plan.epoch_offset)
        .min(plan.epochs);
    let batch = p.batch_size.clamp(1, train.len().max(1));
    let steps_per_epoch = train.len().div_ceil(batch);
    let total_steps = (steps_per_epoch * plan.epochs).max(1);
    let warmup = steps_per_epoch.min(total_steps / 10).max(1);
    let step_every = (steps_per_epoch / 10).max(1);
    let mut phase = ctx.phase(plan.phase, plan.epochs as u64);
    phase.set(done as u64);
    let started = std::time::Instant::now();
    let seed = ctx.project.seed;
    // Long epochs are also checkpointed part-way.
    let every = crate::train::midway::interval();
    let mut saved = std::time::Instant::now();
    for e in done + 1..=plan.epochs {
        let epoch = plan.epoch_offset + e;
        let mut rng = StdRng::seed_from_u64(
            seed ^ 0xDE7E ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
        );
        let mut order: Vec<usize> = (0..train.len()).collect();
        order.shuffle(&mut rng);
        let (mut loss_sum, mut seen) = (0f64, 0usize);
        // A run resumed from a checkpoint written part-way through this epoch skips its done steps.
        let mut skip = 0;
        if let Some(part) = resume
            .and_then(|c| c.part.as_ref())
            .filter(|_| e == done + 1)
        {
            (skip, loss_sum, seen) = (part.steps, part.loss_sum, part.seen);
        }
        for (step, chunk) in order.chunks(batch).enumerate().skip(skip) {
            ctx.check()?;
            let items: Vec<&AnnotatedImage> = chunk.iter().filter_map(|&i| train.get(i)).collect();
            let aug_seed = seed ^ (epoch as u64) << 32 ^ (step as u64) << 12;
            let Some((x, objects)) = loader.batch(&items, Some((&p.augment, aug_seed)))? else {
                continue;
            };
            opt.learning_rate = cosine_lr(
                plan.learning_rate,
                (e - 1) * steps_per_epoch + step,
                total_steps,
                warmup,
            );
            let loss = batch_loss(det, &x, &objects, plan.train_backbone)?;
            let value = scalar(&loss.total)?;
            crate::fit::diverge::check_loss(
                value,
                epoch,
                if plan.train_backbone {
                    "fine_tune_learning_rate"
                } else {
                    "learning_rate"
                },
                plan.learning_rate,
                Some(&ctx.run_dir.checkpoints()),
            )?;
            opt.apply(&loss.total.backward()?)?;
            loss_sum += value * objects.len() as f64;
            seen += objects.len();
            if step % step_every == 0 {
                ctx.emit(Event::Step {
                    epoch,
                    step,
                    steps: steps_per_epoch,
                    loss: value,
                });
            }
            if step + 1 < steps_per_epoch && saved.elapsed() >= every {
                let part = crate::train::midway::Part {
                    steps: step + 1,
                    loss_sum,
                    correct: 0,
                    seen,
                };
                detect_resume::save(ctx, det, &opt, plan.train_backbone, history, Some(&part))?;
                saved = std::time::Instant::now();
            }
        }
        let mut validation_loss = None;
        if !validation.is_empty() {
            let (mut sum, mut n) = (0f64, 0usize);
            let refs: Vec<&AnnotatedImage> = validation.iter().collect();
            for chunk in refs.chunks(batch.max(8)) {
                ctx.check()?;
                if let Some((x, objects)) = loader.batch(chunk, None)? {
                    sum += scalar(&batch_loss(det, &x, &objects, false)?.total)?
                        * objects.len() as f64;
                    n += objects.len();
                }
            }
            validation_loss = (n > 0).then(|| sum / n as f64);
        }
        let metrics = EpochMetrics {
            epoch,
            epochs: plan.total_epochs,
            train_loss: loss_sum / seen.max(1) as f64,
            train_accuracy: None,
            validation_loss,
            validation_accuracy: None,
            learning_rate: opt.learning_rate,
            elapsed_secs: started.elapsed().as_secs_f64(),
        };
        ctx.emit(Event::EpochEnd(metrics.clone()));
        history.push(metrics);
        phase.set(e as u64);
        detect_resume::save(ctx, det, &opt, plan.train_backbone, history, None)?;
        saved = std::time::Instant::now();
    }
    Ok(())
}

fn train(ctx: &RunContext) -> Result<PathBuf> {
    let p = DetectParams::from_resolved(&ctx.params)?;
    let splits = load_data(ctx, &p)?;
    let weights = p
        .weights
        .as_ref()
        .map(|w| ctx.project.resolve(w))
        .or(ctx.options.weights.clone());
    let resumed = detect_resume::load(ctx)?;
    let parent = detect_resume::parent(ctx)?;
    // A finished run's fine-tuned backbone replaces the pretrained one when continuing it.
    let parent_backbone = parent.as_ref().filter(|c| c.fine_tuning);
    let mut det = initial_detector(
        ctx,
        &p,
        &splits.labels,
        weights.as_deref(),
        resumed.as_ref().or(parent.as_ref()),
        parent_backbone,
    )?;
    let loader = Loader {
        ctx,
        pre: det.backbone.preprocessing.clone(),
        warned: Mutex::new(HashSet::new()),
    };
    let total_epochs = p.epochs
        + if p.fine_tune_blocks > 0 {
            p.fine_tune_epochs
        } else {
            0
        };
    let mut history = Vec::new();
    match (&resumed, &parent) {
        (Some(c), _) => {
            c.announce(ctx, c.epoch);
            history = c.history.clone();
        }
        (None, Some(c)) => c.announce(ctx, 0),
        (None, None) => {}
    }
    let fine_tuned = resumed.as_ref().filter(|c| c.fine_tuning);
    if fine_tuned.is_none() {
        run_phase(
            ctx,
            &loader,
            &det,
            &p,
            &PhasePlan {
                phase: Phase::Training,
                epochs: p.epochs,
                learning_rate: p.learning_rate,
                train_backbone: false,
                epoch_offset: 0,
                total_epochs,
            },
            &splits.train,
            &splits.validation,
            &mut history,
            resumed.as_ref(),
        )?;
    }
    if p.fine_tune_blocks > 0 {
        det.backbone = fine_tuned_backbone(
            ctx,
            &p,
            &det.backbone,
            weights.as_deref(),
            fine_tuned.or(parent_backbone),
        )?;
        run_phase(
            ctx,
            &loader,
            &det,
            &p,
            &PhasePlan {
                phase: Phase::FineTuning,
                epochs: p.fine_tune_epochs,
                learning_rate: p.fine_tune_learning_rate,
                train_backbone: true,
                epoch_offset: p.epochs,
                total_epochs,
            },
            &splits.train,
            &splits.validation,
            &mut history,
            fine_tuned,
        )?;
        det.backbone.refold()?;
    }
    let reports = evaluate_splits(ctx, &det, &splits);
    write_outputs(ctx, &det, &splits, &history, &reports)
}

/// Reads the annotations and splits them; the scan's warnings and errors go through
/// `accept_scan`.
fn load_data(ctx: &RunContext, p: &DetectParams) -> Result<DetectSplits> {
    let data = ResolvedData::of(&ctx.project);
    let mut scanning = ctx.phase(Phase::Scanning, 1);
    let splits = load_splits(&data, p.validation_split)?;
    scanning.set(1);
    ctx.accept_scan(
        &splits.summary,
        &data.train,
        SplitSizes {
            train: splits.train.len(),
            validation: splits.validation.len(),
            test: splits.test.len(),
        },
        &splits.labels,
    )?;
    Ok(splits)
}

/// The detector to train: MobileNetV2 (a continued run's fine-tuned backbone from
/// `parent_backbone`) and a new head, or the head of `from` (the checkpoint resumed or the run
/// continued).
fn initial_detector(
    ctx: &RunContext,
    p: &DetectParams,
    labels: &[String],
    weights: Option<&Path>,
    from: Option<&Checkpoint>,
    parent_backbone: Option<&Checkpoint>,
) -> Result<Detector> {
    let mut backbone = Backbone::load("mobilenet_v2", p.image_size, weights, 0, &ctx.device)?;
    if let Some(c) = parent_backbone {
        backbone = c.tuned_backbone(backbone, 0)?;
    }
    let head = DetectHead::new(labels.len(), p.head_channels, ctx.project.seed, &ctx.device)?;
    let head = match from {
        Some(c) => c.head(labels.len(), p.head_channels)?,
        None => head,
    };
    Ok(Detector {
        backbone,
        head,
        labels: labels.to_vec(),
        image_size: p.image_size,
        decode: p.decode,
    })
}

/// The backbone of the fine-tuning phase: its last `fine_tune_blocks` blocks trainable, with
/// the weights' identity of `current`, and the fine-tuned blocks of `from` (the checkpoint
/// resumed mid-fine-tuning, or the run continued) where there is one.
fn fine_tuned_backbone(
    ctx: &RunContext,
    p: &DetectParams,
    current: &Backbone,
    weights: Option<&Path>,
    from: Option<&Checkpoint>,
) -> Result<Backbone> {
    // The head reads blocks up to features.17; features.18 is never run, so count from 17.
    let (hash, source) = (current.weights_hash.clone(), current.weights_source.clone());
    let mut tuned = Backbone::load(
        "mobilenet_v2",
        p.image_size,
        weights,
        p.fine_tune_blocks + 1,
        &ctx.device,
    )?;
    (tuned.weights_hash, tuned.weights_source) = (hash, source);
    if let Some(c) = from {
        tuned = c.tuned_backbone(tuned, p.fine_tune_blocks + 1)?;
    }
    Ok(tuned)
}

/// Evaluates the detector on the validation and test images; reports each as an event.
fn evaluate_splits(
    ctx: &RunContext,
    det: &Detector,
    splits: &DetectSplits,
) -> Vec<(String, DetectionReport)> {
    let mut reports: Vec<(String, DetectionReport)> = Vec::new();
    for (name, images) in [("validation", &splits.validation), ("test", &splits.test)] {
        if images.is_empty() {
            continue;
        }
        let set = Annotations {
            images: images.clone(),
            ..splits.train_set.clone()
        };
        let mut phase = ctx.phase(Phase::Evaluating, images.len() as u64);
        let r = det.evaluate_set(
            &set,
            &ctx.device,
            &mut |d, _| phase.set(d),
            &mut |m, path| ctx.warn(m, Some(path)),
        );
        ctx.emit(Event::Evaluated {
            split: name.into(),
            num_examples: r.num_images,
            metric: "map50".into(),
            value: r.map50,
        });
        reports.push((name.to_string(), r));
    }
    reports
}

fn write_outputs(
    ctx: &RunContext,
    det: &Detector,
    splits: &DetectSplits,
    history: &[EpochMetrics],
    reports: &[(String, DetectionReport)],
) -> Result<PathBuf> {
    let dir = &ctx.run_dir;
    let mut phase = ctx.phase(Phase::Exporting, 3);
    let report = json!({
        "template": ctx.project.template,
        "labels": splits.labels,
        "data": {
            "num_train": splits.train.len(),
            "num_validation": splits.validation.len(),
            "num_test": splits.test.len(),
            "issues": splits.summary.issues,
        },
        "training": { "epochs_run": history.len(), "history": history },
        "evaluation": reports.iter().map(|(k, v)| (k.clone(), v)).collect::<BTreeMap<_, _>>(),
        "elapsed_secs": ctx.started.elapsed().as_secs_f64(),
    });
    write_json(&dir.report_json(), &report)?;
    phase.set(1);
    plots::curves(
        &dir.report_dir().join("loss.png"),
        "Loss",
        "focal + L1",
        history,
        |m| (Some(m.train_loss), m.validation_loss),
    )?;
    phase.set(2);
    let resolved: BTreeMap<&String, &crate::params::ParamValue> = ctx.params.0.iter().collect();
    let manifest = json!({
        "lathe_version": env!("CARGO_PKG_VERSION"),
        "created": crate::train::run_dir::utc_iso(std::time::SystemTime::now()),
        "template": ctx.project.template,
        "seed": ctx.project.seed,
        "device": crate::device::label(&ctx.device),
        "params": resolved,
        "data": {
            "train": { "path": ctx.project.resolve(&ctx.project.data.train), "annotations_blake3": splits.train_set.blake3, "num_images": splits.train.len() },
            "validation": { "num_images": splits.validation.len() },
            "test": { "num_images": splits.test.len() },
        },
        "backbone": {
            "id": det.backbone.id,
            "weights_source": det.backbone.weights_source,
            "weights_blake3": det.backbone.weights_hash,
        },
        "training": { "epochs_run": history.len() },
    });
    let target = dir.model();
    detect_model::write_model_dir(&target, det, &ctx.project.template, &manifest)?;
    phase.set(3);
    ctx.emit(Event::Exported {
        format: "safetensors".into(),
        path: target.join(crate::train::run_dir::MODEL_WEIGHTS),
    });
    Ok(target)
}
