//! The sound classifier: scan class folders of audio files, decode them to 16 kHz mono, cut
//! log-mel windows, train a compact CNN from scratch (AdamW, warm-up + cosine schedule, fresh
//! noise / gain / shift / speed augmentation every epoch, a checkpoint every epoch, early
//! stopping on file-level validation accuracy), evaluate per file (mean of window
//! probabilities) and export.

use crate::data::audio_decode::{self, AUDIO_EXTENSIONS};
use crate::data::audio_frontend::{self, LogMel};
use crate::data::image_folder::{FolderScan, LabeledFile};
use crate::data::{DataKind, DatasetSummary};
use crate::data::class_splits::{self, ClassSplits, SplitSources};
use crate::error::{Error, Result};
use crate::eval::{ClassificationReport, plots};
use crate::export::st;
use crate::fit::optim::{AdamW, cosine_lr};
use crate::fsutil::write_json;
use crate::nets::audio_cnn::{AudioCnn, AudioCnnConfig};
use crate::nets::crepe::Crepe;
use crate::nets::head::Head;
use crate::params::{ParamSpec, ResolvedParams};
use crate::task::{Model, ResolvedData, ScanProgress, Task};
use crate::templates::sound::encoder::Encoder;
use crate::templates::sound::model::{self as sound_model, SoundModel, SoundNet, TransferNet};
pub use crate::templates::sound::params::{SoundParams, param_specs};
use crate::templates::sound::transfer as sound_transfer;
use crate::train::feature_cache::FeatureCache;
use crate::train::fit::{self as train_fit, Features, FitConfig};
use crate::train::head_choice;
use crate::train::scan_report::SplitSizes;
use crate::train::{Control, EpochMetrics, Event, Phase, RunContext};
use candle_core::{D, DType, Device, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// What to try when the model is no better than guessing.
const SOUND_ADVICE: &str = "Check that each class folder holds the right clips, add more clips per class (several seconds each helps), or try another encoder.";

/// Sound classification (a CNN on log-mel windows).
pub struct SoundClassification;

impl Task for SoundClassification {
    fn id(&self) -> &'static str {
        sound_model::TASK_ID
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
        Ok(scan_splits(data, params.float("validation_split"), progress, control)?.summary)
    }

    fn train(&self, ctx: &RunContext) -> Result<PathBuf> {
        train(ctx)
    }

    fn load(&self, model_dir: &Path, device: &Device) -> Result<Box<dyn Model>> {
        Ok(Box::new(SoundModel::load(model_dir, device)?))
    }
}

fn sound_probe(path: &Path, bytes: &[u8]) -> std::result::Result<(), String> {
    audio_decode::probe(path, bytes)
}

/// The folder-per-class scan settings for sound files.
pub fn sound_scan(split: &str) -> FolderScan<'_> {
    FolderScan {
        split,
        extensions: AUDIO_EXTENSIONS,
        noun: "sound file",
        probe: &sound_probe,
    }
}

/// The scanned splits of a sound dataset.
pub type SoundSplits = ClassSplits;

/// Scans every split, runs the health checks and splits validation off training if needed.
pub fn scan_splits(
    data: &ResolvedData,
    validation_split: f64,
    progress: ScanProgress<'_>,
    control: &Control,
) -> Result<SoundSplits> {
    let sources = SplitSources {
        train: &data.train,
        validation: data.validation.as_deref(),
        test: data.test.as_deref(),
        scan: &sound_scan,
        noun: "sound file",
        kind: DataKind::Sound,
    };
    class_splits::scan(&sources, validation_split, data.seed, progress, &|| {
        if control.is_cancelled() {
            Err(Error::Cancelled)
        } else {
            Ok(())
        }
    })
}

/// A decoded file: its label, path, clean windows and (training files) the waveform.
struct Clip {
    path: PathBuf,
    /// BLAKE3 of the file content (keys the feature cache).
    hash: [u8; 32],
    label: usize,
    windows: Vec<Vec<f32>>,
    wave: Vec<f32>,
}

/// Decodes `files` in parallel into clips; undecodable files are warned about and left out.
fn decode_clips(
    ctx: &RunContext,
    mel: &LogMel,
    files: &[LabeledFile],
    keep_wave: bool,
    max_samples: usize,
    done: &mut u64,
    phase: &mut crate::train::context::PhaseTracker<'_>,
) -> Result<Vec<Clip>> {
    let mut clips = Vec::with_capacity(files.len());
    for chunk in files.chunks(64) {
        ctx.check()?;
        let decoded: Vec<std::result::Result<(Clip, bool), String>> = chunk
            .par_iter()
            .map(|f| {
                let (wave, truncated) = audio_decode::decode_to_vec(&f.path, max_samples)?;
                let windows = audio_frontend::windows(mel, &wave);
                Ok((
                    Clip {
                        path: f.path.clone(),
                        hash: f.hash,
                        label: f.label,
                        windows,
                        wave: if keep_wave { wave } else { Vec::new() },
                    },
                    truncated,
                ))
            })
            .collect();
        for (f, r) in chunk.iter().zip(decoded) {
            match r {
                Ok((clip, truncated)) => {
                    if truncated {
                        ctx.warn(
                            format!(
                                "longer than max_train_secs ({:.0} s): only its start is used",
                                max_samples as f64 / audio_decode::SAMPLE_RATE as f64
                            ),
                            Some(&f.path),
                        );
                    }
                    clips.push(clip);
                }
                Err(reason) => ctx.warn(format!("{reason}; the file was skipped"), Some(&f.path)),
            }
        }
        *done += chunk.len() as u64;
        phase.set(*done);
    }
    Ok(clips)
}

