//! The image classifier, trained as Create ML does it: scan class folders, split, extract
//! backbone features once (cached), train a logistic or MLP head with early stopping, evaluate
//! on validation and test, and export backbone + head.

use crate::data::DatasetSummary;
use crate::data::augment::Augmentation;
use crate::data::image_folder::LabeledFile;
use crate::error::{Error, Result};
use crate::eval::ClassificationReport;
use crate::export::st;
use crate::nets::backbone::Backbone;
use crate::nets::head::Head;
use crate::params::{ParamSpec, ResolvedParams};
use crate::task::{Model, ResolvedData, ScanProgress, Task};
use crate::templates::image::backbone_choice::load_backbone;
use crate::templates::image::decode::{self, Decoded, decode_batch};
use crate::templates::image::finetune::{FineTuneConfig, TrainImage, fine_tune};
use crate::templates::image::model::{
    self as image_model, ExportedImageModel, ImageModel, TrainingSummary,
};
pub use crate::templates::image::params::{ImageParams, param_specs};
pub use crate::templates::image::scan::{ImageSplits, image_scan, scan_splits};
use crate::train::feature_cache::FeatureCache;
use crate::train::fit::{Features, FitConfig, FitOutcome};
use crate::train::head_choice;
use crate::train::scan_report::SplitSizes;
use crate::train::{Control, Event, Phase, RunContext};
use candle_core::{DType, Device, Tensor};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

/// What to try when the model is no better than guessing.
const IMAGE_ADVICE: &str = "Check that each class folder holds the right images, add more images per class, or try another backbone.";

/// Image classification with transfer learning.
pub struct ImageClassification;

impl Task for ImageClassification {
    fn id(&self) -> &'static str {
        "image-classification"
    }

    fn param_specs(&self) -> Vec<ParamSpec> {
        param_specs()
    }

    fn scan(
        &self,
        data: &ResolvedData,
        params: &ResolvedParams,
        progress: ScanProgress<'_>,
        control: &Control,
    ) -> Result<DatasetSummary> {
        Ok(scan_splits(
            data,
            params.float("validation_split"),
            data.seed,
            progress,
            control,
        )?
        .summary)
    }

    fn train(&self, ctx: &RunContext) -> Result<PathBuf> {
        train(ctx)
    }

    fn load(&self, model_dir: &Path, device: &Device) -> Result<Box<dyn Model>> {
        Ok(Box::new(ImageModel::load(model_dir, device)?))
    }
}

/// Which split an extraction item feeds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Part {
    Train,
    Validation,
    Test,
}

pub(crate) struct Item<'a> {
    pub file: &'a LabeledFile,
    pub part: Part,
    pub augmentation: Option<Augmentation>,
}

