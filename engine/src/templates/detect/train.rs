//! The object detector, trained as Create ML does it (transfer learning): read and check the
//! annotations, hold out a seeded validation share of the images, train the detection head on
//! the frozen pretrained MobileNetV2 (`epochs`), then train the head together with the last
//! backbone blocks, batch norm in train mode, at a smaller learning rate (`fine_tune_epochs`).
//! Every batch is augmented afresh with boxes kept consistent (crop / pad, flip, colour). The
//! run evaluates mAP on validation and test and exports the model folder. The data and its
//! checks are in `splits`, one phase's epochs in `epochs`.

use crate::data::DatasetSummary;
use crate::data::annotations::Annotations;
use crate::error::Result;
use crate::eval::map::DetectionReport;
use crate::eval::plots;
use crate::fsutil::write_json;
use crate::nets::backbone::Backbone;
use crate::nets::detect_head::DetectHead;
use crate::params::{ParamSpec, ResolvedParams};
use crate::task::{Model, ResolvedData, ScanProgress, Task};
use crate::templates::detect::epochs::{Loader, PhasePlan, run_phase};
use crate::templates::detect::model::{self as detect_model, Detector, DetectorModel, TASK_ID};
pub use crate::templates::detect::params::{DetectParams, param_specs};
use crate::templates::detect::resume::{self as detect_resume, Checkpoint};
use crate::templates::detect::splits::{DetectSplits, load_splits};
use crate::train::scan_report::SplitSizes;
use crate::train::{Control, EpochMetrics, Event, Phase, RunContext};
use candle_core::Device;
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