fn train(ctx: &RunContext) -> Result<PathBuf> {
    let p = SoundParams::from_resolved(&ctx.params);
    let data = ResolvedData::of(&ctx.project);
    let mut scanning = ctx.phase(Phase::Scanning, 0);
    let splits = scan_splits(
        &data,
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

    let mel = LogMel::new(p.frontend.clone());
    let max_train = (p.max_train_secs * audio_decode::SAMPLE_RATE as f64) as usize;
    let total = (splits.train.len() + splits.validation.len() + splits.test.len()) as u64;
    let waves = p.algorithm != "cnn";
    let mut phase = ctx.phase(Phase::ExtractingFeatures, total);
    let mut done = 0;
    let train_clips = decode_clips(
        ctx,
        &mel,
        &splits.train,
        true,
        max_train,
        &mut done,
        &mut phase,
    )?;
    let val_clips = decode_clips(
        ctx,
        &mel,
        &splits.validation,
        waves,
        usize::MAX,
        &mut done,
        &mut phase,
    )?;
    let test_clips = decode_clips(
        ctx,
        &mel,
        &splits.test,
        waves,
        usize::MAX,
        &mut done,
        &mut phase,
    )?;
    if train_clips.is_empty() {
        return Err(Error::data(
            "no training sound file could be decoded; check the warnings above",
            &data.train,
        ));
    }
    warn_short_clips(ctx, &p, &train_clips);
    let algorithms = candidates_for(ctx, &p, &splits, val_clips.is_empty());
    let mut leaderboard = Vec::new();
    let mut chosen: Option<Trained> = None;
    let mut mel = Some(mel);
    for algorithm in algorithms {
        let started = std::time::Instant::now();
        let trained = match algorithm {
            "cnn" => train_cnn(
                ctx,
                &p,
                mel.take()
                    .unwrap_or_else(|| LogMel::new(p.frontend.clone())),
                splits.labels.len(),
                &train_clips,
                &val_clips,
            )?,
            "transfer" => {
                let weights = p
                    .weights
                    .as_ref()
                    .map(|w| ctx.project.resolve(w))
                    .or(ctx.options.weights.clone());
                let encoder =
                    Encoder::Crepe(Box::new(Crepe::load(weights.as_deref(), &ctx.device)?));
                let clips = [&train_clips[..], &val_clips[..], &test_clips[..]];
                train_on_encoder(ctx, &p, encoder, splits.labels.len(), clips)?
            }
            _ => {
                let encoder = Encoder::statistics(&p.frontend);
                let clips = [&train_clips[..], &val_clips[..], &test_clips[..]];
                train_on_encoder(ctx, &p, encoder, splits.labels.len(), clips)?
            }
        };
        let better = chosen.as_ref().is_none_or(|b| {
            trained.validation_accuracy.unwrap_or(0.0) > b.validation_accuracy.unwrap_or(0.0)
        });
        leaderboard.push(json!({
            "algorithm": trained.name,
            "validation_accuracy": trained.validation_accuracy,
            "fit_secs": started.elapsed().as_secs_f64(),
            "head_selection": trained.head_selection,
        }));
        if better {
            chosen = Some(trained);
        }
    }
    let Some(chosen) = chosen else {
        return Err(Error::Unsupported("no model was trained".into()));
    };

    let mut reports = Vec::new();
    for (name, clips) in [("validation", &val_clips), ("test", &test_clips)] {
        if clips.is_empty() {
            continue;
        }
        let mut phase = ctx.phase(Phase::Evaluating, clips.len() as u64);
        let probs = chosen.file_probabilities(name, clips)?;
        let truth: Vec<usize> = clips.iter().map(|c| c.label).collect();
        let inputs: Vec<PathBuf> = clips.iter().map(|c| c.path.clone()).collect();
        let r = ClassificationReport::compute(&splits.labels, &truth, &probs, &inputs);
        ctx.emit(Event::Evaluated {
            split: name.into(),
            num_examples: r.num_examples,
            metric: "accuracy".into(),
            value: r.accuracy,
        });
        reports.push((name.to_string(), r));
        phase.set(clips.len() as u64);
    }
    if let Some(w) = crate::eval::usefulness::first_classifier_warning(&reports, SOUND_ADVICE) {
        ctx.warn(w, None);
    }
    write_run_outputs(ctx, &chosen, &p, &splits, &reports, &leaderboard)
}

/// Warns when most training clips are much shorter than a window: each is zero-padded to a
/// full window, so the window setting, not the sound, decides much of what the model sees.
fn warn_short_clips(ctx: &RunContext, p: &SoundParams, clips: &[Clip]) {
    let rate = audio_decode::SAMPLE_RATE as f64;
    let mut secs: Vec<f64> = clips.iter().map(|c| c.wave.len() as f64 / rate).collect();
    if secs.is_empty() {
        return;
    }
    secs.sort_by(f64::total_cmp);
    let median = secs[secs.len() / 2];
    let window = (p.frontend.window_frames * p.frontend.hop_length) as f64 / rate;
    if median < window / 2.0 {
        ctx.warn(
            format!(
                "half the training clips are shorter than {median:.2} s while a window is {window:.2} s: each short clip is padded with silence to a full window; set window_secs near the clips' length (e.g. {:.1})",
                (median * 1.2).max(0.1)
            ),
            None,
        );
    }
}

/// Clips per class from which `auto` also trains the CNN from scratch (below it, a network
/// trained from nothing rarely beats the encoders and costs minutes).
const CNN_MIN_CLIPS_PER_CLASS: usize = 200;

/// The candidates `algorithm` asks for, cheapest first (ties go to the earlier one).
fn candidates_for(
    ctx: &RunContext,
    p: &SoundParams,
    splits: &SoundSplits,
    no_validation: bool,
) -> Vec<&'static str> {
    match p.algorithm.as_str() {
        "cnn" => vec!["cnn"],
        "transfer" => vec!["transfer"],
        "statistics" => vec!["statistics"],
        _ if no_validation => {
            ctx.warn(
                "algorithm = \"auto\" needs validation data to choose; training the statistics model only (set validation_split > 0)",
                None,
            );
            vec!["statistics"]
        }
        _ => {
            let per_class = splits.train.len() / splits.labels.len().max(1);
            let mut v = vec!["statistics", "transfer"];
            if per_class >= CNN_MIN_CLIPS_PER_CLASS {
                v.push("cnn");
            }
            v
        }
    }
}

