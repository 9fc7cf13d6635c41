//! The text classifier, as Create ML offers it: maxent (word + character n-gram TF-IDF and
//! multinomial logistic regression) and transfer learning (all-MiniLM-L6-v2 sentence embeddings,
//! cached, with a logistic / MLP head); `auto` trains both when the encoder is available and
//! keeps the one with the better validation accuracy. Data: class folders of `.txt` files, or a
//! CSV / JSON / JSON-lines table with text and label columns (scanned in `scan`).

use crate::data::DatasetSummary;
use crate::data::image_folder::LabeledFile;
use crate::error::{Error, Result};
use crate::eval::{ClassificationReport, plots};
use crate::fsutil::write_json;
use crate::nets::head::Head;
use crate::nets::text_encoder::{self, TextEncoder};
use crate::params::{ParamSpec, ResolvedParams};
use crate::task::{Model, ResolvedData, ScanProgress, Task};
use crate::templates::text::features::Vectorizer;
use crate::templates::text::maxent::{self as text_maxent, SparseSet};
use crate::templates::text::model::{Classifier, TextModel};
pub use crate::templates::text::params::{Algorithm, TextParams, param_specs};
pub use crate::templates::text::scan::{TextSplits, scan_splits};
use crate::train::feature_cache::FeatureCache;
use crate::train::fit::{self, Features, FitConfig};
use crate::train::scan_report::SplitSizes;
use crate::train::{Control, EpochMetrics, Event, Phase, RunContext};
use candle_core::{Device, Tensor};
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// What to try when the model is no better than guessing.
const TEXT_ADVICE: &str = "Check that each class holds the right texts and add more examples per class; try algorithm = \"transfer\" with a sentence encoder.";

/// Text classification.
pub struct TextClassification;

impl Task for TextClassification {
    fn id(&self) -> &'static str {
        "text-classification"
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
        let p = TextParams::from_resolved(params);
        Ok(scan_splits(data, &p.columns, p.validation_split, progress, control)?.summary)
    }

    fn train(&self, ctx: &RunContext) -> Result<PathBuf> {
        train(ctx)
    }

    fn load(&self, model_dir: &Path, device: &Device) -> Result<Box<dyn Model>> {
        Ok(Box::new(TextModel::load(model_dir, device)?))
    }
}

/// One trained candidate and how it did.
struct Candidate {
    model: TextModel,
    history: Vec<EpochMetrics>,
    best_epoch: usize,
    stopped_early: bool,
    validation_accuracy: Option<f64>,
    /// Class probabilities on validation and test (computed during training).
    probs: [Vec<Vec<f32>>; 2],
    /// How maxent's penalty was chosen (cross-validation), when it was.
    regularization: Option<serde_json::Value>,
}

fn accuracy(probs: &[Vec<f32>], truth: &[LabeledFile]) -> Option<f64> {
    if truth.is_empty() {
        return None;
    }
    let ok = probs
        .iter()
        .zip(truth)
        .filter(|(p, f)| crate::eval::metrics::argmax(p) == f.label)
        .count();
    Some(ok as f64 / truth.len() as f64)
}

