//! The activity classifier's task: scan (both layouts, health checks, by-session splits), cut
//! windows, train the candidates `algorithm` asks for (statistics + boosted trees, the 1-D CNN),
//! keep the better validation window accuracy (`auto`), evaluate per session on validation and
//! test, and write `report.json` (with the leaderboard), the plots and the model folder.

use super::cnn::{self, CnnConfig};
use super::features;
use super::model::{ActivityModel, ActivityNet, TASK_ID, hop_for};
use super::params::{ActivityParams, param_specs};
use super::scan::{self, ActivityData, Session};
use super::windows;
use crate::data::DatasetSummary;
use crate::data::table_schema::Matrix;
use crate::error::{Error, Result};
use crate::eval::{ClassificationReport, plots};
use crate::fsutil::write_json;
use crate::learners::gbt::{self, GbtParams, Objective};
use crate::params::{ParamSpec, ResolvedParams};
use crate::task::{Model, ResolvedData, ScanProgress, Task};
use crate::train::scan_report::SplitSizes;
use crate::train::{Control, EpochMetrics, Event, Phase, RunContext};
use candle_core::{Device, Tensor};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What to try when the model is no better than guessing.
const ACTIVITY_ADVICE: &str = "Check that each activity folder holds the right recordings, record more sessions per activity (from several people), or change prediction_window to span one or two movement cycles.";

/// Activity classification from motion-sensor recordings.
pub struct ActivityClassification;

impl Task for ActivityClassification {
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
        let p = ActivityParams::from_resolved(params);
        let scanned = scan::scan(data, &p, &|| control.check_cancelled())?;
        let n = scanned
            .summary
            .splits
            .iter()
            .map(|s| s.num_examples)
            .sum::<usize>() as u64;
        progress(n, n);
        Ok(scanned.summary)
    }

    fn train(&self, ctx: &RunContext) -> Result<PathBuf> {
        train(ctx)
    }

    fn load(&self, model_dir: &Path, device: &Device) -> Result<Box<dyn Model>> {
        Ok(Box::new(ActivityModel::load(model_dir, device)?))
    }
}

/// Labelled windows of sessions.
fn labelled_windows(sessions: &[Session], window: usize, hop: usize) -> Vec<(Vec<f32>, usize)> {
    sessions
        .iter()
        .flat_map(|s| {
            windows::cut(&s.data, s.channels, window, hop)
                .into_iter()
                .map(move |w| (w, s.label))
        })
        .collect()
}

/// A trained candidate.
struct Candidate {
    model: ActivityModel,
    vars: Option<Vec<(String, Tensor)>>,
    validation_accuracy: Option<f64>,
    history: Vec<EpochMetrics>,
    best_epoch: usize,
    stopped_early: bool,
    fit_secs: f64,
}

fn window_accuracy(model: &ActivityModel, windows: &[(Vec<f32>, usize)]) -> Result<Option<f64>> {
    if windows.is_empty() {
        return Ok(None);
    }
    let x: Vec<Vec<f32>> = windows.iter().map(|(w, _)| w.clone()).collect();
    let p = model.window_probabilities(&x)?;
    let correct = p
        .iter()
        .zip(windows)
        .filter(|(p, (_, l))| crate::eval::metrics::argmax(p) == *l)
        .count();
    Ok(Some(correct as f64 / windows.len() as f64))
}

fn base_model(data: &ActivityData, p: &ActivityParams, net: ActivityNet) -> ActivityModel {
    ActivityModel {
        labels: data.labels.clone(),
        columns: data.columns.clone(),
        timestamp_column: data.timestamp_column.clone(),
        window: p.prediction_window,
        hop: hop_for(p),
        sample_rate: data.sample_rate,
        net,
    }
}

fn train_trees(
    ctx: &RunContext,
    p: &ActivityParams,
    data: &ActivityData,
    train: &[(Vec<f32>, usize)],
    validation: &[(Vec<f32>, usize)],
) -> Result<Candidate> {
    let started = std::time::Instant::now();
    let groups = features::axis_groups(&data.columns);
    let c = data.columns.len();
    let names = features::feature_names(&data.columns);
    let mut columns = vec![Vec::with_capacity(train.len()); names.len()];
    for (w, _) in train {
        for (col, v) in columns
            .iter_mut()
            .zip(features::window_features(w, c, &groups))
        {
            col.push(v);
        }
    }
    let x = Matrix {
        columns,
        num_rows: train.len(),
    };
    let y: Vec<f64> = train.iter().map(|(_, l)| *l as f64).collect();
    let k = data.labels.len();
    let objective = if k == 2 {
        Objective::Binary
    } else {
        Objective::Multiclass { classes: k }
    };
    // scikit-learn's HistGradientBoostingClassifier defaults; no early stopping.
    let params = GbtParams {
        learning_rate: 0.1,
        max_iterations: p.max_iterations,
        max_leaf_nodes: 31,
        min_samples_leaf: 20,
        l2_regularization: 0.0,
        max_depth: 0,
        max_bins: 255,
        patience: 0,
        seed: ctx.project.seed,
        class_weights: Vec::new(),
    };
    let mut phase = ctx.phase(Phase::Training, p.max_iterations as u64);
    let fitted = gbt::fit(
        (&x, &y),
        None,
        &vec![false; names.len()],
        objective,
        &params,
        &mut |r| {
            phase.set(r.iteration as u64);
            ctx.check()
        },
    )?;
    let model = base_model(data, p, ActivityNet::Trees(fitted));
    let validation_accuracy = window_accuracy(&model, validation)?;
    Ok(Candidate {
        model,
        vars: None,
        validation_accuracy,
        history: Vec::new(),
        best_epoch: 0,
        stopped_early: false,
        fit_secs: started.elapsed().as_secs_f64(),
    })
}