/// A trained candidate model.
pub(crate) struct Trained {
    pub name: &'static str,
    pub validation_accuracy: Option<f64>,
    /// How the head on encoder features was chosen (`train::head_choice`).
    pub head_selection: Option<serde_json::Value>,
    pub outcome: FitOutcome,
    pub model: TrainedModel,
}

pub(crate) enum TrainedModel {
    Cnn {
        net: SoundNet,
        varmap: VarMap,
    },
    /// The transfer model and its per-window probabilities of the validation and test clips.
    Transfer {
        net: TransferNet,
        validation: Vec<Vec<f32>>,
        test: Vec<Vec<f32>>,
    },
}

impl Trained {
    fn file_probabilities(&self, split: &str, clips: &[Clip]) -> Result<Vec<Vec<f32>>> {
        match &self.model {
            TrainedModel::Cnn { net, .. } => file_probabilities(net, clips),
            TrainedModel::Transfer {
                validation, test, ..
            } => Ok(if split == "test" {
                test.clone()
            } else {
                validation.clone()
            }),
        }
    }
}

fn train_cnn(
    ctx: &RunContext,
    p: &SoundParams,
    mel: LogMel,
    num_classes: usize,
    train_clips: &[Clip],
    val_clips: &[Clip],
) -> Result<Trained> {
    let (mean, std) = band_stats(train_clips, p.frontend.n_mels);
    let device = ctx.device.clone();
    let mean_t = Tensor::from_vec(mean, p.frontend.n_mels, &device)?;
    let std_t = Tensor::from_vec(std, p.frontend.n_mels, &device)?;
    let cnn_cfg = AudioCnnConfig {
        width: p.cnn_width,
        num_classes,
        frames: p.frontend.window_frames,
        n_mels: p.frontend.n_mels,
        dropout: p.dropout,
    };
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &device);
    let cnn = AudioCnn::new(cnn_cfg, vb)?;
    seeded_init(&varmap, ctx.project.seed)?;
    let net = SoundNet {
        frontend: mel,
        cnn,
        mean: mean_t,
        std: std_t,
        device: device.clone(),
    };
    let outcome = fit(ctx, &net, &varmap, p, train_clips, val_clips)?;
    let validation_accuracy = if val_clips.is_empty() {
        None
    } else {
        Some(validate(&net, val_clips)?.1)
    };
    Ok(Trained {
        name: "cnn",
        validation_accuracy,
        head_selection: None,
        outcome,
        model: TrainedModel::Cnn { net, varmap },
    })
}

/// File-level accuracy of per-file probabilities.
fn accuracy(probs: &[Vec<f32>], clips: &[Clip]) -> f64 {
    let correct = probs
        .iter()
        .zip(clips)
        .filter(|(p, c)| crate::eval::metrics::argmax(p) == c.label)
        .count();
    correct as f64 / clips.len().max(1) as f64
}

