//! Fitting the table candidates: boosted trees (early stopping only above 10,000 rows, as
//! scikit-learn), the random forest, the linear model and the MLP, each reporting its rounds; on
//! large tables the slow candidates are tried on a sample first; the chosen model's refit on
//! training + validation rows.

use super::params::TabularParams;
use super::train::{History, score};
use crate::error::Result;
use crate::learners::forest::{self, ForestKind};
use crate::learners::gbt::{self, Objective, Round};
use crate::learners::glm::{self, LogisticParams};
use crate::learners::mlp;
use crate::templates::tabular::data::{TableData, TargetKind};
use crate::templates::tabular::model::{Fitted, TabularModel};
use crate::train::{EpochMetrics, Event, Phase, RunContext};
use std::time::Instant;

/// Whether `value` beats `best` (higher accuracy, lower RMSE).
pub(super) fn beats(kind: TargetKind, value: f64, best: f64) -> bool {
    match kind {
        TargetKind::Classification => value > best,
        TargetKind::Regression => value < best,
    }
}

/// Training rows above which the slow candidates (random forest, MLP) are first fitted on a
/// sample, and fitted on every row only when the sample's model already beats the best so far.
pub(super) const SAMPLE_FIRST_ROWS: usize = 50_000;
/// Rows of that sample.
pub(super) const SAMPLE_ROWS: usize = 20_000;
/// Most epochs of the MLP's sample fit: its warm-up and cosine decay compressed into them.
/// On flights-200k's sample the last of 20 such epochs reaches the validation loss of the best
/// of the default 200-epoch schedule's (0.5063 vs 0.5056, early-stopped after 37 epochs).
pub(super) const SAMPLE_MLP_EPOCHS: usize = 20;
/// Most trees of the random forest's sample fit (100 by default).
pub(super) const SAMPLE_FOREST_TREES: usize = 32;

/// For a slow candidate on a large table: fits it on a sample and returns its validation score
/// and the reason to skip the full fit when it does not beat `best`; `None` to fit it fully.
/// The sample fit is a short one — at most [`SAMPLE_MLP_EPOCHS`] epochs, or
/// [`SAMPLE_FOREST_TREES`] trees grown without a validation curve — so that screening costs
/// less than the strong model it is compared with.
pub(super) fn sample_first(
    ctx: &RunContext,
    table: &TableData,
    kind: TargetKind,
    p: &TabularParams,
    algorithm: &str,
    best: f64,
) -> Result<Option<(f64, String)>> {
    let slow = matches!(algorithm, "random_forest" | "mlp");
    if !slow || table.train.len() <= SAMPLE_FIRST_ROWS || table.validation.is_empty() {
        return Ok(None);
    }
    let mut sampled = table.clone();
    let step = table.train.len() as f64 / SAMPLE_ROWS as f64;
    let rows: Vec<usize> = (0..SAMPLE_ROWS)
        .map(|i| (i as f64 * step) as usize)
        .collect();
    sampled.train = table.train.rows(&rows);
    let mut short = p.clone();
    let settings = if algorithm == "mlp" {
        short.mlp.epochs = p.mlp.epochs.min(SAMPLE_MLP_EPOCHS);
        format!("{} epochs", short.mlp.epochs)
    } else {
        short.forest.num_trees = p.forest.num_trees.min(SAMPLE_FOREST_TREES);
        // The forest needs no validation rows to grow; it is scored on them below.
        sampled.validation = Default::default();
        format!("{} trees", short.forest.num_trees)
    };
    let (fitted, _) = fit_algorithm(ctx, &sampled, kind, &short, algorithm, false)?;
    let model = TabularModel::new(kind, &sampled, fitted, algorithm);
    let (metric, value) = score(&model, &table.validation);
    if beats(kind, value, best) {
        return Ok(None);
    }
    Ok(Some((
        value,
        format!(
            "fitted on a {SAMPLE_ROWS}-row sample first ({settings}), its validation {metric} {value:.4} does not beat the best so far ({best:.4}); the full fit was skipped"
        ),
    )))
}

/// Fits one candidate on `table`'s training rows.
pub(super) fn fit_algorithm(
    ctx: &RunContext,
    table: &TableData,
    kind: TargetKind,
    p: &TabularParams,
    algorithm: &str,
    plot: bool,
) -> Result<(Fitted, History)> {
    match algorithm {
        "boosted_trees" => fit_trees(ctx, table, kind, p, plot),
        "random_forest" => fit_forest(ctx, table, kind, p, plot),
        "mlp" => fit_mlp(ctx, table, kind, p, plot),
        _ => fit_linear(ctx, table, kind, p, plot),
    }
}

/// Training rows above which boosting stops early on validation loss (scikit-learn's rule).
pub(super) const EARLY_STOPPING_ROWS: usize = 10_000;
/// Tables of at most this many training rows refit the chosen model on training + validation.
pub(super) const REFIT_ROWS: usize = 10_000;

