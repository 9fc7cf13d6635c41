//! The logistic head fitted as scikit-learn's `LogisticRegressionCV` does: features
//! standardized, the L2 strength `C` chosen by stratified k-fold cross-validation on the
//! training rows (on a capped sample, warm-started along the `C` path), then one L-BFGS fit on
//! all training rows whose iterations are reported as epochs. Returns the same [`FitOutcome`]
//! as the AdamW path (`train::fit`), so reports and exports do not change.

use crate::data::split::stratified_folds;
use crate::error::Result;
use crate::learners::logistic::{self, CvScore, Link, Logistic, Rows, Settings};
use crate::nets::head::{Head, HeadKind};
use crate::train::context::RunContext;
use crate::train::event::{EpochMetrics, Event, Phase};
use crate::train::fit::{Features, FitOutcome};
use candle_core::{Tensor, Var};
use serde::Serialize;

/// The `C` grid (scikit-learn's inverse regularization strength), weakest penalty last.
pub const C_GRID: &[f64] = &[0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0];
/// Most rows the cross-validation looks at (a stratified sample above it).
const CV_ROWS: usize = 3000;
/// Iterations per cross-validation fit (warm-started, so most stop well before).
const CV_ITERATIONS: usize = 100;

/// How `C` was chosen, for the report.
#[derive(Clone, Debug, Serialize)]
pub struct CvChoice {
    pub c: f64,
    pub folds: usize,
    pub rows: usize,
    pub scores: Vec<CvScore>,
}

/// Standardization of features: mean and standard deviation (floored at 1e-3) per column.
pub struct Scaling {
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

impl Scaling {
    pub fn of(f: &Features) -> Self {
        let (n, d) = (f.len().max(1), f.dim);
        let mut mean = vec![0f64; d];
        for row in f.x.chunks(d.max(1)) {
            for (m, v) in mean.iter_mut().zip(row) {
                *m += *v as f64;
            }
        }
        mean.iter_mut().for_each(|m| *m /= n as f64);
        let mut var = vec![0f64; d];
        for row in f.x.chunks(d.max(1)) {
            for ((s, v), m) in var.iter_mut().zip(row).zip(&mean) {
                *s += (*v as f64 - m).powi(2);
            }
        }
        Self {
            mean: mean.iter().map(|&m| m as f32).collect(),
            std: var
                .iter()
                .map(|&s| ((s / n as f64).sqrt() as f32).max(1e-3))
                .collect(),
        }
    }

