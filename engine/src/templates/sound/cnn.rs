//! The sound classifier's CNN from scratch: input normalization per mel band (spread floored),
//! seeded initialization, the training loop (augmented windows, AdamW, early stopping on
//! file-level validation accuracy, per-epoch checkpoints for resume) and file-level scoring.

use super::params::SoundParams;
use super::train::{Clip, FitOutcome, Trained, TrainedModel};
use crate::data::audio_frontend::{self, LogMel};
use crate::error::{Error, Result};
use crate::export::st;
use crate::fit::optim::{AdamW, cosine_lr};
use crate::nets::audio_cnn::{AudioCnn, AudioCnnConfig};
use crate::templates::sound::model::SoundNet;
use crate::train::{EpochMetrics, Event, Phase, RunContext};
use candle_core::{D, DType, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;
use std::collections::HashMap;
use std::path::Path;

pub(super) fn train_cnn(
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
        frontend: p.frontend.clone(),
        augmented: p.augment.any(),
        validation_accuracy,
        cv: None,
        head_selection: None,
        outcome,
        model: TrainedModel::Cnn { net, varmap },
    })
}

/// Smallest per-band standard deviation the CNN's input normalization divides by (log units).
const MIN_BAND_STD: f64 = 1.0;

/// Per-mel-band mean and standard deviation of the clean training windows.
pub(super) fn band_stats(clips: &[Clip], n_mels: usize) -> (Vec<f32>, Vec<f32>) {
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
pub(super) fn seeded_init(varmap: &VarMap, seed: u64) -> Result<()> {
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

/// Mean window probabilities of each clip (batched across clips).
pub(super) fn file_probabilities(net: &SoundNet, clips: &[Clip]) -> Result<Vec<Vec<f32>>> {
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
pub(super) fn validate(net: &SoundNet, clips: &[Clip]) -> Result<(f64, f64)> {
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

pub(super) fn vars_of(varmap: &VarMap) -> Result<Vec<(String, Var)>> {
    let data = varmap
        .data()
        .lock()
        .map_err(|_| Error::Unsupported("variable map lock poisoned".into()))?;
    let mut v: Vec<(String, Var)> = data.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(v)
}

pub(super) fn snapshot(vars: &[(String, Var)]) -> Result<HashMap<String, Tensor>> {
    vars.iter()
        .map(|(k, v)| Ok((k.clone(), v.as_tensor().copy()?)))
        .collect()
}

pub(super) fn restore(vars: &[(String, Var)], tensors: &HashMap<String, Tensor>) -> Result<()> {
    for (k, v) in vars {
        if let Some(t) = tensors.get(k) {
            v.set(t)?;
        }
    }
    Ok(())
}

/// Trains the CNN; the best epoch's weights (by validation accuracy) are left in `varmap`.
pub(super) fn fit(
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

    let ckpt_dir = ctx.run_dir.checkpoints();
    std::fs::create_dir_all(&ckpt_dir).map_err(|e| Error::io("creating", &ckpt_dir, e))?;
    let last_path = ckpt_dir.join("cnn_last.safetensors");
    let best_path = ckpt_dir.join("cnn_best.safetensors");
    let Resumed {
        mut history,
        mut best,
        mut bad_epochs,
        start_epoch,
    } = resumed(
        ctx,
        &vars,
        &mut opt,
        steps_per_epoch,
        &last_path,
        &best_path,
    )?;

    let mut phase = ctx.phase(Phase::Training, p.epochs as u64);
    phase.set(start_epoch as u64 - 1);
    let mut stopped_early = false;
    let step_every = (steps_per_epoch / 10).max(1);
    for epoch in start_epoch..=p.epochs {
        let started = std::time::Instant::now();
        let windows = epoch_windows(net, p, train, seed, epoch);
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
        save_checkpoints(
            ctx,
            &vars,
            &opt,
            (&history, epoch, bad_epochs),
            if improved { best.as_ref() } else { None },
            (&last_path, &best_path),
        )?;
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

/// The weights at the best epoch so far: epoch, validation accuracy and loss, the tensors.
type Best = (usize, f64, f64, HashMap<String, Tensor>);

/// Where training starts: a resumed run's history, best weights and epochs without
/// improvement, read from its checkpoints (weights and optimizer restored in place).
struct Resumed {
    history: Vec<EpochMetrics>,
    best: Option<Best>,
    bad_epochs: usize,
    start_epoch: usize,
}

/// Restores `cnn_last.safetensors` (and the best weights of `cnn_best.safetensors`) when the
/// run is resumed and has them; otherwise a fresh start at epoch 1.
fn resumed(
    ctx: &RunContext,
    vars: &[(String, Var)],
    opt: &mut AdamW,
    steps_per_epoch: usize,
    last_path: &Path,
    best_path: &Path,
) -> Result<Resumed> {
    let mut state = Resumed {
        history: Vec::new(),
        best: None,
        bad_epochs: 0,
        start_epoch: 1,
    };
    if !(ctx.resume && last_path.exists()) {
        return Ok(state);
    }
    let (tensors, meta) = st::load(last_path, &ctx.device)?;
    restore(vars, &tensors)?;
    let epoch: usize = meta.get("epoch").and_then(|e| e.parse().ok()).unwrap_or(0);
    // Batches of one window are skipped, so the step count is read, not computed (older
    // checkpoints did not record it).
    let step = meta
        .get("optimizer_step")
        .and_then(|s| s.parse().ok())
        .unwrap_or(epoch * steps_per_epoch);
    opt.load_state(&tensors, step)?;
    state.history = meta
        .get("history")
        .and_then(|h| serde_json::from_str(h).ok())
        .unwrap_or_default();
    state.bad_epochs = meta
        .get("bad_epochs")
        .and_then(|e| e.parse().ok())
        .unwrap_or(0);
    if best_path.exists() {
        let (bt, bm) = st::load(best_path, &ctx.device)?;
        let num = |k: &str| bm.get(k).and_then(|v| v.parse::<f64>().ok());
        state.best = Some((
            num("epoch").unwrap_or(0.0) as usize,
            num("accuracy").unwrap_or(0.0),
            num("loss").unwrap_or(f64::INFINITY),
            bt,
        ));
    }
    state.start_epoch = epoch + 1;
    ctx.emit(Event::Restored {
        epoch,
        checkpoint: last_path.to_path_buf(),
    });
    Ok(state)
}

/// Fresh augmented windows of every training clip for `epoch` (each file augmented with
/// probability 0.8, seeded by the epoch and the file's index), with its label.
fn epoch_windows(
    net: &SoundNet,
    p: &SoundParams,
    train: &[Clip],
    seed: u64,
    epoch: usize,
) -> Vec<(Vec<Vec<f32>>, u32)> {
    train
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
        .collect()
}

/// Checkpoints after an epoch: the last epoch (weights + optimizer, to resume) and, when the
/// epoch improved (`improved_best`), the best weights.
fn save_checkpoints(
    ctx: &RunContext,
    vars: &[(String, Var)],
    opt: &AdamW,
    (history, epoch, bad_epochs): (&[EpochMetrics], usize, usize),
    improved_best: Option<&Best>,
    (last_path, best_path): (&Path, &Path),
) -> Result<()> {
    let mut tensors: Vec<(String, Tensor)> = snapshot(vars)?.into_iter().collect();
    tensors.extend(opt.state());
    let history_json = serde_json::to_string(history).unwrap_or_default();
    st::save(
        last_path,
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
        path: last_path.to_path_buf(),
        best: false,
    });
    if let Some((e, a, l, t)) = improved_best {
        let t: Vec<(String, Tensor)> = t.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        st::save(
            best_path,
            &t,
            &[
                ("epoch", e.to_string()),
                ("accuracy", a.to_string()),
                ("loss", l.to_string()),
            ],
        )?;
        ctx.emit(Event::Checkpoint {
            epoch,
            path: best_path.to_path_buf(),
            best: true,
        });
    }
    Ok(())
}