fn train(ctx: &RunContext) -> Result<PathBuf> {
    let p = TextParams::from_resolved(&ctx.params);
    let data = ResolvedData::of(&ctx.project);
    let mut scanning = ctx.phase(Phase::Scanning, 0);
    let splits = scan_splits(
        &data,
        &p.columns,
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

    let explicit = p
        .encoder
        .as_ref()
        .map(|w| {
            if w.to_string_lossy().starts_with("hf://") {
                w.clone()
            } else {
                ctx.project.resolve(w)
            }
        })
        .or(ctx.options.weights.clone());
    let mut notes: Vec<serde_json::Value> = Vec::new();
    let encoder_files = match p.algorithm {
        Algorithm::Maxent => None,
        Algorithm::Transfer => Some(text_encoder::locate(explicit.as_deref(), true)?),
        Algorithm::Auto => match text_encoder::locate(explicit.as_deref(), false) {
            Ok(f) => Some(f),
            Err(e) if explicit.is_some() => return Err(e),
            Err(e) => {
                notes.push(json!({"algorithm": "transfer", "skipped": e.to_string()}));
                None
            }
        },
    };
    let mut candidates: Vec<Candidate> = Vec::new();
    if p.algorithm != Algorithm::Transfer {
        candidates.push(train_maxent(ctx, &p, &splits)?);
    }
    if let Some(files) = &encoder_files {
        candidates.push(train_transfer(ctx, &p, &splits, files)?);
    }
    for c in &candidates {
        notes.push(json!({
            "algorithm": c.model.algorithm(),
            "validation_accuracy": c.validation_accuracy,
            "epochs_run": c.history.len(),
            "regularization": c.regularization,
        }));
    }
    // The better validation accuracy wins; ties (and no validation data) keep the first (maxent).
    let mut chosen = 0;
    for (i, c) in candidates.iter().enumerate() {
        let best = candidates.get(chosen).and_then(|b| b.validation_accuracy);
        if c.validation_accuracy.unwrap_or(-1.0) > best.unwrap_or(-1.0) {
            chosen = i;
        }
    }
    if chosen >= candidates.len() {
        return Err(Error::Unsupported("no algorithm was trained".into()));
    }
    let c = candidates.swap_remove(chosen);
    let mut reports = Vec::new();
    for ((name, files), probs) in [("validation", &splits.validation), ("test", &splits.test)]
        .into_iter()
        .zip(&c.probs)
    {
        if files.is_empty() {
            continue;
        }
        let truth: Vec<usize> = files.iter().map(|f| f.label).collect();
        let inputs: Vec<PathBuf> = files.iter().map(|f| f.path.clone()).collect();
        let r = ClassificationReport::compute(&splits.labels, &truth, probs, &inputs);
        ctx.emit(Event::Evaluated {
            split: name.into(),
            num_examples: r.num_examples,
            metric: "accuracy".into(),
            value: r.accuracy,
        });
        reports.push((name.to_string(), r));
    }
    if let Some(w) = crate::eval::usefulness::first_classifier_warning(&reports, TEXT_ADVICE) {
        ctx.warn(w, None);
    }
    write_run_outputs(ctx, &c, &splits, &reports, &notes)
}

fn train_maxent(ctx: &RunContext, p: &TextParams, splits: &TextSplits) -> Result<Candidate> {
    let sets = [&splits.train, &splits.validation, &splits.test];
    let total: usize = sets.iter().map(|s| s.len()).sum();
    let mut phase = ctx.phase(Phase::ExtractingFeatures, total as u64);
    let train_texts = splits.texts_of(&splits.train);
    let vectorizer = Vectorizer::fit(&train_texts, p.rules.clone());
    ctx.check()?;
    let mut rows = Vec::new();
    let mut done = 0;
    for files in sets {
        let texts = splits.texts_of(files);
        rows.push(vectorizer.transform_many(&texts));
        done += files.len();
        phase.set(done as u64);
        ctx.check()?;
    }
    phase.set(total as u64);
    if vectorizer.dim() == 0 {
        return Err(Error::data(
            "no term appears often enough to become a feature; lower min_count or add texts",
            ctx.project.resolve(&ctx.project.data.train),
        ));
    }
    let labels_of =
        |files: &[LabeledFile]| -> Vec<u32> { files.iter().map(|f| f.label as u32).collect() };
    let (ytr, yva) = (labels_of(&splits.train), labels_of(&splits.validation));
    let train = SparseSet {
        rows: &rows[0],
        labels: &ytr,
    };
    let validation = SparseSet {
        rows: &rows[1],
        labels: &yva,
    };
    let mut cfg = p.maxent.clone();
    let mut regularization = None;
    if p.choose_regularization {
        let (l2, scores) =
            text_maxent::choose_l2(ctx, &train, vectorizer.dim(), splits.labels.len())?;
        regularization = Some(json!({
            "l2": l2,
            "chosen_by": "stratified 3-fold cross-validation of C (l2 = 1 / (C·n)): the lowest log loss within one standard error of the best accuracy",
            "cross_validation": scores,
        }));
        cfg.l2 = l2;
    }
    let (model, history, best_epoch) = text_maxent::train(
        ctx,
        &train,
        Some(&validation),
        vectorizer.dim(),
        splits.labels.len(),
        &cfg,
    )?;
    let probs = [
        rows[1]
            .iter()
            .map(|r| model.probabilities(r))
            .collect::<Vec<_>>(),
        rows[2]
            .iter()
            .map(|r| model.probabilities(r))
            .collect::<Vec<_>>(),
    ];
    let validation_accuracy = accuracy(&probs[0], &splits.validation);
    let stopped_early = history.len() < p.maxent.max_iterations;
    Ok(Candidate {
        model: TextModel {
            labels: splits.labels.clone(),
            columns: p.columns.clone(),
            classifier: Classifier::Maxent { vectorizer, model },
            device: Device::Cpu,
        },
        history,
        best_epoch,
        stopped_early,
        validation_accuracy,
        probs,
        regularization,
    })
}

fn train_transfer(
    ctx: &RunContext,
    p: &TextParams,
    splits: &TextSplits,
    files: &text_encoder::EncoderFiles,
) -> Result<Candidate> {
    let encoder = TextEncoder::load(files, &ctx.device)?;
    let all: Vec<&LabeledFile> = splits
        .train
        .iter()
        .chain(&splits.validation)
        .chain(&splits.test)
        .collect();
    let embeddings = embed_cached(ctx, &encoder, splits, &all, p.embedding_batch_size)?;
    let mut sets = [
        Features::new(encoder.dim),
        Features::new(encoder.dim),
        Features::new(encoder.dim),
    ];
    let mut offset = 0;
    for (slot, files) in [&splits.train, &splits.validation, &splits.test]
        .into_iter()
        .enumerate()
    {
        for (f, e) in files.iter().zip(&embeddings[offset..offset + files.len()]) {
            sets[slot].push(e, f.label as u32);
        }
        offset += files.len();
    }
    let cfg = FitConfig {
        head: p.head.clone(),
        epochs: p.epochs,
        batch_size: p.batch_size,
        learning_rate: p.learning_rate,
        weight_decay: p.weight_decay,
        patience: p.patience,
        seed: ctx.project.seed,
    };
    let [train_set, validation_set, test_set] = sets;
    let validation = (!validation_set.is_empty()).then_some(&validation_set);
    let outcome = fit::fit(ctx, &train_set, validation, splits.labels.len(), &cfg)?;
    let probs = [
        outcome.probabilities(&validation_set, &ctx.device)?,
        outcome.probabilities(&test_set, &ctx.device)?,
    ];
    let raw: HashMap<String, Tensor> = outcome
        .head
        .export_tensors(&outcome.mean, &outcome.std)?
        .into_iter()
        .collect();
    let head = Head::from_tensors(p.head.clone(), &raw)?;
    let validation_accuracy = accuracy(&probs[0], &splits.validation);
    Ok(Candidate {
        model: TextModel {
            labels: splits.labels.clone(),
            columns: p.columns.clone(),
            classifier: Classifier::Transfer {
                encoder: Box::new(encoder),
                head,
                embedding_batch_size: p.embedding_batch_size,
            },
            device: ctx.device.clone(),
        },
        history: outcome.history,
        best_epoch: outcome.best_epoch,
        stopped_early: outcome.stopped_early,
        validation_accuracy,
        probs,
        regularization: None,
    })
}

/// Sentence embeddings of `files`, from the feature cache where possible.
fn embed_cached(
    ctx: &RunContext,
    encoder: &TextEncoder,
    splits: &TextSplits,
    files: &[&LabeledFile],
    batch: usize,
) -> Result<Vec<Vec<f32>>> {
    let signature = encoder.signature();
    let mut cache = match FeatureCache::open(&ctx.cache_dir(), &signature, encoder.dim) {
        Ok(c) => Some(c),
        Err(e) => {
            ctx.warn(
                format!("feature cache unavailable, embeddings will not be reused ({e})"),
                None,
            );
            None
        }
    };
    let keys: Vec<[u8; 32]> = files
        .iter()
        .map(|f| FeatureCache::key(&signature, &f.hash, ""))
        .collect();
    let mut out: Vec<Option<Vec<f32>>> = keys
        .iter()
        .map(|k| cache.as_ref().and_then(|c| c.get(k)).map(<[f32]>::to_vec))
        .collect();
    let todo: Vec<usize> = (0..files.len()).filter(|&i| out[i].is_none()).collect();
    let cached = files.len() - todo.len();
    if let (true, Some(c)) = (cached > 0, cache.as_ref()) {
        ctx.emit(Event::Cache {
            reused: cached,
            total: files.len(),
            path: c.path().to_path_buf(),
        });
    }
    let mut phase = ctx.phase(Phase::ExtractingFeatures, files.len() as u64);
    phase.set(cached as u64);
    // Longest texts last, in slices of a few batches so the cache fills as extraction goes.
    let mut order = todo;
    let text = |i: usize| {
        splits
            .texts
            .get(&files[i].path)
            .map(String::as_str)
            .unwrap_or("")
    };
    order.sort_by_key(|&i| text(i).len());
    let mut done = cached;
    for slice in order.chunks(batch.max(1) * 8) {
        let texts: Vec<&str> = slice.iter().map(|&i| text(i)).collect();
        let base = done;
        let e = encoder.embed_many(
            &texts,
            batch,
            &mut |d| phase.set((base + d) as u64),
            &|| ctx.check(),
        )?;
        let mut fresh = Vec::with_capacity(slice.len());
        for (&i, row) in slice.iter().zip(e) {
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
        done += slice.len();
    }
    Ok(out.into_iter().map(Option::unwrap_or_default).collect())
}

/// Writes `report.json`, the plots and the `model/` folder of a finished run.
fn write_run_outputs(
    ctx: &RunContext,
    c: &Candidate,
    splits: &TextSplits,
    reports: &[(String, ClassificationReport)],
    candidates: &[serde_json::Value],
) -> Result<PathBuf> {
    let dir = &ctx.run_dir;
    let total = 3 + reports.len() + 1;
    let mut phase = ctx.phase(Phase::Exporting, total as u64);
    let report = json!({
        "template": ctx.project.template,
        "algorithm": c.model.algorithm(),
        "candidates": candidates,
        "labels": splits.labels,
        "data": {
            "num_train": splits.train.len(),
            "num_validation": splits.validation.len(),
            "num_test": splits.test.len(),
            "issues": splits.summary.issues,
        },
        "training": {
            "epochs_run": c.history.len(),
            "best_epoch": c.best_epoch,
            "stopped_early": c.stopped_early,
            "history": c.history,
        },
        "evaluation": reports.iter().map(|(k, v)| (k.clone(), v)).collect::<BTreeMap<_, _>>(),
        "elapsed_secs": ctx.started.elapsed().as_secs_f64(),
    });
    write_json(&dir.report_json(), &report)?;
    plots::classifier_curves(&dir.report_dir(), &c.history)?;
    let mut written = 3;
    phase.set(written);
    for (name, r) in reports {
        plots::report_confusion_matrix(&dir.report_dir(), name, r)?;
        written += 1;
        phase.set(written);
    }
    let data_hash = |files: &[LabeledFile]| {
        let mut h = blake3::Hasher::new();
        let mut sorted: Vec<&LabeledFile> = files.iter().collect();
        sorted.sort_by_key(|f| f.hash);
        for f in sorted {
            h.update(&f.hash);
            h.update(
                splits
                    .labels
                    .get(f.label)
                    .map(String::as_bytes)
                    .unwrap_or_default(),
            );
        }
        h.finalize().to_hex().to_string()
    };
    let resolved: BTreeMap<&String, &crate::params::ParamValue> = ctx.params.0.iter().collect();
    let encoder = match &c.model.classifier {
        Classifier::Transfer { encoder, .. } => json!({
            "id": text_encoder::ENCODER_ID,
            "weights_source": encoder.files.source,
            "weights_blake3": encoder.weights_hash,
        }),
        Classifier::Maxent { .. } => serde_json::Value::Null,
    };
    let manifest = json!({
        "lathe_version": env!("CARGO_PKG_VERSION"),
        "created": crate::train::run_dir::utc_iso(std::time::SystemTime::now()),
        "template": ctx.project.template,
        "seed": ctx.project.seed,
        "device": crate::device::label(&ctx.device),
        "params": resolved,
        "algorithm": c.model.algorithm(),
        "data": {
            "train": { "path": ctx.project.resolve(&ctx.project.data.train), "num_examples": splits.train.len(), "blake3": data_hash(&splits.train) },
            "validation": { "num_examples": splits.validation.len(), "blake3": data_hash(&splits.validation) },
            "test": { "num_examples": splits.test.len(), "blake3": data_hash(&splits.test) },
        },
        "encoder": encoder,
        "training": { "epochs_run": c.history.len(), "best_epoch": c.best_epoch },
    });
    let target = dir.model();
    c.model.write(&target, &ctx.project.template, &manifest)?;
    phase.set(total as u64);
    ctx.emit(Event::Exported {
        format: "safetensors".into(),
        path: target.join(crate::train::run_dir::MODEL_WEIGHTS),
    });
    Ok(target)
}