    pub fn apply(&self, x: &[f32]) -> Vec<f32> {
        let d = self.mean.len().max(1);
        let mut out = x.to_vec();
        for row in out.chunks_mut(d) {
            for ((v, m), s) in row.iter_mut().zip(&self.mean).zip(&self.std) {
                *v = (*v - m) / s;
            }
        }
        out
    }
}

fn rows<'a>(f: &'a Features, x: &'a [f32]) -> Rows<'a> {
    Rows {
        x,
        dim: f.dim,
        labels: &f.labels,
        targets: &f.targets,
        weights: None,
    }
}

fn link_of(f: &Features) -> Link {
    if f.is_multi_label() {
        Link::Sigmoid
    } else {
        Link::Softmax
    }
}

fn subset(f: &Features, x: &[f32], idx: &[usize]) -> Features {
    let mut sub = Features::new(f.dim);
    sub.x.reserve(idx.len() * f.dim);
    let k = if f.is_multi_label() {
        f.targets.len() / f.len().max(1)
    } else {
        0
    };
    for &i in idx {
        sub.x.extend_from_slice(&x[i * f.dim..(i + 1) * f.dim]);
        sub.labels.push(f.labels[i]);
        if k > 0 {
            sub.targets
                .extend_from_slice(&f.targets[i * k..(i + 1) * k]);
        }
    }
    sub
}

/// Chooses `C` by stratified k-fold cross-validation on (a sample of) standardized `x`.
pub fn choose_c(
    ctx: &RunContext,
    train: &Features,
    x: &[f32],
    classes: usize,
    max_iterations: usize,
    report: Report,
) -> Result<CvChoice> {
    let n = train.len();
    let sample = n.min(CV_ROWS);
    let smallest_class = {
        let mut counts = vec![0usize; classes.max(1)];
        for &l in &train.labels {
            if let Some(c) = counts.get_mut(l as usize) {
                *c += 1;
            }
        }
        counts.into_iter().filter(|&c| c > 0).min().unwrap_or(0)
    };
    let folds = if sample >= 1000 { 3 } else { 5 }.min(smallest_class.max(2));
    let assignment = stratified_folds(&train.labels, CV_ROWS, folds, ctx.project.seed);
    let link = link_of(train);
    let mut sums = vec![(0f64, 0f64); C_GRID.len()];
    let mut phase = (report == Report::Emit)
        .then(|| ctx.phase(Phase::CrossValidating, (folds * C_GRID.len()) as u64));
    let mut done = 0;
    for fold in 0..folds {
        let fit_idx: Vec<usize> = assignment
            .iter()
            .filter(|a| a.1 != fold)
            .map(|a| a.0)
            .collect();
        let held_idx: Vec<usize> = assignment
            .iter()
            .filter(|a| a.1 == fold)
            .map(|a| a.0)
            .collect();
        let fit_set = subset(train, x, &fit_idx);
        let held_set = subset(train, x, &held_idx);
        let mut warm: Option<Logistic> = None;
        for (slot, &c) in C_GRID.iter().enumerate() {
            ctx.check()?;
            let settings = Settings {
                l2: 1.0 / (c * fit_idx.len().max(1) as f64),
                max_iterations: CV_ITERATIONS.min(max_iterations.max(1)),
                tolerance: 1e-4,
            };
            let model = logistic::fit(
                rows(&fit_set, &fit_set.x),
                classes,
                link,
                &settings,
                warm.as_ref(),
                &mut |_, _| {
                    ctx.check()?;
                    Ok(false)
                },
            )?;
            let (loss, acc) = logistic::score(&model, rows(&held_set, &held_set.x));
            let w = held_idx.len() as f64;
            sums[slot].0 += acc * w;
            sums[slot].1 += loss * w;
            warm = Some(model);
            done += 1;
            if let Some(phase) = phase.as_mut() {
                phase.set(done);
            }
        }
    }
    let total = assignment.len().max(1) as f64;
    let scores: Vec<CvScore> = C_GRID
        .iter()
        .zip(&sums)
        .map(|(&c, &(a, l))| CvScore {
            c,
            accuracy: a / total,
            log_loss: l / total,
        })
        .collect();
    let best = logistic::choose_c(&scores, assignment.len(), link == Link::Softmax);
    Ok(CvChoice {
        c: best,
        folds,
        rows: assignment.len(),
        scores,
    })
}

/// What a fit tells the run while it works.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Report {
    /// Progress and one `EpochEnd` per iteration, as they happen.
    Emit,
    /// Iterations recorded in the outcome's history only, to be announced later
    /// ([`announce`]): a fit running beside another that reports.
    Record,
    /// Nothing (a refit whose figures are not shown).
    Silent,
}

/// How the final fit runs.
#[derive(Clone, Copy, Debug)]
pub struct FinalFit {
    /// Inverse L2 strength (scikit-learn's `C`).
    pub c: f64,
    pub max_iterations: usize,
    /// Iterations are reported as epochs numbered from `epoch_offset + 1`.
    pub epoch_offset: usize,
    pub report: Report,
}

/// Announces a fit made with [`Report::Record`]: its iterations renumbered after
/// `epoch_offset` epochs, then one `EpochEnd` each.
pub fn announce(ctx: &RunContext, outcome: &mut FitOutcome, epoch_offset: usize) {
    for m in &mut outcome.history {
        m.epoch += epoch_offset;
        m.epochs += epoch_offset;
        ctx.emit(Event::EpochEnd(m.clone()));
    }
    outcome.best_epoch += epoch_offset;
}