/// Trains a candidate on an encoder's window features (cached by file content, window and
/// encoder), then a head (`train::head_choice`); a file's probabilities average its windows'.
fn train_on_encoder(
    ctx: &RunContext,
    p: &SoundParams,
    encoder: Encoder,
    num_classes: usize,
    [train_clips, val_clips, test_clips]: [&[Clip]; 3],
) -> Result<Trained> {
    let hop = p.frontend.hop_length;
    let (window, window_hop) = (
        p.frontend.window_frames * hop,
        p.frontend.window_hop_frames * hop,
    );
    let signature = encoder.signature(window, window_hop);
    let dim = encoder.feature_dim();
    let seed = ctx.project.seed;
    // (clip, augmented copy?) for every clip of every split.
    let mut jobs: Vec<(usize, &Clip, bool)> = Vec::new();
    for c in train_clips {
        jobs.push((0, c, false));
        if p.augment.any() {
            jobs.push((0, c, true));
        }
    }
    jobs.extend(val_clips.iter().map(|c| (1, c, false)));
    jobs.extend(test_clips.iter().map(|c| (2, c, false)));
    let mut cache = match FeatureCache::open(&ctx.cache_dir(), &signature, dim) {
        Ok(c) => Some(c),
        Err(e) => {
            ctx.warn(
                format!("feature cache unavailable, features will not be reused ({e})"),
                None,
            );
            None
        }
    };
    let mut phase = ctx.phase(Phase::ExtractingFeatures, jobs.len() as u64);
    let mut reused = 0usize;
    let mut sets = [Features::new(dim), Features::new(dim), Features::new(dim)];
    // Which clip of its split each window row belongs to (for file-level probabilities).
    let mut owners: [Vec<usize>; 3] = Default::default();
    let mut index_in_split = [0usize; 3];
    let mut total_windows = 0usize;
    for (j, (split, clip, augmented)) in jobs.iter().enumerate() {
        ctx.check()?;
        let content = clip.hash;
        let wave = if *augmented {
            let mut h = [0u8; 8];
            h.copy_from_slice(&content[..8]);
            p.augment.apply(&clip.wave, seed ^ u64::from_le_bytes(h))
        } else {
            clip.wave.clone()
        };
        let windows = sound_transfer::sample_windows(&wave, window, window_hop);
        let variant = |i: usize| {
            format!(
                "{}{i}/{}",
                if *augmented {
                    format!("aug{seed}/")
                } else {
                    String::new()
                },
                windows.len()
            )
        };
        let keys: Vec<[u8; 32]> = (0..windows.len())
            .map(|i| FeatureCache::key(&signature, &content, &variant(i)))
            .collect();
        let cached: Option<Vec<Vec<f32>>> = cache
            .as_ref()
            .and_then(|c| keys.iter().map(|k| c.get(k).map(<[f32]>::to_vec)).collect());
        let feats = match cached {
            Some(f) => {
                reused += f.len();
                f
            }
            None => {
                let f = encoder.window_features(&windows, &ctx.device)?;
                if let Some(c) = cache.as_mut() {
                    let fresh: Vec<([u8; 32], Vec<f32>)> =
                        keys.iter().copied().zip(f.iter().cloned()).collect();
                    if let Err(e) = c.insert_many(&fresh) {
                        ctx.warn(
                            format!(
                                "could not write the feature cache, continuing without it ({e})"
                            ),
                            None,
                        );
                        cache = None;
                    }
                }
                f
            }
        };
        total_windows += feats.len();
        let s = *split;
        for f in &feats {
            sets[s].push(f, clip.label as u32);
            owners[s].push(index_in_split[s]);
        }
        if !*augmented {
            index_in_split[s] += 1;
        }
        phase.set(j as u64 + 1);
    }
    if reused > 0
        && let Some(c) = cache.as_ref()
    {
        ctx.emit(Event::Cache {
            reused,
            total: total_windows,
            path: c.path().to_path_buf(),
        });
    }
    let [train_set, val_set, test_set] = sets;
    let cfg = FitConfig {
        head: p.transfer_head.kind(),
        epochs: p.transfer_epochs,
        batch_size: 64,
        learning_rate: 1e-3,
        weight_decay: 1e-4,
        patience: 20,
        seed,
    };
    let validation = (!val_set.is_empty()).then_some(&val_set);
    let fitted = head_choice::fit_head(
        ctx,
        &p.transfer_head,
        &train_set,
        validation,
        num_classes,
        &cfg,
    )?;
    let per_file = |outcome: &train_fit::FitOutcome,
                    set: &Features,
                    owners: &[usize],
                    n: usize|
     -> Result<Vec<Vec<f32>>> {
        let probs = outcome.probabilities(set, &ctx.device)?;
        let mut sums = vec![vec![0f64; num_classes]; n];
        let mut counts = vec![0usize; n];
        for (row, &o) in probs.iter().zip(owners) {
            if let (Some(s), Some(c)) = (sums.get_mut(o), counts.get_mut(o)) {
                for (a, v) in s.iter_mut().zip(row) {
                    *a += *v as f64;
                }
                *c += 1;
            }
        }
        Ok(sums
            .iter()
            .zip(&counts)
            .map(|(s, &c)| s.iter().map(|v| (v / c.max(1) as f64) as f32).collect())
            .collect())
    };
    // Validation from the head fitted on training windows; test and export from the final one.
    let final_outcome = fitted.final_outcome();
    let validation_probs = per_file(&fitted.outcome, &val_set, &owners[1], val_clips.len())?;
    let test_probs = per_file(final_outcome, &test_set, &owners[2], test_clips.len())?;
    let validation_accuracy =
        (!val_clips.is_empty()).then(|| accuracy(&validation_probs, val_clips));
    let raw: HashMap<String, Tensor> = final_outcome
        .head
        .export_tensors(&final_outcome.mean, &final_outcome.std)?
        .into_iter()
        .collect();
    let head = Head::from_tensors(final_outcome.head.kind.clone(), &raw)?;
    Ok(Trained {
        name: encoder.algorithm(),
        validation_accuracy,
        head_selection: Some(fitted.report()),
        outcome: FitOutcome {
            history: fitted.outcome.history.clone(),
            best_epoch: fitted.outcome.best_epoch,
            stopped_early: fitted.outcome.stopped_early,
        },
        model: TrainedModel::Transfer {
            net: TransferNet {
                encoder,
                head,
                window,
                hop: window_hop,
                device: ctx.device.clone(),
            },
            validation: validation_probs,
            test: test_probs,
        },
    })
}