fn train(ctx: &RunContext) -> Result<PathBuf> {
    let p = ImageParams::from_resolved(&ctx.params);
    let splits = load_data(ctx, &p)?;
    let weights = p
        .weights
        .as_ref()
        .map(|w| ctx.project.resolve(w))
        .or(ctx.options.weights.clone());
    let precision = crate::device::precision(&p.precision, &ctx.device)?;
    let batch = match p.extraction_batch_size {
        0 if ctx.device.is_cpu() => 32,
        0 => 256,
        n => n,
    };
    let (backbone, backbone_selection) = load_backbone(
        ctx,
        &p,
        weights.as_deref(),
        &splits.train,
        splits.labels.len(),
        batch,
        &|set, row, file| set.push(row, file.label as u32),
    )?;

    let items = extraction_items(&splits, &p.augmentations);
    let features = extract_features(ctx, &backbone, &items, batch)?;
    let ([train_set, validation_set, test_set], inputs) =
        feature_sets(&items, &features, backbone.feature_dim);

    let cfg = FitConfig {
        head: p.head.clone(),
        epochs: p.epochs,
        batch_size: p.batch_size,
        learning_rate: p.learning_rate,
        weight_decay: p.weight_decay,
        patience: p.patience,
        seed: ctx.project.seed,
    };
    let validation = (!validation_set.is_empty()).then_some(&validation_set);
    let fitted = head_choice::fit_head(
        ctx,
        &p.head_choice,
        &train_set,
        validation,
        splits.labels.len(),
        &cfg,
    )?;
    let outcome = fitted.final_outcome();
    let mut summary = TrainingSummary {
        history: fitted.outcome.history.clone(),
        best_epoch: fitted.outcome.best_epoch,
        stopped_early: fitted.outcome.stopped_early,
        head_selection: Some(fitted.report()),
        backbone_selection: backbone_selection.map(|s| serde_json::json!(s)),
    };

    if p.fine_tune_blocks == 0 {
        // Validation figures come from the head fitted on training rows only (the final
        // model may have been refitted on training + validation rows).
        let reports = evaluate_heads(
            ctx,
            &splits.labels,
            [
                ("validation", &validation_set, &inputs[1], &fitted.outcome),
                ("test", &test_set, &inputs[2], outcome),
            ],
        )?;
        let exported = ExportedImageModel {
            backbone: &backbone,
            head: &outcome.head,
            mean: &outcome.mean,
            std: &outcome.std,
            labels: &splits.labels,
            multi_label: None,
        };
        return write_outputs(ctx, &exported, &splits, &summary, &reports);
    }

    // Fine-tuning: the head, moved to raw-feature space, trains on together with the last blocks.
    let (mut tuned, head, resumed) =
        fine_tune_start(ctx, &p, &backbone, weights.as_deref(), precision, outcome)?;
    let images = |part: Part| train_images(&items, &features, part);
    let ft = FineTuneConfig {
        epochs: p.fine_tune_epochs,
        batch_size: p.fine_tune_batch_size,
        learning_rate: p.fine_tune_learning_rate,
        weight_decay: p.weight_decay,
        seed: ctx.project.seed,
        epoch_offset: summary.history.len(),
    };
    let ft_history = fine_tune(
        ctx,
        &mut tuned,
        &head,
        &images(Part::Train),
        &images(Part::Validation),
        &ft,
        resumed.as_ref(),
    )?;
    summary.best_epoch = summary.history.len() + ft_history.len();
    summary.history.extend(ft_history);
    let reports = evaluate_tuned(
        ctx,
        &tuned,
        &head,
        &splits.labels,
        [
            ("validation", images(Part::Validation)),
            ("test", images(Part::Test)),
        ],
    );
    let zeros = Tensor::zeros(tuned.feature_dim, DType::F32, &ctx.device)?;
    let ones = Tensor::ones(tuned.feature_dim, DType::F32, &ctx.device)?;
    let exported = ExportedImageModel {
        backbone: &tuned,
        head: &head,
        mean: &zeros,
        std: &ones,
        labels: &splits.labels,
        multi_label: None,
    };
    write_outputs(ctx, &exported, &splits, &summary, &reports)
}

