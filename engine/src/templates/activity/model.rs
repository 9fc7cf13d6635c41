//! The exported activity model: `model.safetensors` (the CNN's weights with `input.mean` /
//! `input.inv_std`, or the boosted trees as flat node arrays `trees.*`) and `config.json` (labels,
//! sensor columns, window, hop, sample rate, algorithm); loading it back, predicting recordings
//! (every window, then the session as the mean of its windows' probabilities) and evaluating on
//! labelled data laid out as for training (per session).

use super::cnn::{ActivityCnn, CnnConfig};
use super::features;
use super::params::{ActivityParams, hop_of};
use super::records;
use super::scan::{self, Session};
use super::windows;
use crate::error::{Error, Result};
use crate::eval::ClassificationReport;
use crate::export::st;
use crate::fsutil::{read_json, write_json};
use crate::learners::gbt::{Gbt, Objective};
use crate::learners::gbt_tree::{Node, Tree};
use crate::task::{Evaluation, Model, Prediction, ResolvedData, ScanProgress};
use crate::train::run_dir::{MODEL_CONFIG, MODEL_WEIGHTS};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use serde_json::json;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Task id in `config.json` (`lathe.task`).
pub const TASK_ID: &str = "activity-classification";

/// The trained network.
pub enum ActivityNet {
    Trees(Gbt),
    Cnn(ActivityCnn),
}

/// A loaded (or just trained) activity classifier.
pub struct ActivityModel {
    pub labels: Vec<String>,
    pub columns: Vec<String>,
    pub timestamp_column: Option<String>,
    pub window: usize,
    pub hop: usize,
    pub sample_rate: f64,
    pub net: ActivityNet,
}

