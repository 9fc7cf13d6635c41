//! The image classifier, trained as Create ML does it: scan class folders, split, extract
//! backbone features once (cached), train a logistic or MLP head with early stopping, evaluate
//! on validation and test, and export backbone + head.

use crate::data::augment::Augmentation;
use crate::data::image_decode::{self, IMAGE_EXTENSIONS, Preprocessing};
use crate::data::image_folder::{self, FolderScan, LabeledFile, ScannedSplit};
use crate::data::{DataKind, DatasetSummary, HealthIssue, Severity, health, split};
use crate::error::{Error, Result};
use crate::eval::ClassificationReport;
use crate::model::backbone::{BACKBONES, Backbone};
use crate::model::head::HeadKind;
use crate::params::{ParamSpec, ResolvedParams};
use crate::task::image_model::{self, ExportedImageModel, ImageModel};
use crate::task::{Model, ResolvedData, ScanProgress, Task};
use crate::train::feature_cache::FeatureCache;
use crate::train::fit::{self, Features, FitConfig};
use crate::train::{Control, Event, Phase, RunContext};
use candle_core::{DType, Device, Tensor};
use rayon::prelude::*;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Image classification with transfer learning.
pub struct ImageClassification;

/// Parameters after checking.
#[derive(Clone, Debug)]
pub struct ImageParams {
    pub backbone: String,
    pub weights: Option<PathBuf>,
    pub image_size: u32,
    pub head: HeadKind,
    pub epochs: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    pub weight_decay: f64,
    pub patience: usize,
    pub validation_split: f64,
    pub augmentations: Vec<Augmentation>,
    pub extraction_batch_size: usize,
}

impl ImageParams {
    pub fn from_resolved(p: &ResolvedParams) -> Self {
        let head = match p.text("head") {
            "mlp" => HeadKind::Mlp {
                hidden: p.usize("mlp_hidden"),
                dropout: p.float("dropout") as f32,
            },
            _ => HeadKind::Logistic,
        };
        let weights = Some(p.text("weights"))
            .filter(|w| !w.is_empty())
            .map(PathBuf::from);
        Self {
            backbone: p.text("backbone").to_string(),
            weights,
            image_size: p.usize("image_size") as u32,
            head,
            epochs: p.usize("epochs"),
            batch_size: p.usize("batch_size"),
            learning_rate: p.float("learning_rate"),
            weight_decay: p.float("weight_decay"),
            patience: p.usize("early_stopping_patience"),
            validation_split: p.float("validation_split"),
            augmentations: Augmentation::ALL
                .into_iter()
                .filter(|a| p.bool(a.param_key()))
                .collect(),
            extraction_batch_size: p.usize("extraction_batch_size"),
        }
    }
}

/// The scanned splits of a dataset, after relabelling to the training classes.
pub struct ImageSplits {
    pub labels: Vec<String>,
    pub train: Vec<LabeledFile>,
    pub validation: Vec<LabeledFile>,
    pub test: Vec<LabeledFile>,
    pub summary: DatasetSummary,
}

fn image_probe(_: &Path, bytes: &[u8]) -> std::result::Result<(), String> {
    image_decode::probe(bytes).map(|_| ())
}

/// The folder-per-class scan settings for images.
pub fn image_scan(split: &str) -> FolderScan<'_> {
    FolderScan {
        split,
        extensions: IMAGE_EXTENSIONS,
        noun: "image",
        probe: &image_probe,
    }
}

/// Scans every split, runs the health checks and splits validation off training if needed.
pub fn scan_splits(
    data: &ResolvedData,
    validation_split: f64,
    seed: u64,
    progress: ScanProgress<'_>,
    control: &Control,
) -> Result<ImageSplits> {
    let check = || {
        if control.is_cancelled() {
            Err(Error::Cancelled)
        } else {
            Ok(())
        }
    };
    let scan_one = |root: &Path, name: &str, progress: &mut dyn FnMut(u64, u64)| {
        image_folder::scan(
            root,
            &image_scan(name),
            &mut |d, t| progress(d as u64, t as u64),
            &check,
        )
    };
    let train = scan_one(&data.train, "train", progress)?;
    let mut validation = match &data.validation {
        Some(p) => Some(scan_one(p, "validation", progress)?),
        None => None,
    };
    let mut test = match &data.test {
        Some(p) => Some(scan_one(p, "test", progress)?),
        None => None,
    };
    let labels = train.labels.clone();
    for s in validation.iter_mut().chain(test.iter_mut()) {
        s.relabel(&labels);
    }
    let others: Vec<&ScannedSplit> = validation.iter().chain(test.iter()).collect();
    let mut issues: Vec<HealthIssue> = train.issues.clone();
    for s in &others {
        issues.extend(s.issues.iter().cloned());
    }
    issues.extend(health::check(&train, &others, "image"));

    let mut splits = vec![train.summary()];
    let (train_files, validation_files) = match &validation {
        Some(v) => (train.files.clone(), v.files.clone()),
        None => split::stratified(&train.files, labels.len(), validation_split, seed),
    };
    match &validation {
        Some(v) => splits.push(v.summary()),
        None if !validation_files.is_empty() => {
            let auto = ScannedSplit {
                name: "validation".into(),
                root: train.root.clone(),
                labels: labels.clone(),
                files: validation_files.clone(),
                ..Default::default()
            };
            let mut s = auto.summary();
            s.name = "validation (automatic split)".into();
            splits.push(s);
        }
        None => {}
    }
    if let Some(t) = &test {
        splits.push(t.summary());
    }
    let summary = DatasetSummary {
        kind: DataKind::Images,
        labels: labels.clone(),
        splits,
        issues,
        facts: Default::default(),
    };
    Ok(ImageSplits {
        labels,
        train: train_files,
        validation: validation_files,
        test: test.map(|t| t.files).unwrap_or_default(),
        summary,
    })
}