/// Scans the data (train, validation, test) and accepts the scan: its warnings become events,
/// its first error stops the run.
fn load_data(ctx: &RunContext, p: &ImageParams) -> Result<ImageSplits> {
    let data = ResolvedData::of(&ctx.project);

    let mut scanning = ctx.phase(Phase::Scanning, 0);
    let splits = scan_splits(
        &data,
        p.validation_split,
        data.seed,
        &mut |d, t| {
            scanning.set_total(t);
            scanning.set(d)
        },
        &ctx.control,
    )?;
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

/// The images of `part` whose features were extracted (the others failed to decode), as
/// fine-tuning reads them.
fn train_images(items: &[Item], features: &[Option<Vec<f32>>], part: Part) -> Vec<TrainImage> {
    items
        .iter()
        .zip(features)
        .filter(|(it, f)| it.part == part && f.is_some())
        .map(|(it, _)| TrainImage {
            path: it.file.path.clone(),
            hash: it.file.hash,
            label: it.file.label as u32,
            augmentation: it.augmentation,
        })
        .collect()
}

/// Warns when the model is no better than guessing, then writes the report and the model folder.
fn write_outputs(
    ctx: &RunContext,
    exported: &ExportedImageModel,
    splits: &ImageSplits,
    summary: &TrainingSummary,
    reports: &[(String, ClassificationReport)],
) -> Result<PathBuf> {
    if let Some(w) = crate::eval::usefulness::first_classifier_warning(reports, IMAGE_ADVICE) {
        ctx.warn(w, None);
    }
    image_model::write_run_outputs(ctx, exported, splits, summary, reports)
}

/// What feature extraction runs on: every training image (and one item per augmentation of
/// it), then the validation and test images.
fn extraction_items<'a>(splits: &'a ImageSplits, augmentations: &[Augmentation]) -> Vec<Item<'a>> {
    let mut items: Vec<Item> = Vec::new();
    for f in &splits.train {
        items.push(Item {
            file: f,
            part: Part::Train,
            augmentation: None,
        });
        for a in augmentations {
            items.push(Item {
                file: f,
                part: Part::Train,
                augmentation: Some(*a),
            });
        }
    }
    items.extend(splits.validation.iter().map(|f| Item {
        file: f,
        part: Part::Validation,
        augmentation: None,
    }));
    items.extend(splits.test.iter().map(|f| Item {
        file: f,
        part: Part::Test,
        augmentation: None,
    }));
    items
}

/// The extracted rows by split (train, validation, test; files that failed left out), and the
/// paths of each split's unaugmented images.
fn feature_sets(
    items: &[Item],
    features: &[Option<Vec<f32>>],
    dim: usize,
) -> ([Features; 3], [Vec<PathBuf>; 3]) {
    let mut sets = [Features::new(dim), Features::new(dim), Features::new(dim)];
    let mut inputs: [Vec<PathBuf>; 3] = Default::default();
    for (item, feature) in items.iter().zip(features) {
        let Some(row) = feature else { continue };
        let slot = item.part as usize;
        sets[slot].push(row, item.file.label as u32);
        if item.augmentation.is_none() {
            inputs[slot].push(item.file.path.clone());
        }
    }
    (sets, inputs)
}

/// The reports of the frozen-backbone model on each (split name, its rows, their paths, the
/// head to score with); empty splits are left out.
fn evaluate_heads(
    ctx: &RunContext,
    labels: &[String],
    splits: [(&str, &Features, &Vec<PathBuf>, &FitOutcome); 2],
) -> Result<Vec<(String, ClassificationReport)>> {
    let mut reports = Vec::new();
    for (name, set, paths, model) in splits {
        if set.is_empty() {
            continue;
        }
        let mut phase = ctx.phase(Phase::Evaluating, set.len() as u64);
        let probs = model.probabilities(set, &ctx.device)?;
        let truth: Vec<usize> = set.labels.iter().map(|&l| l as usize).collect();
        reports.push(report(ctx, name, labels, &truth, &probs, paths));
        phase.set(set.len() as u64);
    }
    Ok(reports)
}