/// Fits the logistic head with `C` on all of `train` (at most `max_iterations` L-BFGS
/// iterations: the template's `epochs`, 100 by default as scikit-learn's `max_iter`), reporting
/// iterations as epochs (numbered
/// from `epoch_offset + 1`) with validation metrics when `validation` is given.
pub fn fit_with_c(
    ctx: &RunContext,
    train: &Features,
    validation: Option<&Features>,
    classes: usize,
    spec: FinalFit,
) -> Result<FitOutcome> {
    let FinalFit {
        c,
        max_iterations,
        epoch_offset,
        report,
    } = spec;
    let scaling = Scaling::of(train);
    let x = scaling.apply(&train.x);
    let val_x = validation.map(|v| scaling.apply(&v.x));
    let link = link_of(train);
    let settings = Settings {
        l2: 1.0 / (c * train.len().max(1) as f64),
        max_iterations: max_iterations,
        tolerance: 1e-4,
    };
    let started = std::time::Instant::now();
    let mut history = Vec::new();
    let mut phase =
        (report == Report::Emit).then(|| ctx.phase(Phase::Training, max_iterations as u64));
    let model = logistic::fit(
        rows(train, &x),
        classes,
        link,
        &settings,
        None,
        &mut |it, model| {
            ctx.check()?;
            if report == Report::Silent {
                return Ok(false);
            }
            let (validation_loss, validation_accuracy) = match (validation, &val_x) {
                (Some(v), Some(vx)) if !v.is_empty() => {
                    let (l, a) = logistic::score(model, rows(v, vx));
                    (Some(l), Some(a))
                }
                _ => (None, None),
            };
            let m = EpochMetrics {
                epoch: epoch_offset + it.iteration,
                epochs: epoch_offset + max_iterations,
                train_loss: it.loss,
                train_accuracy: Some(it.accuracy),
                validation_loss,
                validation_accuracy,
                learning_rate: it.step,
                elapsed_secs: started.elapsed().as_secs_f64(),
            };
            if report == Report::Emit {
                ctx.emit(Event::EpochEnd(m.clone()));
            }
            history.push(m);
            if let Some(phase) = phase.as_mut() {
                phase.set(it.iteration as u64);
            }
            Ok(false)
        },
    )?;
    if let Some(phase) = phase.as_mut() {
        phase.set(max_iterations as u64);
    }
    outcome(ctx, model, scaling, history, train.is_multi_label())
}

fn outcome(
    ctx: &RunContext,
    model: Logistic,
    scaling: Scaling,
    history: Vec<EpochMetrics>,
    multi_label: bool,
) -> Result<FitOutcome> {
    let device = &ctx.device;
    let (k, d) = (model.classes, model.dim);
    let weight = Tensor::from_vec(model.weight, (k, d), device)?;
    let bias = Tensor::from_vec(model.bias, k, device)?;
    let head = Head {
        kind: HeadKind::Logistic,
        layers: vec![(Var::from_tensor(&weight)?, Var::from_tensor(&bias)?)],
    };
    let best_epoch = history.last().map_or(0, |m| m.epoch);
    Ok(FitOutcome {
        head,
        mean: Tensor::from_vec(scaling.mean, d, device)?,
        std: Tensor::from_vec(scaling.std, d, device)?,
        history,
        best_epoch,
        stopped_early: false,
        multi_label,
    })
}

/// Writes `checkpoints/last.safetensors` and `best.safetensors` as the AdamW path does (head
/// weights on standardized features, the standardization; `epochs` iterations), so
/// `--continue` can start from the final head.
pub fn checkpoint(ctx: &RunContext, outcome: &FitOutcome, epochs: usize) -> Result<()> {
    let unfolded = outcome
        .head
        .export_tensors(&outcome.mean.zeros_like()?, &outcome.std.ones_like()?)?;
    let mut tensors = unfolded.clone();
    tensors.push(("features.mean".into(), outcome.mean.clone()));
    tensors.push(("features.std".into(), outcome.std.clone()));
    let meta = [
        ("epoch", epochs.to_string()),
        ("finished", "true".to_string()),
        ("solver", "lbfgs".to_string()),
    ];
    let dir = ctx.run_dir.checkpoints();
    let last = dir.join(crate::train::run_dir::LAST_CHECKPOINT);
    crate::export::st::save(&last, &tensors, &meta)?;
    ctx.emit(Event::Checkpoint {
        epoch: epochs,
        path: last,
        best: false,
    });
    let best = dir.join("best.safetensors");
    crate::export::st::save(&best, &unfolded, &[("epoch", epochs.to_string())])?;
    ctx.emit(Event::Checkpoint {
        epoch: epochs,
        path: best,
        best: true,
    });
    Ok(())
}

/// `a` and `b` as one set of rows (the final refit on training + validation rows).
pub fn concat(a: &Features, b: &Features) -> Features {
    let mut out = a.clone();
    out.x.extend_from_slice(&b.x);
    out.labels.extend_from_slice(&b.labels);
    out.targets.extend_from_slice(&b.targets);
    out
}