/// Smallest per-band standard deviation the CNN's input normalization divides by (log units).
const MIN_BAND_STD: f64 = 1.0;

/// Per-mel-band mean and standard deviation of the clean training windows.
fn band_stats(clips: &[Clip], n_mels: usize) -> (Vec<f32>, Vec<f32>) {
    let mut sum = vec![0f64; n_mels];
    let mut sq = vec![0f64; n_mels];
    let mut n = 0f64;
    for w in clips.iter().flat_map(|c| &c.windows) {
        for frame in w.chunks_exact(n_mels) {
            for (b, &v) in frame.iter().enumerate() {
                sum[b] += v as f64;
                sq[b] += (v as f64) * (v as f64);
            }
            n += 1.0;
        }
    }
    let n = n.max(1.0);
    let mean: Vec<f32> = sum.iter().map(|s| (s / n) as f32).collect();
    let std = sq
        .iter()
        .zip(&sum)
        // Floor of one log unit: a band that is empty in every clean clip (telephone audio
        // above 4 kHz) has a spread near 0, and the first augmented window with noise there
        // would otherwise reach thousands after normalization and drown everything else.
        .map(|(q, s)| ((q / n - (s / n).powi(2)).max(0.0).sqrt().max(MIN_BAND_STD)) as f32)
        .collect();
    (mean, std)
}

/// Kaiming-uniform weights and zero biases from the project seed (candle's own initializers
/// draw from an unseeded generator).
fn seeded_init(varmap: &VarMap, seed: u64) -> Result<()> {
    let data = varmap
        .data()
        .lock()
        .map_err(|_| Error::Unsupported("variable map lock poisoned".into()))?;
    let mut names: Vec<&String> = data.keys().collect();
    names.sort();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ 0x05ee_d50d);
    for name in names {
        let Some(var) = data.get(name) else { continue };
        let dims = var.dims().to_vec();
        if name.contains(".bn.") {
            continue;
        }
        let values: Vec<f32> = if dims.len() >= 2 {
            let fan_in: usize = dims.iter().skip(1).product();
            let bound = (6.0 / fan_in.max(1) as f32).sqrt();
            (0..var.elem_count())
                .map(|_| rng.random_range(-bound..bound))
                .collect()
        } else {
            vec![0.0; var.elem_count()]
        };
        var.set(&Tensor::from_vec(values, dims, var.device())?)?;
    }
    Ok(())
}

/// How training went.
pub(crate) struct FitOutcome {
    history: Vec<EpochMetrics>,
    best_epoch: usize,
    stopped_early: bool,
}

/// Mean window probabilities of each clip (batched across clips).
fn file_probabilities(net: &SoundNet, clips: &[Clip]) -> Result<Vec<Vec<f32>>> {
    let mut out = Vec::with_capacity(clips.len());
    let mut batch: Vec<Vec<f32>> = Vec::new();
    let mut owners: Vec<usize> = Vec::new();
    let mut sums: Vec<Vec<f64>> = vec![vec![0.0; net.cnn.cfg.num_classes]; clips.len()];
    let mut counts = vec![0usize; clips.len()];
    let mut run = |batch: &mut Vec<Vec<f32>>, owners: &mut Vec<usize>| -> Result<()> {
        for (row, &o) in net.probabilities(batch)?.iter().zip(owners.iter()) {
            for (s, v) in sums[o].iter_mut().zip(row) {
                *s += *v as f64;
            }
            counts[o] += 1;
        }
        batch.clear();
        owners.clear();
        Ok(())
    };
    for (i, c) in clips.iter().enumerate() {
        for w in &c.windows {
            batch.push(w.clone());
            owners.push(i);
            if batch.len() >= 64 {
                run(&mut batch, &mut owners)?;
            }
        }
    }
    run(&mut batch, &mut owners)?;
    for (s, n) in sums.iter().zip(&counts) {
        out.push(s.iter().map(|v| (v / (*n).max(1) as f64) as f32).collect());
    }
    Ok(out)
}