impl ActivityModel {
    pub fn algorithm(&self) -> &'static str {
        match self.net {
            ActivityNet::Trees(_) => "boosted_trees",
            ActivityNet::Cnn(_) => "cnn",
        }
    }

    /// Class probabilities of every window (`[window, channels]` row-major).
    pub fn window_probabilities(&self, windows: &[Vec<f32>]) -> Result<Vec<Vec<f32>>> {
        match &self.net {
            ActivityNet::Cnn(net) => net.probabilities(windows),
            ActivityNet::Trees(gbt) => {
                let groups = features::axis_groups(&self.columns);
                let c = self.columns.len();
                Ok(windows
                    .iter()
                    .map(|w| gbt.probabilities(&gbt.raw(&features::window_features(w, c, &groups))))
                    .collect())
            }
        }
    }

    /// Per-window and per-session probabilities of sessions.
    pub fn session_probabilities(
        &self,
        sessions: &[Session],
    ) -> Result<(Vec<Vec<Vec<f32>>>, Vec<Vec<f32>>)> {
        let mut per_window = Vec::with_capacity(sessions.len());
        let mut per_session = Vec::with_capacity(sessions.len());
        for s in sessions {
            let w = windows::cut(&s.data, s.channels, self.window, self.hop);
            let p = self.window_probabilities(&w)?;
            per_session.push(mean_of(&p, self.labels.len()));
            per_window.push(p);
        }
        Ok((per_window, per_session))
    }

    /// The tensors and `config.json` of the model folder.
    fn parts(
        &self,
        template: &str,
        vars: Option<Vec<(String, Tensor)>>,
    ) -> Result<(Vec<(String, Tensor)>, serde_json::Value)> {
        let mut config = json!({
            "lathe": { "task": TASK_ID, "template": template, "version": crate::VERSION },
            "algorithm": self.algorithm(),
            "id2label": self.labels.iter().enumerate().map(|(i, l)| (i.to_string(), json!(l))).collect::<serde_json::Map<_, _>>(),
            "label2id": self.labels.iter().enumerate().map(|(i, l)| (l.clone(), json!(i))).collect::<serde_json::Map<_, _>>(),
            "columns": self.columns,
            "timestamp_column": self.timestamp_column,
            "prediction_window": self.window,
            "window_hop": self.hop,
            "sample_rate": self.sample_rate,
            "session_prediction": "mean of the window probabilities",
        });
        let tensors = match &self.net {
            ActivityNet::Cnn(net) => {
                config["cnn"] = json!(net.cfg);
                config["apply"] = json!(
                    "x = window [prediction_window, channels] transposed to [channels, window]; x = (x − input.mean) · input.inv_std per channel; three conv1d (features.i, kernel 5, padding 2, strides 1, 2, 2) each followed by ReLU; mean over time; classifier (linear); softmax"
                );
                let mut t = vars.unwrap_or_default();
                t.push(("input.mean".into(), net.mean.flatten_all()?));
                t.push(("input.inv_std".into(), net.inv_std.flatten_all()?));
                t.sort_by(|a, b| a.0.cmp(&b.0));
                t
            }
            ActivityNet::Trees(gbt) => {
                config["features"] = json!(features::feature_names(&self.columns));
                config["num_iterations"] = json!(gbt.trees.len());
                config["apply"] = json!(
                    "per window compute `features` (per channel then per x/y/z magnitude: mean, std (population), min, max, energy = mean square, lag-1 autocorrelation = Σ(x[t]−m)(x[t+1]−m) / (n·var), 0 when var ≤ 1e-12); raw[k] = trees.base_score[k] + Σ over trees t with trees.tree_output[t] = k of the leaf value reached from its root (nodes trees.tree_offsets[t]..tree_offsets[t+1], local indices; go left iff x[feature] <= threshold, NaN left iff missing_left; a leaf has feature −1); softmax over raw"
                );
                tree_tensors(gbt)?
            }
        };
        Ok((tensors, config))
    }

    /// Writes the model folder (staged, then moved into place).
    pub fn write(
        &self,
        target: &Path,
        template: &str,
        vars: Option<Vec<(String, Tensor)>>,
        manifest: &serde_json::Value,
    ) -> Result<()> {
        let (tensors, config) = self.parts(template, vars)?;
        let staged = target.with_extension("staging");
        if staged.exists() {
            std::fs::remove_dir_all(&staged).map_err(|e| Error::io("removing", &staged, e))?;
        }
        std::fs::create_dir_all(&staged).map_err(|e| Error::io("creating", &staged, e))?;
        st::save(
            &staged.join(MODEL_WEIGHTS),
            &tensors,
            &[("lathe_task", TASK_ID.to_string())],
        )?;
        write_json(&staged.join(MODEL_CONFIG), &config)?;
        write_json(&staged.join("manifest.json"), manifest)?;
        crate::fsutil::replace_dir(&staged, target)
    }

    /// Loads a model folder.
    pub fn load(dir: &Path, device: &Device) -> Result<Self> {
        let config_path = dir.join(MODEL_CONFIG);
        let config: serde_json::Value = read_json(&config_path)?;
        let bad = |what: &str| {
            Error::model(
                format!("config.json has no valid `{what}`; re-export the model"),
                &config_path,
            )
        };
        let strings = |key: &str| -> Result<Vec<String>> {
            serde_json::from_value(config[key].clone()).map_err(|_| bad(key))
        };
        let id2label: HashMap<String, String> =
            serde_json::from_value(config["id2label"].clone()).map_err(|_| bad("id2label"))?;
        let labels: Vec<String> = (0..id2label.len())
            .map(|i| {
                id2label
                    .get(&i.to_string())
                    .cloned()
                    .ok_or_else(|| bad("id2label"))
            })
            .collect::<Result<_>>()?;
        let columns = strings("columns")?;
        let window = config["prediction_window"]
            .as_u64()
            .ok_or_else(|| bad("prediction_window"))? as usize;
        let hop = config["window_hop"]
            .as_u64()
            .ok_or_else(|| bad("window_hop"))? as usize;
        let sample_rate = config["sample_rate"]
            .as_f64()
            .ok_or_else(|| bad("sample_rate"))?;
        let timestamp_column = config["timestamp_column"].as_str().map(str::to_string);
        let weights = dir.join(MODEL_WEIGHTS);
        let (tensors, _) = st::load(&weights, device)?;
        let net = match config["algorithm"].as_str() {
            Some("cnn") => {
                let cfg: CnnConfig =
                    serde_json::from_value(config["cnn"].clone()).map_err(|_| bad("cnn"))?;
                if cfg.channels != columns.len()
                    || cfg.window != window
                    || cfg.num_classes != labels.len()
                {
                    return Err(Error::model(
                        "the network's shape does not match config.json; re-export the model",
                        &config_path,
                    ));
                }
                let vec = |name: &str| -> Result<Vec<f32>> {
                    tensors
                        .get(name)
                        .ok_or_else(|| Error::model(format!("missing tensor `{name}`"), &weights))?
                        .to_dtype(DType::F32)?
                        .flatten_all()?
                        .to_vec1::<f32>()
                        .map_err(Into::into)
                };
                let (mean, inv_std) = (vec("input.mean")?, vec("input.inv_std")?);
                if mean.len() != cfg.channels || inv_std.len() != cfg.channels {
                    return Err(Error::model(
                        "input.mean / input.inv_std do not match the channels",
                        &weights,
                    ));
                }
                let vb = VarBuilder::from_tensors(tensors, DType::F32, device);
                let net = ActivityCnn::new(cfg, &mean, &inv_std, vb).map_err(|e| {
                    Error::model(
                        format!("the weights do not fit the network ({e})"),
                        &weights,
                    )
                })?;
                ActivityNet::Cnn(net)
            }
            Some("boosted_trees") => {
                ActivityNet::Trees(trees_from(&tensors, labels.len(), &weights)?)
            }
            _ => return Err(bad("algorithm")),
        };
        Ok(Self {
            labels,
            columns,
            timestamp_column,
            window,
            hop,
            sample_rate,
            net,
        })
    }

    /// The parameters to read recordings the way training did.
    fn reading_params(&self) -> ActivityParams {
        ActivityParams {
            algorithm: self.algorithm().into(),
            prediction_window: self.window,
            window_overlap: 1.0 - self.hop as f64 / self.window.max(1) as f64,
            features: self.columns.clone(),
            session_column: String::new(),
            label_column: String::new(),
            timestamp_column: self.timestamp_column.clone().unwrap_or_default(),
            sample_rate: self.sample_rate,
            validation_split: 0.0,
            epochs: 1,
            batch_size: 2,
            learning_rate: 0.0,
            weight_decay: 0.0,
            patience: 0,
            cnn_width: 2,
            dropout: 0.0,
            augment: false,
            max_iterations: 1,
        }
    }

    /// The sessions of one recording file to predict: the whole file, or one per session id
    /// when it has a session column.
    fn recording_sessions(&self, path: &Path) -> Result<Vec<(String, Vec<f32>)>> {
        let mut p = self.reading_params();
        let records = records::read_records(path)?;
        if let Some(m) = self.columns.iter().find(|c| !records.columns.contains(c)) {
            return Err(Error::data(
                format!(
                    "the recording has no column \"{m}\"; the model reads {} (its columns: {})",
                    self.columns.join(", "),
                    records.columns.join(", ")
                ),
                path,
            ));
        }
        if p.timestamp_column.is_empty() || !records.columns.contains(&p.timestamp_column) {
            p.timestamp_column = String::new();
        }
        let table = records::column_roles(&records, &p, true, path).is_ok();
        let data = ResolvedData {
            train: path.to_path_buf(),
            ..Default::default()
        };
        if table {
            // A table of sessions: every session, whatever its label.
            let mut q = p.clone();
            q.prediction_window = 1;
            let scanned = scan::scan(&data, &q, &|| Ok(()))?;
            let mut out: Vec<(String, Vec<f32>)> = scanned
                .train
                .into_iter()
                .chain(scanned.validation)
                .map(|s| (s.name, s.data))
                .collect();
            out.sort_by(|a, b| a.0.cmp(&b.0));
            return Ok(out);
        }
        let roles = records::ColumnRoles {
            sensors: self.columns.clone(),
            timestamp: (!p.timestamp_column.is_empty()).then(|| p.timestamp_column.clone()),
            session: None,
            label: None,
        };
        let (values, bad) = records::numbers(&records, &roles);
        if values.is_empty() {
            return Err(Error::data(
                format!(
                    "no row of the recording has a number in every sensor column ({bad} rows unusable)"
                ),
                path,
            ));
        }
        Ok(vec![(path.to_string_lossy().into_owned(), values)])
    }
}