/// The chosen model fitted again on training + validation rows (boosting for the number of
/// rounds it kept), on tables small enough that the held-out rows matter and the refit is
/// cheap; `None` when there is no refit (large tables, no validation rows, the MLP).
pub(super) fn refit(
    ctx: &RunContext,
    table: &TableData,
    kind: TargetKind,
    p: &TabularParams,
    chosen: &str,
    fitted: &Fitted,
) -> Result<Option<Fitted>> {
    if table.validation.is_empty() || table.train.len() > REFIT_ROWS {
        return Ok(None);
    }
    let mut p = p.clone();
    let mut merged = table.clone();
    merged.train = table.train.concat(&table.validation);
    merged.validation = Default::default();
    let (f, _) = match (chosen, fitted) {
        ("boosted_trees", Fitted::Trees(m)) => {
            p.gbt.max_iterations = m.trees.len().max(1);
            fit_trees(ctx, &merged, kind, &p, false)?
        }
        ("random_forest", _) => fit_forest(ctx, &merged, kind, &p, false)?,
        ("linear", _) => fit_linear(ctx, &merged, kind, &p, false)?,
        _ => return Ok(None),
    };
    Ok(Some(f))
}

pub(super) fn fit_trees(
    ctx: &RunContext,
    table: &TableData,
    kind: TargetKind,
    p: &TabularParams,
    plot: bool,
) -> Result<(Fitted, History)> {
    let objective = match kind {
        TargetKind::Regression => Objective::Regression,
        TargetKind::Classification if table.labels.len() == 2 => Objective::Binary,
        TargetKind::Classification => Objective::Multiclass {
            classes: table.labels.len(),
        },
    };
    let total = p.gbt.max_iterations;
    let mut phase = ctx.phase(Phase::Training, total as u64);
    let started = Instant::now();
    let mut epochs = Vec::new();
    let validation = (!table.validation.is_empty())
        .then_some((&table.validation.x, table.validation.y.as_slice()));
    // As scikit-learn's HistGradientBoosting: early stopping only on tables above
    // EARLY_STOPPING_ROWS rows; a small validation split is too noisy to stop on.
    let mut params = p.gbt.clone();
    if table.train.len() <= EARLY_STOPPING_ROWS {
        params.patience = 0;
    }
    let model = gbt::fit(
        (&table.train.x, &table.train.y),
        validation,
        &table.schema.categorical(),
        objective,
        &params,
        &mut |r| {
            ctx.check()?;
            let m = EpochMetrics {
                epoch: r.iteration,
                epochs: total,
                train_loss: r.train_loss,
                train_accuracy: r.train_accuracy,
                validation_loss: r.validation_loss,
                validation_accuracy: r.validation_accuracy,
                learning_rate: p.gbt.learning_rate,
                elapsed_secs: started.elapsed().as_secs_f64(),
            };
            if plot {
                ctx.emit(Event::EpochEnd(m.clone()));
            }
            epochs.push(m);
            phase.set(r.iteration as u64);
            Ok(())
        },
    )?;
    phase.set(total as u64);
    let stopped_early = model.stopped_early;
    Ok((
        Fitted::Trees(model),
        History {
            epochs,
            stopped_early,
        },
    ))
}

/// Records one round (boosting round, batch of forest trees, MLP epoch) of a candidate.
pub(super) fn record(
    ctx: &RunContext,
    epochs: &mut Vec<EpochMetrics>,
    r: &Round,
    total: usize,
    learning_rate: f64,
    started: Instant,
    plot: bool,
) -> Result<()> {
    ctx.check()?;
    let m = EpochMetrics {
        epoch: r.iteration,
        epochs: total,
        train_loss: r.train_loss,
        train_accuracy: r.train_accuracy,
        validation_loss: r.validation_loss,
        validation_accuracy: r.validation_accuracy,
        learning_rate,
        elapsed_secs: started.elapsed().as_secs_f64(),
    };
    if plot {
        ctx.emit(Event::EpochEnd(m.clone()));
    }
    epochs.push(m);
    Ok(())
}

pub(super) fn fit_forest(
    ctx: &RunContext,
    table: &TableData,
    kind: TargetKind,
    p: &TabularParams,
    plot: bool,
) -> Result<(Fitted, History)> {
    fit_forest_with_oob(ctx, table, kind, p, plot).map(|(f, h, _)| (f, h))
}

/// [`fit_forest`], also returning the training rows' out-of-bag raw outputs
/// (`forest::fit_with_oob`).
pub(super) fn fit_forest_with_oob(
    ctx: &RunContext,
    table: &TableData,
    kind: TargetKind,
    p: &TabularParams,
    plot: bool,
) -> Result<(Fitted, History, Vec<f64>)> {
    let forest_kind = match kind {
        TargetKind::Regression => ForestKind::Regression,
        TargetKind::Classification => ForestKind::Classification {
            classes: table.labels.len(),
        },
    };
    let total = p.forest.num_trees;
    let mut phase = ctx.phase(Phase::Training, total as u64);
    let started = Instant::now();
    let mut epochs = Vec::new();
    let validation = (!table.validation.is_empty())
        .then_some((&table.validation.x, table.validation.y.as_slice()));
    let (model, oob) = forest::fit_with_oob(
        (&table.train.x, &table.train.y),
        validation,
        &table.schema.categorical(),
        forest_kind,
        &p.forest,
        &mut |r| {
            record(ctx, &mut epochs, r, total, 0.0, started, plot)?;
            phase.set(r.iteration as u64);
            Ok(())
        },
    )?;
    phase.set(total as u64);
    Ok((
        Fitted::Forest(model),
        History {
            epochs,
            stopped_early: false,
        },
        oob,
    ))
}