impl Task for ImageClassification {
    fn id(&self) -> &'static str {
        "image-classification"
    }

    fn param_specs(&self) -> Vec<ParamSpec> {
        let mut specs = vec![
            ParamSpec::choice(
                "backbone",
                "Backbone",
                "Model",
                "Pretrained network that turns each image into features.",
                BACKBONES,
                "mobilenet_v2",
            ),
            ParamSpec::new(
                "weights",
                "Backbone weights file",
                "Model",
                "A safetensors file with the backbone's weights; empty uses the built-in or Hugging Face copy.",
                crate::params::ParamKind::Text,
                crate::params::ParamValue::Text(String::new()),
            ),
            ParamSpec::int(
                "image_size",
                "Image size",
                "Model",
                "Images are resized to this many pixels square before the backbone.",
                (32, 1024),
                224,
            ),
            ParamSpec::choice(
                "head",
                "Classifier",
                "Model",
                "logistic: fast and robust; mlp: one hidden layer, can fit more complex boundaries.",
                &["logistic", "mlp"],
                "logistic",
            ),
            ParamSpec::int(
                "mlp_hidden",
                "MLP hidden units",
                "Model",
                "Width of the MLP's hidden layer.",
                (8, 8192),
                512,
            ),
            ParamSpec::float(
                "dropout",
                "MLP dropout",
                "Model",
                "Share of hidden units dropped while training the MLP.",
                (0.0, 0.9),
                0.2,
            ),
            ParamSpec::int(
                "epochs",
                "Maximum epochs",
                "Training",
                "Passes over the training features; early stopping may end sooner.",
                (1, 100_000),
                100,
            ),
            ParamSpec::int(
                "batch_size",
                "Batch size",
                "Training",
                "Examples per optimizer step when training the classifier.",
                (1, 65_536),
                256,
            ),
            ParamSpec::float(
                "learning_rate",
                "Learning rate",
                "Training",
                "Peak AdamW step size (warm-up, then cosine decay).",
                (1e-7, 1.0),
                1e-3,
            ),
            ParamSpec::float(
                "weight_decay",
                "Weight decay",
                "Training",
                "L2-style regularization of the classifier weights.",
                (0.0, 1.0),
                1e-4,
            ),
            ParamSpec::int(
                "early_stopping_patience",
                "Early stopping patience",
                "Training",
                "Stop after this many epochs without validation improvement (0 = never).",
                (0, 10_000),
                10,
            ),
            ParamSpec::float(
                "validation_split",
                "Validation split",
                "Data",
                "Share of training images held out for validation when no validation folder is given.",
                (0.0, 0.5),
                0.1,
            ),
            ParamSpec::int(
                "extraction_batch_size",
                "Feature batch size",
                "Performance",
                "Images per backbone batch during feature extraction.",
                (1, 4096),
                32,
            ),
        ];
        for a in Augmentation::ALL {
            let help = match a {
                Augmentation::Flip => "Adds a mirrored copy of every training image.",
                Augmentation::Rotate => "Adds a copy rotated by up to ±20°.",
                Augmentation::Crop => "Adds a copy cropped to 70–90 % of the area.",
                Augmentation::Exposure => "Adds a brighter or darker copy.",
                Augmentation::Blur => "Adds a slightly blurred copy.",
                Augmentation::Noise => "Adds a copy with pixel noise.",
            };
            let label = format!("Augment: {}", a.name());
            specs.push(ParamSpec::bool(
                a.param_key(),
                &label,
                "Augmentation",
                help,
                false,
            ));
        }
        specs
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
enum Part {
    Train,
    Validation,
    Test,
}

struct Item<'a> {
    file: &'a LabeledFile,
    part: Part,
    augmentation: Option<Augmentation>,
}