/// File-level validation loss (−ln p of the true class) and accuracy.
fn validate(net: &SoundNet, clips: &[Clip]) -> Result<(f64, f64)> {
    let probs = file_probabilities(net, clips)?;
    let mut loss = 0.0;
    let mut correct = 0usize;
    for (p, c) in probs.iter().zip(clips) {
        let pt = p.get(c.label).copied().unwrap_or(0.0).max(1e-7);
        loss -= (pt as f64).ln();
        if crate::eval::metrics::argmax(p) == c.label {
            correct += 1;
        }
    }
    let n = clips.len().max(1) as f64;
    Ok((loss / n, correct as f64 / n))
}

fn vars_of(varmap: &VarMap) -> Result<Vec<(String, Var)>> {
    let data = varmap
        .data()
        .lock()
        .map_err(|_| Error::Unsupported("variable map lock poisoned".into()))?;
    let mut v: Vec<(String, Var)> = data.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(v)
}

fn snapshot(vars: &[(String, Var)]) -> Result<HashMap<String, Tensor>> {
    vars.iter()
        .map(|(k, v)| Ok((k.clone(), v.as_tensor().copy()?)))
        .collect()
}

fn restore(vars: &[(String, Var)], tensors: &HashMap<String, Tensor>) -> Result<()> {
    for (k, v) in vars {
        if let Some(t) = tensors.get(k) {
            v.set(t)?;
        }
    }
    Ok(())
}

