//! Multi-label image classification: each image may carry any number of labels (a photo with a
//! cat *and* a sofa), given by a labels file next to the images. Same pipeline as the image
//! classifier — cached backbone features, a head trained with AdamW and early stopping — with one
//! sigmoid per label, binary cross-entropy, and a threshold that decides which labels are shown.

use crate::data::DatasetSummary;
use crate::error::{Error, Result};
use crate::eval::MultiLabelReport;
use crate::nets::backbone::Backbone;
use crate::nets::head::Head;
use crate::params::{ParamKind, ParamSpec, ParamValue, ResolvedParams};
use crate::task::{Evaluation, Model, ResolvedData, ScanProgress, Task};
use crate::templates::image::backbone_choice::load_backbone;
use crate::templates::image::classifier::{Item, Part, extract_features};
use crate::templates::image::model::{
    self as image_model, ExportedImageModel, ImageModel, TrainingSummary,
};
use crate::templates::image::multilabel_scan::{MultiLabelSplits, scan_folder, scan_multilabel};
use crate::templates::image::params::ImageParams;
use crate::templates::image::scan::ImageSplits;
use crate::train::fit::{Features, FitConfig};
use crate::train::head_choice;
use crate::train::scan_report::SplitSizes;
use crate::train::{Control, Event, Phase, RunContext};
use candle_core::Device;
use std::path::{Path, PathBuf};

/// Task id of multi-label image classification (`config.json`'s `lathe.task`).
pub const TASK_ID: &str = "multi-label-image-classification";

/// Multi-label image classification with transfer learning.
pub struct MultiLabelImageClassification;

/// The image classifier's parameters (fine-tuning aside) plus the labels file and threshold.
fn param_specs() -> Vec<ParamSpec> {
    let mut specs: Vec<ParamSpec> = crate::templates::image::params::param_specs()
        .into_iter()
        .filter(|s| !s.key.starts_with("fine_tune"))
        .collect();
    specs.insert(
        0,
        ParamSpec::new(
            "labels_file",
            "Labels file",
            "Data",
            "CSV (`image,labels`, labels separated by `;`) or JSON mapping each image to its labels, inside each data folder.",
            ParamKind::Text,
            ParamValue::Text("labels.csv".into()),
        ),
    );
    specs.push(ParamSpec::float(
        "threshold",
        "Threshold",
        "Model",
        "A label is predicted when its probability reaches this.",
        (0.01, 0.99),
        0.5,
    ));
    specs
}

fn labels_file(p: &ResolvedParams) -> String {
    p.text("labels_file").to_string()
}

