//! The finished sound run's outputs: `report.json` (with the candidates' leaderboard), the plots,
//! and the model folder (CNN or encoder + head) with its manifest.

use super::cnn::vars_of;
use super::train::SoundSplits;
use super::train::{Trained, TrainedModel};
use crate::data::image_folder::LabeledFile;
use crate::error::Result;
use crate::eval::{ClassificationReport, plots};
use crate::fsutil::write_json;
use crate::nets::head::Head;
use crate::templates::sound::encoder::Encoder;
use crate::templates::sound::model::{self as sound_model};
use crate::templates::sound::transfer as sound_transfer;
use crate::train::{Event, Phase, RunContext};
use candle_core::Tensor;
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

/// Writes `report.json`, the plots and the `model/` folder of a finished run. The front end
/// written is the chosen candidate's (a statistics variant may window differently from the parameters);
/// `cross_validation` is how `auto`'s folds were made (or why there were none).
pub(super) fn write_run_outputs(
    ctx: &RunContext,
    chosen: &Trained,
    splits: &SoundSplits,
    reports: &[(String, ClassificationReport)],
    leaderboard: &[serde_json::Value],
    cross_validation: serde_json::Value,
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
        "frontend": chosen.frontend,
        "training": {
            "algorithm": chosen.name,
            "validation_accuracy": chosen.validation_accuracy,
            "leaderboard": leaderboard,
            "cross_validation": cross_validation,
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
                Encoder::Speech(s) => json!({
                    "id": net.encoder.id(),
                    "weights_source": s.weights_source,
                    "weights_blake3": s.weights_hash,
                }),
                Encoder::Whisper(w) => json!({
                    "id": net.encoder.id(),
                    "weights_source": w.weights_source,
                    "weights_blake3": w.weights_hash,
                }),
                Encoder::Yamnet(y) => json!({
                    "id": net.encoder.id(),
                    "weights_source": y.weights_source,
                    "weights_blake3": y.weights_hash,
                }),
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
        &chosen.frontend,
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