/// Trains the CNN; the best epoch's weights (by validation accuracy) are left in `varmap`.
fn fit(
    ctx: &RunContext,
    net: &SoundNet,
    varmap: &VarMap,
    p: &SoundParams,
    train: &[Clip],
    validation: &[Clip],
) -> Result<FitOutcome> {
    let vars = vars_of(varmap)?;
    let trainable: Vec<(Var, bool)> = vars
        .iter()
        .filter(|(k, _)| !k.ends_with("running_mean") && !k.ends_with("running_var"))
        .map(|(k, v)| (v.clone(), v.rank() >= 2 && !k.contains(".bn.")))
        .collect();
    let mut opt = AdamW::new(trainable, p.learning_rate, p.weight_decay)?;
    let seed = ctx.project.seed;
    let clean_windows: usize = train.iter().map(|c| c.windows.len()).sum();
    let steps_per_epoch = clean_windows.div_ceil(p.batch_size.max(1)).max(1);
    let total_steps = steps_per_epoch * p.epochs;
    let warmup = steps_per_epoch.min(total_steps / 10 + 1);

    let mut history: Vec<EpochMetrics> = Vec::new();
    let mut best: Option<(usize, f64, f64, HashMap<String, Tensor>)> = None;
    let mut bad_epochs = 0usize;
    let mut start_epoch = 1;
    let ckpt_dir = ctx.run_dir.checkpoints();
    std::fs::create_dir_all(&ckpt_dir).map_err(|e| Error::io("creating", &ckpt_dir, e))?;
    let last_path = ckpt_dir.join("cnn_last.safetensors");
    let best_path = ckpt_dir.join("cnn_best.safetensors");
    if ctx.resume && last_path.exists() {
        let (tensors, meta) = st::load(&last_path, &ctx.device)?;
        restore(&vars, &tensors)?;
        let epoch: usize = meta.get("epoch").and_then(|e| e.parse().ok()).unwrap_or(0);
        // Batches of one window are skipped, so the step count is read, not computed (older
        // checkpoints did not record it).
        let step = meta
            .get("optimizer_step")
            .and_then(|s| s.parse().ok())
            .unwrap_or(epoch * steps_per_epoch);
        opt.load_state(&tensors, step)?;
        history = meta
            .get("history")
            .and_then(|h| serde_json::from_str(h).ok())
            .unwrap_or_default();
        bad_epochs = meta
            .get("bad_epochs")
            .and_then(|e| e.parse().ok())
            .unwrap_or(0);
        if best_path.exists() {
            let (bt, bm) = st::load(&best_path, &ctx.device)?;
            let num = |k: &str| bm.get(k).and_then(|v| v.parse::<f64>().ok());
            best = Some((
                num("epoch").unwrap_or(0.0) as usize,
                num("accuracy").unwrap_or(0.0),
                num("loss").unwrap_or(f64::INFINITY),
                bt,
            ));
        }
        start_epoch = epoch + 1;
        ctx.emit(Event::Restored {
            epoch,
            checkpoint: last_path.clone(),
        });
    }

    let mut phase = ctx.phase(Phase::Training, p.epochs as u64);
    phase.set(start_epoch as u64 - 1);
    let mut stopped_early = false;
    let step_every = (steps_per_epoch / 10).max(1);
    for epoch in start_epoch..=p.epochs {
        let started = std::time::Instant::now();
        // Fresh augmented windows for this epoch (each file augmented with probability 0.8).
        let windows: Vec<(Vec<Vec<f32>>, u32)> = train
            .par_iter()
            .enumerate()
            .map(|(i, c)| {
                let key = seed ^ ((epoch as u64) << 32) ^ (i as u64).wrapping_mul(0x9e37_79b9);
                let mut rng = rand::rngs::StdRng::seed_from_u64(key);
                let w = if p.augment.any() && rng.random_bool(0.8) {
                    audio_frontend::windows(&net.frontend, &p.augment.apply(&c.wave, key))
                } else {
                    c.windows.clone()
                };
                (w, c.label as u32)
            })
            .collect();
        let mut items: Vec<(&Vec<f32>, u32)> = windows
            .iter()
            .flat_map(|(ws, l)| ws.iter().map(move |w| (w, *l)))
            .collect();
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ (epoch as u64).wrapping_mul(0x51));
        items.shuffle(&mut rng);
        let (mut loss_sum, mut correct, mut seen) = (0f64, 0usize, 0usize);
        let steps = items.len().div_ceil(p.batch_size.max(1));
        for (step, batch) in items.chunks(p.batch_size.max(1)).enumerate() {
            ctx.check()?;
            if batch.len() < 2 {
                continue; // batch norm needs two examples
            }
            let rows: Vec<Vec<f32>> = batch.iter().map(|(w, _)| (*w).clone()).collect();
            let labels: Vec<u32> = batch.iter().map(|(_, l)| *l).collect();
            let x = net.normalize(&rows)?;
            let y = Tensor::from_vec(labels.clone(), labels.len(), &ctx.device)?;
            let dropout_seed = seed ^ ((epoch as u64) << 24) ^ (step as u64).wrapping_mul(0xD1B5);
            let logits = net.cnn.forward_train(&x, dropout_seed)?;
            let loss = candle_nn::loss::cross_entropy(&logits, &y)?;
            opt.learning_rate = cosine_lr(p.learning_rate, opt.step, total_steps, warmup);
            let loss_value = loss.to_scalar::<f32>()? as f64;
            crate::fit::diverge::check_loss(
                loss_value,
                epoch,
                "learning_rate",
                p.learning_rate,
                Some(&ctx.run_dir.checkpoints()),
            )?;
            opt.apply(&loss.backward()?)?;
            let pred: Vec<u32> = logits.argmax(D::Minus1)?.to_vec1()?;
            correct += pred.iter().zip(&labels).filter(|(a, b)| a == b).count();
            loss_sum += loss_value * batch.len() as f64;
            seen += batch.len();
            if step % step_every == 0 {
                ctx.emit(Event::Step {
                    epoch,
                    step,
                    steps,
                    loss: loss_value,
                });
            }
        }
        let (val_loss, val_acc) = if validation.is_empty() {
            (None, None)
        } else {
            let (l, a) = validate(net, validation)?;
            (Some(l), Some(a))
        };
        let metrics = EpochMetrics {
            epoch,
            epochs: p.epochs,
            train_loss: loss_sum / seen.max(1) as f64,
            train_accuracy: Some(correct as f64 / seen.max(1) as f64),
            validation_loss: val_loss,
            validation_accuracy: val_acc,
            learning_rate: opt.learning_rate,
            elapsed_secs: started.elapsed().as_secs_f64(),
        };
        ctx.emit(Event::EpochEnd(metrics.clone()));
        history.push(metrics);
        let (acc, loss) = (val_acc.unwrap_or(0.0), val_loss.unwrap_or(0.0));
        let improved = match &best {
            None => true,
            Some((_, ba, bl, _)) => {
                validation.is_empty() || acc > *ba || (acc == *ba && loss < *bl)
            }
        };
        if improved {
            best = Some((epoch, acc, loss, snapshot(&vars)?));
            bad_epochs = 0;
        } else {
            bad_epochs += 1;
        }
        // Checkpoints: the last epoch (weights + optimizer, to resume) and the best weights.
        let mut tensors: Vec<(String, Tensor)> = snapshot(&vars)?.into_iter().collect();
        tensors.extend(opt.state());
        let history_json = serde_json::to_string(&history).unwrap_or_default();
        st::save(
            &last_path,
            &tensors,
            &[
                ("epoch", epoch.to_string()),
                ("optimizer_step", opt.step.to_string()),
                ("bad_epochs", bad_epochs.to_string()),
                ("history", history_json),
            ],
        )?;
        ctx.emit(Event::Checkpoint {
            epoch,
            path: last_path.clone(),
            best: false,
        });
        if improved && let Some((e, a, l, t)) = &best {
            let t: Vec<(String, Tensor)> = t.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            st::save(
                &best_path,
                &t,
                &[
                    ("epoch", e.to_string()),
                    ("accuracy", a.to_string()),
                    ("loss", l.to_string()),
                ],
            )?;
            ctx.emit(Event::Checkpoint {
                epoch,
                path: best_path.clone(),
                best: true,
            });
        }
        phase.set(epoch as u64);
        if p.patience > 0 && bad_epochs >= p.patience && epoch < p.epochs {
            stopped_early = true;
            break;
        }
    }
    let best_epoch = match &best {
        Some((e, _, _, t)) => {
            restore(&vars, t)?;
            *e
        }
        None => history.len(),
    };
    Ok(FitOutcome {
        history,
        best_epoch,
        stopped_early,
    })
}