/// Where fine-tuning starts: the backbone with its last `fine_tune_blocks` trainable and the
/// head in raw-feature space — from `fine_tune_last.safetensors` when resuming a run that got
/// that far (the checkpoint is returned for the optimizer), else from the fitted head `outcome`.
fn fine_tune_start(
    ctx: &RunContext,
    p: &ImageParams,
    backbone: &Backbone,
    weights: Option<&Path>,
    precision: DType,
    outcome: &FitOutcome,
) -> Result<(Backbone, Head, Option<st::Loaded>)> {
    let mut tuned = Backbone::load(
        &backbone.id,
        p.image_size,
        weights,
        p.fine_tune_blocks,
        &ctx.device,
    )?;
    tuned.set_precision(precision)?;
    let checkpoint = ctx.run_dir.checkpoints().join("fine_tune_last.safetensors");
    let resumed = if ctx.resume && checkpoint.exists() {
        Some(st::load(&checkpoint, &ctx.device)?)
    } else {
        None
    };
    let head = match &resumed {
        Some((tensors, _)) => {
            // Rebuild the tuned blocks (weights and batch-norm statistics) from the checkpoint.
            let mut merged = tuned.tensors.clone();
            merged.extend(
                tensors
                    .iter()
                    .filter(|(k, _)| !k.starts_with("optimizer."))
                    .map(|(k, v)| (k.clone(), v.clone())),
            );
            let (hash, source) = (tuned.weights_hash.clone(), tuned.weights_source.clone());
            tuned = Backbone::from_tensors(&backbone.id, merged, p.image_size, p.fine_tune_blocks)?;
            tuned.set_precision(precision)?;
            (tuned.weights_hash, tuned.weights_source) = (hash, source);
            Head::from_tensors(outcome.head.kind.clone(), tensors)?
        }
        None => {
            let raw: HashMap<String, Tensor> = outcome
                .head
                .export_tensors(&outcome.mean, &outcome.std)?
                .into_iter()
                .collect();
            Head::from_tensors(outcome.head.kind.clone(), &raw)?
        }
    };
    Ok((tuned, head, resumed))
}

/// The reports of the fine-tuned model on each (split name, its images), predicted from the
/// files; images that fail are warned about and left out, empty splits skipped.
fn evaluate_tuned(
    ctx: &RunContext,
    tuned: &Backbone,
    head: &Head,
    labels: &[String],
    splits: [(&str, Vec<TrainImage>); 2],
) -> Vec<(String, ClassificationReport)> {
    let mut reports = Vec::new();
    for (name, set) in splits {
        if set.is_empty() {
            continue;
        }
        let paths: Vec<PathBuf> = set.iter().map(|i| i.path.clone()).collect();
        let mut phase = ctx.phase(Phase::Evaluating, paths.len() as u64);
        let results =
            image_model::predict_files(tuned, head, &ctx.device, &paths, &mut |d, _| phase.set(d));
        let (mut truth, mut probs, mut inputs) = (Vec::new(), Vec::new(), Vec::new());
        for (img, r) in set.iter().zip(results) {
            match r {
                Ok(p) => {
                    truth.push(img.label as usize);
                    probs.push(p);
                    inputs.push(img.path.clone());
                }
                Err(e) => ctx.warn(format!("{e}; skipped in evaluation"), Some(&img.path)),
            }
        }
        reports.push(report(ctx, name, labels, &truth, &probs, &inputs));
    }
    reports
}

/// Computes one split's report and announces it.
fn report(
    ctx: &RunContext,
    split: &str,
    labels: &[String],
    truth: &[usize],
    probs: &[Vec<f32>],
    inputs: &[PathBuf],
) -> (String, ClassificationReport) {
    let r = ClassificationReport::compute(labels, truth, probs, inputs);
    ctx.emit(Event::Evaluated {
        split: split.into(),
        num_examples: r.num_examples,
        metric: "accuracy".into(),
        value: r.accuracy,
    });
    (split.to_string(), r)
}

/// Extracts (or fetches from the cache) the features of every item; `None` for files that
/// could not be decoded (each reported once as a warning).
pub(crate) fn extract_features(
    ctx: &RunContext,
    backbone: &Backbone,
    items: &[Item],
    batch_size: usize,
) -> Result<Vec<Option<Vec<f32>>>> {
    extract_features_as(ctx, backbone, items, batch_size, Phase::ExtractingFeatures)
}