/// Mean of rows of probabilities.
pub fn mean_of(rows: &[Vec<f32>], k: usize) -> Vec<f32> {
    let mut m = vec![0f64; k];
    for r in rows {
        for (a, b) in m.iter_mut().zip(r) {
            *a += *b as f64;
        }
    }
    m.iter()
        .map(|v| (v / rows.len().max(1) as f64) as f32)
        .collect()
}

impl Model for ActivityModel {
    fn labels(&self) -> &[String] {
        &self.labels
    }

    fn predict(&self, inputs: &[String], progress: ScanProgress<'_>) -> Vec<Result<Prediction>> {
        let mut out = Vec::new();
        for (i, input) in inputs.iter().enumerate() {
            progress(i as u64, inputs.len() as u64);
            let sessions = match self.recording_sessions(Path::new(input)) {
                Ok(s) => s,
                Err(e) => {
                    out.push(Err(e));
                    continue;
                }
            };
            let c = self.columns.len();
            for (name, data) in sessions {
                let name = if name == *input || Path::new(&name) == Path::new(input) {
                    input.clone()
                } else {
                    name
                };
                let starts = windows::starts(data.len() / c.max(1), self.window, self.hop);
                if starts.is_empty() {
                    out.push(Err(Error::data(
                        format!(
                            "{name}: {} samples, shorter than one prediction window ({}); record longer",
                            data.len() / c.max(1),
                            self.window
                        ),
                        input,
                    )));
                    continue;
                }
                let w = windows::cut(&data, c, self.window, self.hop);
                match self.window_probabilities(&w) {
                    Ok(p) => {
                        for (s, pw) in starts.iter().zip(&p) {
                            out.push(Ok(Prediction::from_probabilities(
                                format!("{name}[{s}:{}]", s + self.window),
                                &self.labels,
                                pw,
                            )));
                        }
                        out.push(Ok(Prediction::from_probabilities(
                            name,
                            &self.labels,
                            &mean_of(&p, self.labels.len()),
                        )));
                    }
                    Err(e) => out.push(Err(e)),
                }
            }
        }
        progress(inputs.len() as u64, inputs.len() as u64);
        out
    }