pub(super) fn fit_mlp(
    ctx: &RunContext,
    table: &TableData,
    kind: TargetKind,
    p: &TabularParams,
    plot: bool,
) -> Result<(Fitted, History)> {
    let (x, dim) = glm::design(&table.schema, &table.train.x);
    let (vx, _) = glm::design(&table.schema, &table.validation.x);
    let classes = match kind {
        TargetKind::Regression => 0,
        TargetKind::Classification => table.labels.len(),
    };
    let total = p.mlp.epochs;
    let mut phase = ctx.phase(Phase::Training, total as u64);
    let started = Instant::now();
    let mut epochs = Vec::new();
    let validation =
        (!table.validation.is_empty()).then_some((vx.as_slice(), table.validation.y.as_slice()));
    let model = mlp::fit(
        (&x, &table.train.y),
        validation,
        dim,
        classes,
        &p.mlp,
        &mut |r| {
            record(
                ctx,
                &mut epochs,
                r,
                total,
                p.mlp.learning_rate,
                started,
                plot,
            )?;
            phase.set(r.iteration as u64);
            Ok(())
        },
    )?;
    phase.set(total as u64);
    let stopped_early = model.stopped_early;
    Ok((
        Fitted::Mlp(model),
        History {
            epochs,
            stopped_early,
        },
    ))
}

pub(super) fn fit_linear(
    ctx: &RunContext,
    table: &TableData,
    kind: TargetKind,
    p: &TabularParams,
    plot: bool,
) -> Result<(Fitted, History)> {
    let (x, dim) = glm::design(&table.schema, &table.train.x);
    let (vx, _) = glm::design(&table.schema, &table.validation.x);
    let started = Instant::now();
    match kind {
        TargetKind::Regression => {
            let mut phase = ctx.phase(Phase::Training, 1);
            ctx.check()?;
            let m = glm::fit_ridge(&x, dim, &table.train.y, p.linear_l2)?;
            let mse = |rows: &[f64], y: &[f64]| {
                let n = y.len().max(1) as f64;
                rows.chunks(dim.max(1))
                    .zip(y)
                    .map(|(r, t)| (m.raw(r).first().copied().unwrap_or(0.0) - t).powi(2))
                    .sum::<f64>()
                    / n
            };
            let metrics = EpochMetrics {
                epoch: 1,
                epochs: 1,
                train_loss: mse(&x, &table.train.y),
                train_accuracy: None,
                validation_loss: (!table.validation.is_empty())
                    .then(|| mse(&vx, &table.validation.y)),
                validation_accuracy: None,
                learning_rate: 0.0,
                elapsed_secs: started.elapsed().as_secs_f64(),
            };
            if plot {
                ctx.emit(Event::EpochEnd(metrics.clone()));
            }
            phase.set(1);
            Ok((
                Fitted::Linear(m),
                History {
                    epochs: vec![metrics],
                    stopped_early: false,
                },
            ))
        }
        TargetKind::Classification => {
            let total = p.linear_iterations;
            let mut phase = ctx.phase(Phase::Training, total as u64);
            let y: Vec<usize> = table.train.y.iter().map(|v| *v as usize).collect();
            let vy: Vec<usize> = table.validation.y.iter().map(|v| *v as usize).collect();
            let params = LogisticParams {
                l2: p.linear_l2,
                max_iterations: total,
                patience: p.patience.max(1) * 3,
            };
            let mut epochs = Vec::new();
            let validation = (!vy.is_empty()).then_some((vx.as_slice(), vy.as_slice()));
            let m = glm::fit_logistic_weighted(
                (&x, &y),
                validation,
                dim,
                table.labels.len(),
                &params,
                &p.class_weights,
                &mut |r| {
                    ctx.check()?;
                    let m = EpochMetrics {
                        epoch: r.iteration,
                        epochs: total,
                        train_loss: r.train_loss,
                        train_accuracy: Some(r.train_accuracy),
                        validation_loss: r.validation_loss,
                        validation_accuracy: r.validation_accuracy,
                        learning_rate: 0.0,
                        elapsed_secs: started.elapsed().as_secs_f64(),
                    };
                    if plot {
                        ctx.emit(Event::EpochEnd(m.clone()));
                    }
                    epochs.push(m);
                    phase.set(r.iteration as u64);
                    Ok(())
                },
            )?;
            phase.set(total as u64);
            let stopped_early = epochs.len() < total;
            Ok((
                Fitted::Linear(m),
                History {
                    epochs,
                    stopped_early,
                },
            ))
        }
    }
}