/// Writes `report.json`, the plots and the `model/` folder of a finished run.
fn write_run_outputs(
    ctx: &RunContext,
    chosen: &Trained,
    p: &SoundParams,
    splits: &SoundSplits,
    reports: &[(String, ClassificationReport)],
    leaderboard: &[serde_json::Value],
) -> Result<PathBuf> {
    let dir = &ctx.run_dir;
    let outcome = &chosen.outcome;
    let total_files = 3 + reports.len() + 4;
    let mut phase = ctx.phase(Phase::Exporting, total_files as u64);
    let report = json!({
        "template": ctx.project.template,
        "labels": splits.labels,
        "data": {
            "num_train": splits.train.len(),
            "num_validation": splits.validation.len(),
            "num_test": splits.test.len(),
            "issues": splits.summary.issues,
        },
        "frontend": p.frontend,
        "training": {
            "algorithm": chosen.name,
            "validation_accuracy": chosen.validation_accuracy,
            "leaderboard": leaderboard,
            "epochs_run": outcome.history.len(),
            "best_epoch": outcome.best_epoch,
            "stopped_early": outcome.stopped_early,
            "history": outcome.history,
        },
        "evaluation": reports.iter().map(|(k, v)| (k.clone(), v)).collect::<BTreeMap<_, _>>(),
        "elapsed_secs": ctx.started.elapsed().as_secs_f64(),
    });
    write_json(&dir.report_json(), &report)?;
    plots::classifier_curves(&dir.report_dir(), &outcome.history)?;
    phase.set(3);
    for (name, r) in reports {
        plots::report_confusion_matrix(&dir.report_dir(), name, r)?;
    }
    let (tensors, model_config, encoder) = match &chosen.model {
        TrainedModel::Cnn { net, varmap } => {
            let vars: HashMap<String, Tensor> = vars_of(varmap)?
                .into_iter()
                .map(|(k, v)| (k, v.as_tensor().clone()))
                .collect();
            (
                net.state_dict(&vars),
                json!({ "algorithm": "cnn", "cnn": net.cnn.cfg }),
                serde_json::Value::Null,
            )
        }
        TrainedModel::Transfer { net, .. } => {
            let mut t: Vec<(String, Tensor)> = net.encoder.tensors();
            for (i, (w, b)) in net.head.layers.iter().enumerate() {
                let name = Head::layer_names(&net.head.kind)
                    .get(i)
                    .copied()
                    .unwrap_or("classifier.x");
                t.push((format!("{name}.weight"), w.as_tensor().clone()));
                t.push((format!("{name}.bias"), b.as_tensor().clone()));
            }
            t.sort_by(|a, b| a.0.cmp(&b.0));
            let mut config = json!({
                "algorithm": "transfer",
                "encoder": net.encoder.id(),
                "head": net.head.kind,
                "feature_dim": net.encoder.feature_dim(),
                "window_samples": net.window,
                "window_hop_samples": net.hop,
            });
            let encoder = match &net.encoder {
                Encoder::Crepe(c) => {
                    config["frame_hop_samples"] = json!(sound_transfer::FRAME_HOP);
                    json!({
                        "id": net.encoder.id(),
                        "weights_source": c.weights_source,
                        "weights_blake3": c.weights_hash,
                    })
                }
                Encoder::LogMelStats(_) => json!({ "id": net.encoder.id() }),
            };
            (t, config, encoder)
        }
    };
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
    let params: BTreeMap<&String, &crate::params::ParamValue> = ctx.params.0.iter().collect();
    let manifest = json!({
        "lathe_version": env!("CARGO_PKG_VERSION"),
        "created": crate::train::run_dir::utc_iso(std::time::SystemTime::now()),
        "template": ctx.project.template,
        "seed": ctx.project.seed,
        "device": crate::device::label(&ctx.device),
        "params": params,
        "algorithm": chosen.name,
        "encoder": encoder,
        "data": {
            "train": { "path": ctx.project.resolve(&ctx.project.data.train), "num_files": splits.train.len(), "blake3": data_hash(&splits.train) },
            "validation": { "num_files": splits.validation.len(), "blake3": data_hash(&splits.validation) },
            "test": { "num_files": splits.test.len(), "blake3": data_hash(&splits.test) },
        },
        "training": { "epochs_run": outcome.history.len(), "best_epoch": outcome.best_epoch },
    });
    let target = dir.model();
    sound_model::write_model_dir(
        &target,
        &p.frontend,
        model_config,
        &tensors,
        &splits.labels,
        &ctx.project.template,
        &manifest,
    )?;
    phase.set(total_files as u64);
    ctx.emit(Event::Exported {
        format: "safetensors".into(),
        path: target.join(crate::train::run_dir::MODEL_WEIGHTS),
    });
    Ok(target)
}