    fn evaluate(
        &self,
        data: &Path,
        progress: ScanProgress<'_>,
        warn: &mut dyn FnMut(String),
    ) -> Result<Evaluation> {
        let mut p = self.reading_params();
        p.timestamp_column = String::new();
        let resolved = ResolvedData {
            train: data.to_path_buf(),
            ..Default::default()
        };
        let scanned = scan::scan(&resolved, &p, &|| Ok(()))?;
        for issue in &scanned.summary.issues {
            warn(issue.line());
        }
        let sessions: Vec<Session> = scanned
            .train
            .into_iter()
            .chain(scanned.validation)
            .collect();
        let truth_names: Vec<&str> = sessions
            .iter()
            .map(|s| {
                scanned
                    .labels
                    .get(s.label)
                    .map(String::as_str)
                    .unwrap_or("")
            })
            .collect();
        let mut kept = Vec::new();
        let mut truth = Vec::new();
        for (s, name) in sessions.iter().zip(&truth_names) {
            match self.labels.iter().position(|l| l == name) {
                Some(i) => {
                    truth.push(i);
                    kept.push(s.clone());
                }
                None => warn(format!(
                    "{}: activity \"{name}\" is unknown to the model; skipped",
                    s.name
                )),
            }
        }
        let (_, probs) = self.session_probabilities(&kept)?;
        progress(kept.len() as u64, kept.len() as u64);
        let inputs: Vec<PathBuf> = kept.iter().map(|s| PathBuf::from(&s.name)).collect();
        Ok(Evaluation::Classification(ClassificationReport::compute(
            &self.labels,
            &truth,
            &probs,
            &inputs,
        )))
    }
}

/// The parameters a window hop is computed from, as stored.
pub fn hop_for(p: &ActivityParams) -> usize {
    hop_of(p.prediction_window, p.window_overlap)
}