fn train_cnn(
    ctx: &RunContext,
    p: &ActivityParams,
    data: &ActivityData,
    train: &[(Vec<f32>, usize)],
    validation: &[(Vec<f32>, usize)],
) -> Result<Candidate> {
    let started = std::time::Instant::now();
    let cfg = CnnConfig {
        channels: data.columns.len(),
        window: p.prediction_window,
        width: p.cnn_width,
        num_classes: data.labels.len(),
        dropout: p.dropout,
    };
    let groups: Vec<[usize; 3]> = features::axis_groups(&data.columns)
        .into_iter()
        .map(|(_, g)| g)
        .collect();
    let (net, varmap, outcome) = cnn::train(ctx, p, cfg, &groups, train, validation)?;
    let vars = cnn::tensors_of(&varmap)?;
    let model = base_model(data, p, ActivityNet::Cnn(net));
    let validation_accuracy = window_accuracy(&model, validation)?;
    Ok(Candidate {
        model,
        vars: Some(vars),
        validation_accuracy,
        history: outcome.history,
        best_epoch: outcome.best_epoch,
        stopped_early: outcome.stopped_early,
        fit_secs: started.elapsed().as_secs_f64(),
    })
}

fn train(ctx: &RunContext) -> Result<PathBuf> {
    let p = ActivityParams::from_resolved(&ctx.params);
    let data = ResolvedData::of(&ctx.project);
    let mut scanning = ctx.phase(Phase::Scanning, 1);
    let scanned = scan::scan(&data, &p, &|| ctx.control.check_cancelled())?;
    scanning.set(1);
    ctx.accept_scan(
        &scanned.summary,
        &data.train,
        SplitSizes {
            train: scanned.train.len(),
            validation: scanned.validation.len(),
            test: scanned.test.len(),
        },
        &scanned.labels,
    )?;
    let hop = hop_for(&p);
    let train_w = labelled_windows(&scanned.train, p.prediction_window, hop);
    let val_w = labelled_windows(&scanned.validation, p.prediction_window, hop);
    if train_w.len() < 2 {
        return Err(Error::data(
            "fewer than two training windows; record longer sessions or lower prediction_window",
            &data.train,
        ));
    }
    let algorithms: Vec<&str> = match p.algorithm.as_str() {
        "cnn" => vec!["cnn"],
        "boosted_trees" => vec!["boosted_trees"],
        _ if val_w.is_empty() => {
            ctx.warn(
                "algorithm = \"auto\" needs validation sessions to choose; training boosted trees only (set validation_split > 0 or give validation data)",
                None,
            );
            vec!["boosted_trees"]
        }
        _ => vec!["boosted_trees", "cnn"],
    };
    let mut leaderboard = Vec::new();
    let mut chosen: Option<Candidate> = None;
    for a in algorithms {
        let c = if a == "cnn" {
            train_cnn(ctx, &p, &scanned, &train_w, &val_w)?
        } else {
            train_trees(ctx, &p, &scanned, &train_w, &val_w)?
        };
        leaderboard.push(json!({
            "algorithm": a,
            "validation_accuracy": c.validation_accuracy,
            "validation_windows": val_w.len(),
            "fit_secs": c.fit_secs,
            "epochs_run": c.history.len(),
        }));
        let better = chosen.as_ref().is_none_or(|b| {
            c.validation_accuracy.unwrap_or(0.0) > b.validation_accuracy.unwrap_or(0.0)
        });
        if better {
            chosen = Some(c);
        }
    }
    let Some(chosen) = chosen else {
        return Err(Error::Unsupported("no model was trained".into()));
    };
    let mut reports = Vec::new();
    let mut window_reports = BTreeMap::new();
    for (name, sessions) in [("validation", &scanned.validation), ("test", &scanned.test)] {
        if sessions.is_empty() {
            continue;
        }
        let mut phase = ctx.phase(Phase::Evaluating, sessions.len() as u64);
        let (per_window, per_session) = chosen.model.session_probabilities(sessions)?;
        let truth: Vec<usize> = sessions.iter().map(|s| s.label).collect();
        let inputs: Vec<PathBuf> = sessions.iter().map(|s| PathBuf::from(&s.name)).collect();
        let r = ClassificationReport::compute(&scanned.labels, &truth, &per_session, &inputs);
        let wtruth: Vec<usize> = sessions
            .iter()
            .zip(&per_window)
            .flat_map(|(s, w)| std::iter::repeat_n(s.label, w.len()))
            .collect();
        let wprobs: Vec<Vec<f32>> = per_window.into_iter().flatten().collect();
        let wr = ClassificationReport::compute(&scanned.labels, &wtruth, &wprobs, &[]);
        window_reports.insert(
            name.to_string(),
            json!({
                "num_windows": wr.num_examples,
                "accuracy": wr.accuracy,
                "balanced_accuracy": wr.balanced_accuracy,
                "majority_accuracy": wr.majority_accuracy,
                "confusion_matrix": wr.confusion_matrix,
            }),
        );
        ctx.emit(Event::Evaluated {
            split: name.into(),
            num_examples: r.num_examples,
            metric: "accuracy".into(),
            value: r.accuracy,
        });
        reports.push((name.to_string(), r));
        phase.set(sessions.len() as u64);
    }
    if let Some(w) = crate::eval::usefulness::first_classifier_warning(&reports, ACTIVITY_ADVICE) {
        ctx.warn(w, None);
    }
    write_outputs(
        ctx,
        &p,
        &scanned,
        &chosen,
        &reports,
        &window_reports,
        &leaderboard,
    )
}