impl Task for MultiLabelImageClassification {
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
        control: &Control,
    ) -> Result<DatasetSummary> {
        let p = ImageParams::from_resolved(params);
        Ok(scan_multilabel(
            data,
            &labels_file(params),
            p.validation_split,
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

fn train(ctx: &RunContext) -> Result<PathBuf> {
    let p = ImageParams::from_resolved(&ctx.params);
    let threshold = ctx.params.float("threshold") as f32;
    let data = ResolvedData::of(&ctx.project);
    let mut scanning = ctx.phase(Phase::Scanning, 0);
    let splits = scan_multilabel(
        &data,
        &labels_file(&ctx.params),
        p.validation_split,
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
    let weights = p
        .weights
        .as_ref()
        .map(|w| ctx.project.resolve(w))
        .or(ctx.options.weights.clone());
    let batch = match p.extraction_batch_size {
        0 if ctx.device.is_cpu() => 32,
        0 => 256,
        n => n,
    };
    let k = splits.labels.len();
    let (backbone, backbone_selection) = load_backbone(
        ctx,
        &p,
        weights.as_deref(),
        &splits.train,
        k,
        batch,
        &|set, row, file| {
            let target = splits.targets.get(&file.path).cloned().unwrap_or_default();
            set.push_multi(row, &target, k);
        },
    )?;

    let mut items = Vec::new();
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
    let features = extract_features(ctx, &backbone, &items, batch)?;
    let mut sets = [
        Features::new(backbone.feature_dim),
        Features::new(backbone.feature_dim),
        Features::new(backbone.feature_dim),
    ];
    let mut inputs: [Vec<PathBuf>; 3] = Default::default();
    let mut truths: [Vec<Vec<u32>>; 3] = Default::default();
    for (item, feature) in items.iter().zip(&features) {
        let Some(row) = feature else { continue };
        let slot = item.part as usize;
        let target = splits
            .targets
            .get(&item.file.path)
            .cloned()
            .unwrap_or_default();
        sets[slot].push_multi(row, &target, k);
        if item.augmentation.is_none() {
            inputs[slot].push(item.file.path.clone());
            truths[slot].push(target);
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
    let fitted = head_choice::fit_head(ctx, &p.head_choice, &train_set, validation, k, &cfg)?;
    let outcome = fitted.final_outcome();
    let mut reports = Vec::new();
    for (name, set, slot, model) in [
        ("validation", &validation_set, 1, &fitted.outcome),
        ("test", &test_set, 2, outcome),
    ] {
        if set.is_empty() {
            continue;
        }
        let mut phase = ctx.phase(Phase::Evaluating, set.len() as u64);
        let probs = model.probabilities(set, &ctx.device)?;
        let r = MultiLabelReport::compute(
            &splits.labels,
            &truths[slot],
            &probs,
            &inputs[slot],
            threshold,
        );
        ctx.emit(Event::Evaluated {
            split: name.into(),
            num_examples: r.num_examples,
            metric: "exact_match_accuracy".into(),
            value: r.accuracy,
        });
        reports.push((name.to_string(), r));
        phase.set(set.len() as u64);
    }
    let summary = TrainingSummary {
        history: fitted.outcome.history.clone(),
        best_epoch: fitted.outcome.best_epoch,
        stopped_early: fitted.outcome.stopped_early,
        head_selection: Some(fitted.report()),
        backbone_selection: backbone_selection.map(|s| serde_json::json!(s)),
    };
    let MultiLabelSplits {
        labels,
        train,
        validation,
        test,
        summary: data_summary,
        ..
    } = splits;
    let as_image_splits = ImageSplits {
        labels,
        train,
        validation,
        test,
        summary: data_summary,
    };
    let exported = ExportedImageModel {
        backbone: &backbone,
        head: &outcome.head,
        mean: &outcome.mean,
        std: &outcome.std,
        labels: &as_image_splits.labels,
        multi_label: Some(threshold),
    };
    // The shared writer makes report.json, the curves and the model folder; the multi-label
    // evaluation then replaces its (empty) single-label evaluation section.
    let model_dir =
        image_model::write_run_outputs(ctx, &exported, &as_image_splits, &summary, &[])?;
    let report_path = ctx.run_dir.report_json();
    let mut report: serde_json::Value = crate::fsutil::read_json(&report_path)?;
    report["problem_type"] = "multi_label_classification".into();
    report["evaluation"] = reports
        .iter()
        .map(|(k, v)| {
            Ok((
                k.clone(),
                serde_json::to_value(v).map_err(|e| Error::Unsupported(e.to_string()))?,
            ))
        })
        .collect::<Result<serde_json::Map<_, _>>>()?
        .into();
    crate::fsutil::write_json(&report_path, &report)?;
    Ok(model_dir)
}

/// Evaluates a multi-label model on a folder with its labels file (`labels.csv`, else
/// `labels.json`).
#[allow(clippy::too_many_arguments)]
pub fn evaluate_folder(
    backbone: &Backbone,
    head: &Head,
    device: &Device,
    labels: &[String],
    threshold: f32,
    data: &Path,
    progress: ScanProgress<'_>,
    warn: &mut dyn FnMut(String),
) -> Result<Evaluation> {
    let never = || Ok(());
    let name = if data.join("labels.csv").is_file() || !data.join("labels.json").is_file() {
        "labels.csv"
    } else {
        "labels.json"
    };
    let folder = scan_folder(data, name, "evaluation", &mut |_, _| {}, &never)?;
    for issue in &folder.split.issues {
        warn(issue.line());
    }
    let paths: Vec<PathBuf> = folder.split.files.iter().map(|f| f.path.clone()).collect();
    if paths.is_empty() {
        return Err(Error::data(
            "no readable images listed in the labels file",
            data.join(name),
        ));
    }
    let results = image_model::predict_files_as(backbone, head, device, &paths, true, progress);
    let (mut truth, mut probs, mut inputs) = (Vec::new(), Vec::new(), Vec::new());
    for (path, r) in paths.iter().zip(results) {
        match r {
            Ok(p) => {
                let names = folder.names.get(path).cloned().unwrap_or_default();
                truth.push(
                    names
                        .iter()
                        .filter_map(|n| labels.iter().position(|l| l == n))
                        .map(|i| i as u32)
                        .collect(),
                );
                probs.push(p);
                inputs.push(path.clone());
            }
            Err(e) => warn(format!("{e}; skipped")),
        }
    }
    Ok(Evaluation::MultiLabel(MultiLabelReport::compute(
        labels, &truth, &probs, &inputs, threshold,
    )))
}