/// Boosted trees as flat node arrays (numeric splits only).
fn tree_tensors(gbt: &Gbt) -> Result<Vec<(String, Tensor)>> {
    let cpu = Device::Cpu;
    let (mut offsets, mut outputs) = (vec![0i64], Vec::new());
    let (mut feature, mut threshold, mut missing, mut left, mut right, mut value) = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    for round in &gbt.trees {
        for (k, t) in round.iter().enumerate() {
            for n in &t.nodes {
                feature.push(if n.is_leaf() { -1 } else { n.feature as i64 });
                threshold.push(n.threshold);
                missing.push(i64::from(n.missing_left));
                left.push(n.left as i64);
                right.push(n.right as i64);
                value.push(n.value);
            }
            offsets.push(feature.len() as i64);
            outputs.push(k as i64);
        }
    }
    let v = |name: &str, t: Tensor| (format!("trees.{name}"), t);
    Ok(vec![
        v("base_score", Tensor::new(gbt.base.as_slice(), &cpu)?),
        v("tree_offsets", Tensor::new(offsets.as_slice(), &cpu)?),
        v("tree_output", Tensor::new(outputs.as_slice(), &cpu)?),
        v("feature", Tensor::new(feature.as_slice(), &cpu)?),
        v("threshold", Tensor::new(threshold.as_slice(), &cpu)?),
        v("missing_left", Tensor::new(missing.as_slice(), &cpu)?),
        v("left", Tensor::new(left.as_slice(), &cpu)?),
        v("right", Tensor::new(right.as_slice(), &cpu)?),
        v("value", Tensor::new(value.as_slice(), &cpu)?),
    ])
}

/// Rebuilds boosted trees from [`tree_tensors`]'s arrays.
fn trees_from(t: &HashMap<String, Tensor>, classes: usize, path: &Path) -> Result<Gbt> {
    let damaged = || Error::model("the tree arrays are damaged; re-export the model", path);
    let get = |name: &str| {
        t.get(&format!("trees.{name}"))
            .ok_or_else(|| Error::model(format!("missing tensor `trees.{name}`"), path))
    };
    let f64s = |name: &str| -> Result<Vec<f64>> { Ok(get(name)?.to_dtype(DType::F64)?.to_vec1()?) };
    let i64s = |name: &str| -> Result<Vec<i64>> { Ok(get(name)?.to_dtype(DType::I64)?.to_vec1()?) };
    let (offsets, outputs) = (i64s("tree_offsets")?, i64s("tree_output")?);
    let (feature, threshold, missing) =
        (i64s("feature")?, f64s("threshold")?, i64s("missing_left")?);
    let (left, right, value) = (i64s("left")?, i64s("right")?, f64s("value")?);
    let base = f64s("base_score")?;
    let k = if classes == 2 { 1 } else { classes };
    if base.len() != k {
        return Err(damaged());
    }
    let mut trees: Vec<Vec<Tree>> = Vec::new();
    for (ti, w) in offsets.windows(2).enumerate() {
        let (a, b) = (w[0].max(0) as usize, w[1].max(0) as usize);
        if b < a || b > feature.len() {
            return Err(damaged());
        }
        let mut nodes = Vec::with_capacity(b - a);
        for n in a..b {
            let g = |v: &Vec<i64>| v.get(n).copied().ok_or_else(damaged);
            let f = g(&feature)?;
            nodes.push(Node {
                feature: f.max(0) as usize,
                threshold: threshold.get(n).copied().ok_or_else(damaged)?,
                bin_threshold: 0,
                missing_left: g(&missing)? != 0,
                categories_left: None,
                left: if f < 0 { 0 } else { g(&left)?.max(0) as usize },
                right: if f < 0 { 0 } else { g(&right)?.max(0) as usize },
                value: value.get(n).copied().ok_or_else(damaged)?,
                gain: 0.0,
                count: 0,
            });
        }
        if outputs.get(ti).copied().unwrap_or(-1) == 0 {
            trees.push(Vec::with_capacity(k));
        }
        trees.last_mut().ok_or_else(damaged)?.push(Tree { nodes });
    }
    let objective = if classes == 2 {
        Objective::Binary
    } else {
        Objective::Multiclass { classes }
    };
    Ok(Gbt {
        objective,
        base,
        best_iteration: trees.len(),
        trees,
        feature_gain: Vec::new(),
        stopped_early: false,
    })
}