fn write_outputs(
    ctx: &RunContext,
    p: &ActivityParams,
    data: &ActivityData,
    chosen: &Candidate,
    reports: &[(String, ClassificationReport)],
    window_reports: &BTreeMap<String, serde_json::Value>,
    leaderboard: &[serde_json::Value],
) -> Result<PathBuf> {
    let dir = &ctx.run_dir;
    let mut phase = ctx.phase(Phase::Exporting, 3);
    let report = json!({
        "template": ctx.project.template,
        "labels": data.labels,
        "data": {
            "num_train_sessions": data.train.len(),
            "num_validation_sessions": data.validation.len(),
            "num_test_sessions": data.test.len(),
            "columns": data.columns,
            "sample_rate": data.sample_rate,
            "prediction_window": p.prediction_window,
            "window_hop": hop_for(p),
            "issues": data.summary.issues,
        },
        "training": {
            "algorithm": chosen.model.algorithm(),
            "validation_accuracy": chosen.validation_accuracy,
            "selection_metric": "validation window accuracy",
            "leaderboard": leaderboard,
            "epochs_run": chosen.history.len(),
            "best_epoch": chosen.best_epoch,
            "stopped_early": chosen.stopped_early,
            "history": chosen.history,
        },
        "evaluation": reports.iter().map(|(k, v)| (k.clone(), v)).collect::<BTreeMap<_, _>>(),
        "window_evaluation": window_reports,
        "elapsed_secs": ctx.started.elapsed().as_secs_f64(),
    });
    write_json(&dir.report_json(), &report)?;
    if !chosen.history.is_empty() {
        plots::classifier_curves(&dir.report_dir(), &chosen.history)?;
    }
    for (name, r) in reports {
        plots::report_confusion_matrix(&dir.report_dir(), name, r)?;
    }
    phase.set(1);
    let params: BTreeMap<&String, &crate::params::ParamValue> = ctx.params.0.iter().collect();
    let keys = |s: &[Session]| {
        let mut k: Vec<&str> = s.iter().map(|s| s.key.as_str()).collect();
        k.sort_unstable();
        crate::fsutil::hash_hex(k.join("\n").as_bytes())
    };
    let manifest = json!({
        "lathe_version": env!("CARGO_PKG_VERSION"),
        "created": crate::train::run_dir::utc_iso(std::time::SystemTime::now()),
        "template": ctx.project.template,
        "seed": ctx.project.seed,
        "device": crate::device::label(&ctx.device),
        "params": params,
        "algorithm": chosen.model.algorithm(),
        "data": {
            "train": { "path": ctx.project.resolve(&ctx.project.data.train), "num_sessions": data.train.len(), "blake3": keys(&data.train) },
            "validation": { "num_sessions": data.validation.len(), "blake3": keys(&data.validation) },
            "test": { "num_sessions": data.test.len(), "blake3": keys(&data.test) },
        },
    });
    let target = dir.model();
    chosen.model.write(
        &target,
        &ctx.project.template,
        chosen.vars.clone(),
        &manifest,
    )?;
    phase.set(3);
    ctx.emit(Event::Exported {
        format: "safetensors".into(),
        path: target.join(crate::train::run_dir::MODEL_WEIGHTS),
    });
    Ok(target)
}