/// [`extract_features`] reporting its progress as `phase`.
pub(crate) fn extract_features_as(
    ctx: &RunContext,
    backbone: &Backbone,
    items: &[Item],
    batch_size: usize,
    phase: Phase,
) -> Result<Vec<Option<Vec<f32>>>> {
    let signature = backbone.signature();
    let mut cache = match FeatureCache::open(&ctx.cache_dir(), &signature, backbone.feature_dim) {
        Ok(c) => Some(c),
        Err(e) => {
            ctx.warn(
                format!("feature cache unavailable, features will not be reused ({e})"),
                None,
            );
            None
        }
    };
    let seed = ctx.project.seed;
    let keys: Vec<[u8; 32]> = items
        .iter()
        .map(|it| {
            let variant = it
                .augmentation
                .map(|a| format!("{}-seed{seed}", a.name()))
                .unwrap_or_default();
            FeatureCache::key(&signature, &it.file.hash, &variant)
        })
        .collect();
    let mut out: Vec<Option<Vec<f32>>> = vec![None; items.len()];
    let mut todo = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        match cache.as_ref().and_then(|c| c.get(key)) {
            Some(f) => out[i] = Some(f.to_vec()),
            None => todo.push(i),
        }
    }
    let cached = items.len() - todo.len();
    if let (true, Some(c)) = (cached > 0, cache.as_ref()) {
        ctx.emit(Event::Cache {
            reused: cached,
            total: items.len(),
            path: c.path().to_path_buf(),
        });
    }
    let mut phase = ctx.phase(phase, items.len() as u64);
    let mut done = cached as u64;
    phase.set(done);
    let mut failed: HashSet<PathBuf> = HashSet::new();
    let pre = &backbone.preprocessing;
    let chunks: Vec<&[usize]> = todo.chunks(batch_size.max(1)).collect();
    // Decoding, batch assembly and the copy to the device run one batch ahead on their own
    // thread (bounded queue) while the backbone works on the previous batch.
    let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Decoded>>(2);
    let device = &ctx.device;
    let on_device = decode::resize_on(device);
    let mut resizers = HashMap::new();
    std::thread::scope(|scope| -> Result<()> {
        let producer_chunks = &chunks;
        std::thread::Builder::new()
            .name("lathe-decode".into())
            .spawn_scoped(scope, move || {
                for chunk in producer_chunks {
                    let decoded = decode_batch(pre, items, chunk, seed, device, on_device);
                    if tx.send(decoded).is_err() {
                        return; // the consumer stopped (cancel or error)
                    }
                }
            })
            .map_err(|e| {
                Error::io(
                    "starting the image decoding thread",
                    ctx.run_dir.checkpoints(),
                    e,
                )
            })?;
        for (chunk, decoded) in chunks.iter().zip(rx.iter()) {
            ctx.check()?;
            let mut decoded = decoded?;
            let bad = std::mem::take(&mut decoded.failed);
            let ok = std::mem::take(&mut decoded.ok);
            for (i, reason) in bad {
                if failed.insert(items[i].file.path.clone()) {
                    ctx.warn(
                        format!("{reason}; the image was skipped"),
                        Some(&items[i].file.path),
                    );
                }
            }
            if let Some(x) = decoded.into_tensor(pre, device, &mut resizers)? {
                let f = backbone
                    .features(&x, false)?
                    .to_dtype(DType::F32)?
                    .to_vec2::<f32>()?;
                let mut fresh = Vec::with_capacity(ok.len());
                for (&i, row) in ok.iter().zip(f) {
                    fresh.push((keys[i], row.clone()));
                    out[i] = Some(row);
                }
                if let Some(c) = cache.as_mut()
                    && let Err(e) = c.insert_many(&fresh)
                {
                    ctx.warn(
                        format!("could not write the feature cache, continuing without it ({e})"),
                        None,
                    );
                    cache = None;
                }
            }
            done += chunk.len() as u64;
            phase.set(done);
        }
        Ok(())
    })?;
    Ok(out)
}