fn train(ctx: &RunContext) -> Result<PathBuf> {
    let p = ImageParams::from_resolved(&ctx.params);
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
    for issue in &splits.summary.issues {
        if issue.severity == Severity::Warning {
            ctx.warn(
                issue.message.clone(),
                issue.paths.first().map(PathBuf::as_path),
            );
        }
    }
    if let Some(e) = splits.summary.errors().next() {
        return Err(Error::Data {
            message: e.message.clone(),
            path: e
                .paths
                .first()
                .cloned()
                .unwrap_or_else(|| data.train.clone()),
        });
    }
    ctx.emit(Event::Data {
        num_train: splits.train.len(),
        num_validation: splits.validation.len(),
        num_test: splits.test.len(),
        labels: splits.labels.clone(),
    });

    let weights = p
        .weights
        .as_ref()
        .map(|w| ctx.project.resolve(w))
        .or(ctx.options.weights.clone());
    let backbone = Backbone::load(
        &p.backbone,
        p.image_size,
        weights.as_deref(),
        0,
        &ctx.device,
    )?;

    let mut items: Vec<Item> = Vec::new();
    for f in &splits.train {
        items.push(Item {
            file: f,
            part: Part::Train,
            augmentation: None,
        });
        for a in &p.augmentations {
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

    let features = extract_features(ctx, &backbone, &items, p.extraction_batch_size)?;
    let mut sets = [
        Features::new(backbone.feature_dim),
        Features::new(backbone.feature_dim),
        Features::new(backbone.feature_dim),
    ];
    let mut inputs: [Vec<PathBuf>; 3] = Default::default();
    for (item, feature) in items.iter().zip(&features) {
        let Some(row) = feature else { continue };
        let slot = item.part as usize;
        sets[slot].push(row, item.file.label as u32);
        if item.augmentation.is_none() {
            inputs[slot].push(item.file.path.clone());
        }
    }
    let [train_set, validation_set, test_set] = sets;

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
    let outcome = fit::fit(ctx, &train_set, validation, splits.labels.len(), &cfg)?;

    let mut reports = Vec::new();
    for (name, set, paths) in [
        ("validation", &validation_set, &inputs[1]),
        ("test", &test_set, &inputs[2]),
    ] {
        if set.is_empty() {
            continue;
        }
        let mut phase = ctx.phase(Phase::Evaluating, set.len() as u64);
        let probs = outcome.probabilities(set, &ctx.device)?;
        let truth: Vec<usize> = set.labels.iter().map(|&l| l as usize).collect();
        let report = ClassificationReport::compute(&splits.labels, &truth, &probs, paths);
        phase.set(set.len() as u64);
        ctx.emit(Event::Evaluated {
            split: name.into(),
            num_examples: report.num_examples,
            metric: "accuracy".into(),
            value: report.accuracy,
        });
        reports.push((name.to_string(), report));
    }

    let exported = ExportedImageModel {
        backbone: &backbone,
        head: &outcome.head,
        mean: &outcome.mean,
        std: &outcome.std,
        labels: &splits.labels,
    };
    let model_dir = image_model::write_run_outputs(ctx, &exported, &splits, &outcome, &reports)?;
    Ok(model_dir)
}

/// Extracts (or fetches from the cache) the features of every item; `None` for files that
/// could not be decoded (each reported once as a warning).
fn extract_features(
    ctx: &RunContext,
    backbone: &Backbone,
    items: &[Item],
    batch_size: usize,
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
    let mut phase = ctx.phase(Phase::ExtractingFeatures, items.len() as u64);
    let mut done = cached as u64;
    phase.set(done);
    let mut failed: HashSet<PathBuf> = HashSet::new();
    let pre = &backbone.preprocessing;
    for chunk in todo.chunks(batch_size.max(1)) {
        ctx.check()?;
        let decoded: Vec<std::result::Result<Vec<f32>, String>> = chunk
            .par_iter()
            .map(|&i| load_item(pre, &items[i], seed))
            .collect();
        let mut rows = Vec::new();
        let mut ok = Vec::new();
        for (&i, r) in chunk.iter().zip(decoded) {
            match r {
                Ok(x) => {
                    rows.extend(x);
                    ok.push(i);
                }
                Err(reason) => {
                    if failed.insert(items[i].file.path.clone()) {
                        ctx.warn(
                            format!("{reason}; the image was skipped"),
                            Some(&items[i].file.path),
                        );
                    }
                }
            }
        }
        if !ok.is_empty() {
            let x = Tensor::from_vec(
                rows,
                (ok.len(), 3, pre.height as usize, pre.width as usize),
                &ctx.device,
            )?;
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
    Ok(out)
}

/// Reads, decodes, resizes, optionally augments and normalizes one item.
fn load_item(pre: &Preprocessing, item: &Item, seed: u64) -> std::result::Result<Vec<f32>, String> {
    let bytes = std::fs::read(&item.file.path).map_err(|e| format!("cannot read image ({e})"))?;
    let rgb = image_decode::decode_rgb(&bytes)?;
    let resized = image_decode::resize(&rgb, pre.width, pre.height)?;
    let img = match item.augmentation {
        Some(a) => a.apply(&resized, seed, &item.file.hash),
        None => resized,
    };
    Ok(pre.normalize(&img))
}
