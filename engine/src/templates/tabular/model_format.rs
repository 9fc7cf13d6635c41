//! The table model's `model` object of `config.json` (the type, its rule and its output) and its
//! tensors with PyTorch-style dotted names (trees as flat node arrays, linear weights, the
//! MLP's layers, an ensemble's members under their own prefix): written from a fitted model,
//! and read back into one. `model.rs` writes and loads the model folder with them.

use crate::data::table_schema::Schema;
use crate::error::{Error, Result};
use crate::learners::forest::{Forest, ForestKind};
use crate::learners::gbt::{Gbt, Objective};
use crate::learners::gbt_tree::{Node, Tree};
use crate::learners::glm::{self, Glm};
use crate::learners::mlp::Mlp;
use crate::templates::tabular::data::TargetKind;
use crate::templates::tabular::model::{Ensemble, Fitted, Member};
use candle_core::{DType, Device, Tensor};
use serde_json::json;
use std::collections::HashMap;
use std::path::Path;

/// Rebuilds a model from its `model` object of `config.json` and its tensors (an ensemble's
/// members from theirs, without their prefix; `top` is false inside an ensemble, where another
/// ensemble is not allowed).
pub(super) fn fitted_from(
    model: &serde_json::Value,
    tensors: &HashMap<String, Tensor>,
    kind: TargetKind,
    schema: &Schema,
    paths: (&Path, &Path),
    top: bool,
) -> Result<Fitted> {
    let (config_path, st_path) = paths;
    let bad = |what: &str| {
        Error::model(
            format!("config.json has no valid `{what}`; re-export the model"),
            config_path,
        )
    };
    Ok(match model["type"].as_str() {
        Some("gradient_boosted_trees") => {
            let objective: Objective = serde_json::from_value(model["objective"].clone())
                .map_err(|_| bad("model.objective"))?;
            let (base, trees, feature_gain) = trees_from(&tensors, objective.outputs(), st_path)?;
            Fitted::Trees(Gbt {
                objective,
                base,
                best_iteration: trees.len(),
                trees,
                feature_gain,
                stopped_early: false,
            })
        }
        Some("random_forest") => {
            let kind: ForestKind =
                serde_json::from_value(model["forest"].clone()).map_err(|_| bad("model.forest"))?;
            let (_, trees, feature_gain) = trees_from(&tensors, kind.outputs(), st_path)?;
            Fitted::Forest(Forest {
                kind,
                trees,
                feature_gain,
            })
        }
        Some("mlp") => Fitted::Mlp(mlp_from(&tensors, kind, schema, st_path)?),
        Some("ridge_regression" | "logistic_regression") => {
            let w = get(&tensors, "linear.weight", st_path)?;
            let (outputs, dim) = w.dims2()?;
            let weight = w.flatten_all()?.to_dtype(DType::F64)?.to_vec1::<f64>()?;
            let bias = vec1_f64(&tensors, "linear.bias", st_path)?;
            if bias.len() != outputs || dim != glm::design_dim(schema) {
                return Err(Error::model(
                    "linear weights do not match the feature pipeline in config.json",
                    st_path,
                ));
            }
            Fitted::Linear(Glm {
                classes: if kind == TargetKind::Regression {
                    0
                } else {
                    outputs
                },
                dim,
                weight,
                bias,
            })
        }
        Some("weighted_ensemble") if top => {
            let members = model["members"]
                .as_array()
                .ok_or_else(|| bad("model.members"))?;
            let mut out = Vec::with_capacity(members.len());
            for (i, m) in members.iter().enumerate() {
                let prefix = format!("member{i}.");
                let own: HashMap<String, Tensor> = tensors
                    .iter()
                    .filter_map(|(name, t)| {
                        name.strip_prefix(&prefix)
                            .map(|rest| (rest.to_string(), t.clone()))
                    })
                    .collect();
                let weight = m["weight"]
                    .as_f64()
                    .filter(|w| w.is_finite() && *w >= 0.0)
                    .ok_or_else(|| bad("model.members.weight"))?;
                out.push(Member {
                    algorithm: m["algorithm"].as_str().unwrap_or_default().to_string(),
                    weight,
                    fitted: fitted_from(&m["model"], &own, kind, schema, paths, false)?,
                });
            }
            let total: f64 = out.iter().map(|m| m.weight).sum();
            if out.is_empty() || (total - 1.0).abs() > 1e-6 {
                return Err(bad("model.members"));
            }
            Fitted::Ensemble(Ensemble { members: out })
        }
        _ => return Err(bad("model.type")),
    })
}

/// The `model` object of `config.json`: the type, its rule and its output.
pub(super) fn model_json(fitted: &Fitted, kind: TargetKind, schema: &Schema) -> serde_json::Value {
    let output = match (kind, fitted) {
        (TargetKind::Regression, _) => "the predicted number",
        (TargetKind::Classification, Fitted::Trees(m)) if m.objective == Objective::Binary => {
            "one score s: P(id2label[1]) = sigmoid(s), P(id2label[0]) = 1 − sigmoid(s)"
        }
        (TargetKind::Classification, Fitted::Forest(m)) if m.kind.outputs() == 1 => {
            "one output p: P(id2label[1]) = clip(p, 0, 1), P(id2label[0]) = 1 − that"
        }
        (TargetKind::Classification, Fitted::Forest(_)) => {
            "one averaged class frequency per class: probabilities = max(outputs, 0) / sum(max(outputs, 0))"
        }
        (TargetKind::Classification, Fitted::Ensemble(_)) => {
            "the probabilities themselves: the weighted average of the members' probabilities"
        }
        (TargetKind::Classification, _) => "one score per class: probabilities = softmax(scores)",
    };
    let tree_rule = "encode each row with `features`; then for each tree t (nodes tree_offsets[t]..tree_offsets[t+1], node indices local to the tree, root first) walk from the root: at a node with feature f = trees.feature[n] ≥ 0, a categorical node (is_categorical) sends the row left when bit code of categories_left[n] (8 × u32, low word first) is set; a numeric node sends NaN left iff missing_left, else left iff x[f] <= threshold; a leaf (feature = -1) adds trees.value[n] to output tree_output[t]; outputs start at base_score";
    let design_rule = "encode each row with `features`, then build the design: numeric and boolean columns with NaN replaced by `median` and values clipped to [min, max]; categorical columns one-hot over their codes (categories then one <missing or other> level)";
    match fitted {
        Fitted::Trees(m) => json!({
            "type": "gradient_boosted_trees",
            "objective": m.objective,
            "num_iterations": m.trees.len(),
            "num_outputs": m.objective.outputs(),
            "apply": tree_rule,
            "output": output,
        }),
        Fitted::Forest(m) => json!({
            "type": "random_forest",
            "forest": m.kind,
            "num_trees": m.trees.len(),
            "num_outputs": m.kind.outputs(),
            "apply": format!("{tree_rule} (all zero: leaf values are already divided by the number of trees, so the outputs are the forest's average)"),
            "output": output,
        }),
        Fitted::Mlp(m) => json!({
            "type": "mlp",
            "num_outputs": m.outputs(),
            "hidden": m.hidden(),
            "design": glm::design_names(schema),
            "apply": format!("{design_rule}; z = (design − mlp.input_mean) / mlp.input_std; outputs = mlp.4(relu(mlp.2(relu(mlp.0(z))))) with mlp.N(x) = x · mlp.N.weightᵀ + mlp.N.bias; a regressor's number is mlp.target_mean + mlp.target_std · output"),
            "output": output,
        }),
        Fitted::Linear(m) => json!({
            "type": if kind == TargetKind::Regression { "ridge_regression" } else { "logistic_regression" },
            "num_outputs": m.outputs(),
            "design": glm::design_names(schema),
            "apply": format!("{design_rule}; outputs = linear.bias + linear.weight · design"),
            "output": output,
        }),
        Fitted::Ensemble(e) => json!({
            "type": "weighted_ensemble",
            "num_members": e.members.len(),
            "members": e.members.iter().enumerate().map(|(i, m)| json!({
                "algorithm": m.algorithm,
                "weight": m.weight,
                "tensor_prefix": format!("member{i}."),
                "model": model_json(&m.fitted, kind, schema),
            })).collect::<Vec<_>>(),
            "apply": "apply every member (its `model` rule, with its tensors named without its tensor_prefix) to the row; a classifier's output is Σ weight × the member's class probabilities, a regressor's Σ weight × the member's number (the weights sum to 1)",
            "output": output,
        }),
    }
}

/// A model's tensors with PyTorch-style dotted names; an ensemble's member `i` has its own
/// under the prefix `member{i}.`.
pub(super) fn tensors_of(fitted: &Fitted) -> Result<Vec<(String, Tensor)>> {
    let cpu = Device::Cpu;
    let mut out = Vec::new();
    match fitted {
        Fitted::Trees(m) => {
            out = tree_tensors(&m.base, &m.trees, &m.feature_gain)?;
        }
        Fitted::Forest(m) => {
            let base = vec![0.0; m.kind.outputs()];
            out = tree_tensors(&base, &m.trees, &m.feature_gain)?;
        }
        Fitted::Mlp(m) => {
            out.push((
                "mlp.input_mean".into(),
                Tensor::new(m.input_mean.as_slice(), &cpu)?,
            ));
            out.push((
                "mlp.input_std".into(),
                Tensor::new(m.input_std.as_slice(), &cpu)?,
            ));
            for (i, (w, b)) in m.tensors()?.into_iter().enumerate() {
                out.push((format!("mlp.{}.weight", 2 * i), w));
                out.push((format!("mlp.{}.bias", 2 * i), b));
            }
            out.push((
                "mlp.target_mean".into(),
                Tensor::new(&[m.target_mean], &cpu)?,
            ));
            out.push(("mlp.target_std".into(), Tensor::new(&[m.target_std], &cpu)?));
        }
        Fitted::Ensemble(e) => {
            for (i, m) in e.members.iter().enumerate() {
                if matches!(m.fitted, Fitted::Ensemble(_)) {
                    return Err(Error::Unsupported(
                        "an ensemble member is itself an ensemble (a bug)".into(),
                    ));
                }
                for (name, t) in tensors_of(&m.fitted)? {
                    out.push((format!("member{i}.{name}"), t));
                }
            }
        }
        Fitted::Linear(m) => {
            out.push((
                "linear.weight".into(),
                Tensor::from_vec(m.weight.clone(), (m.outputs(), m.dim), &cpu)?,
            ));
            out.push(("linear.bias".into(), Tensor::new(m.bias.as_slice(), &cpu)?));
        }
    }
    Ok(out)
}

/// Trees as flat node arrays (`trees.*`), shared by boosting and forests.
fn tree_tensors(
    base: &[f64],
    trees: &[Vec<Tree>],
    feature_gain: &[f64],
) -> Result<Vec<(String, Tensor)>> {
    let cpu = Device::Cpu;
    let mut out = Vec::new();
    let (mut offsets, mut outputs) = (vec![0i64], Vec::new());
    let (mut feature, mut threshold, mut missing_left, mut is_cat) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut left, mut right, mut value, mut cats) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for trees in trees {
        for (j, t) in trees.iter().enumerate() {
            outputs.push(j as i64);
            for n in &t.nodes {
                let leaf = n.is_leaf();
                feature.push(if leaf { -1 } else { n.feature as i64 });
                threshold.push(n.threshold);
                missing_left.push(u8::from(n.missing_left));
                is_cat.push(u8::from(n.categories_left.is_some()));
                left.push(if leaf { -1 } else { n.left as i64 });
                right.push(if leaf { -1 } else { n.right as i64 });
                value.push(n.value);
                let set = n.categories_left.unwrap_or([0; 4]);
                for w in set {
                    cats.push(w as u32);
                    cats.push((w >> 32) as u32);
                }
            }
            let last = offsets.last().copied().unwrap_or(0);
            offsets.push(last + t.nodes.len() as i64);
        }
    }
    let nodes = feature.len();
    out.push(("trees.base_score".into(), Tensor::new(base, &cpu)?));
    out.push((
        "trees.tree_offsets".into(),
        Tensor::new(offsets.as_slice(), &cpu)?,
    ));
    out.push((
        "trees.tree_output".into(),
        Tensor::new(outputs.as_slice(), &cpu)?,
    ));
    out.push((
        "trees.feature".into(),
        Tensor::new(feature.as_slice(), &cpu)?,
    ));
    out.push((
        "trees.threshold".into(),
        Tensor::new(threshold.as_slice(), &cpu)?,
    ));
    out.push((
        "trees.missing_left".into(),
        Tensor::new(missing_left.as_slice(), &cpu)?,
    ));
    out.push((
        "trees.is_categorical".into(),
        Tensor::new(is_cat.as_slice(), &cpu)?,
    ));
    out.push(("trees.left".into(), Tensor::new(left.as_slice(), &cpu)?));
    out.push(("trees.right".into(), Tensor::new(right.as_slice(), &cpu)?));
    out.push(("trees.value".into(), Tensor::new(value.as_slice(), &cpu)?));
    out.push((
        "trees.categories_left".into(),
        Tensor::from_vec(cats, (nodes, 8), &cpu)?,
    ));
    out.push((
        "trees.feature_gain".into(),
        Tensor::new(feature_gain, &cpu)?,
    ));

    Ok(out)
}

fn get<'a>(t: &'a HashMap<String, Tensor>, name: &str, path: &Path) -> Result<&'a Tensor> {
    t.get(name)
        .ok_or_else(|| Error::model(format!("no tensor `{name}`; re-export the model"), path))
}

fn vec1_f64(t: &HashMap<String, Tensor>, name: &str, path: &Path) -> Result<Vec<f64>> {
    Ok(get(t, name, path)?.to_dtype(DType::F64)?.to_vec1::<f64>()?)
}

fn vec1_i64(t: &HashMap<String, Tensor>, name: &str, path: &Path) -> Result<Vec<i64>> {
    Ok(get(t, name, path)?.to_dtype(DType::I64)?.to_vec1::<i64>()?)
}

/// Rebuilds the MLP from `mlp.*` tensors.
fn mlp_from(
    t: &HashMap<String, Tensor>,
    kind: TargetKind,
    schema: &Schema,
    path: &Path,
) -> Result<Mlp> {
    let mismatch = || {
        Error::model(
            "the MLP tensors do not match the feature pipeline in config.json; re-export the model",
            path,
        )
    };
    let f32s = |name: &str| -> Result<Vec<f32>> {
        Ok(get(t, name, path)?
            .to_dtype(DType::F32)?
            .flatten_all()?
            .to_vec1::<f32>()?)
    };
    let in_dim = glm::design_dim(schema);
    let mut layers = Vec::new();
    let mut fan_in = in_dim;
    for i in 0..3 {
        let w = get(t, &format!("mlp.{}.weight", 2 * i), path)?;
        let (o, inp) = w.dims2()?;
        if inp != fan_in {
            return Err(mismatch());
        }
        let bias = f32s(&format!("mlp.{}.bias", 2 * i))?;
        if bias.len() != o {
            return Err(mismatch());
        }
        layers.push((
            w.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?,
            bias,
        ));
        fan_in = o;
    }
    let (input_mean, input_std) = (f32s("mlp.input_mean")?, f32s("mlp.input_std")?);
    let classes = match kind {
        TargetKind::Regression => 0,
        TargetKind::Classification => fan_in,
    };
    if input_mean.len() != in_dim
        || input_std.len() != in_dim
        || (kind == TargetKind::Regression && fan_in != 1)
    {
        return Err(mismatch());
    }
    let scalar = |name: &str| -> Result<f64> {
        vec1_f64(t, name, path)?
            .first()
            .copied()
            .ok_or_else(mismatch)
    };
    Ok(Mlp {
        classes,
        in_dim,
        layers,
        input_mean,
        input_std,
        target_mean: scalar("mlp.target_mean")?,
        target_std: scalar("mlp.target_std")?,
        best_epoch: 0,
        stopped_early: false,
    })
}

/// Tree ensemble parts read back from tensors: base scores, trees per round, feature gain.
type TreeParts = (Vec<f64>, Vec<Vec<Tree>>, Vec<f64>);

/// Rebuilds the trees (`k` outputs per round) from their flat node arrays.
fn trees_from(t: &HashMap<String, Tensor>, k: usize, path: &Path) -> Result<TreeParts> {
    let damaged = || {
        Error::model(
            "the tree tensors are inconsistent; re-export the model",
            path,
        )
    };
    let offsets = vec1_i64(t, "trees.tree_offsets", path)?;
    let outputs = vec1_i64(t, "trees.tree_output", path)?;
    let feature = vec1_i64(t, "trees.feature", path)?;
    let threshold = vec1_f64(t, "trees.threshold", path)?;
    let missing_left = vec1_i64(t, "trees.missing_left", path)?;
    let is_cat = vec1_i64(t, "trees.is_categorical", path)?;
    let left = vec1_i64(t, "trees.left", path)?;
    let right = vec1_i64(t, "trees.right", path)?;
    let value = vec1_f64(t, "trees.value", path)?;
    let cats = get(t, "trees.categories_left", path)?
        .to_dtype(DType::U32)?
        .flatten_all()?
        .to_vec1::<u32>()?;
    let base = vec1_f64(t, "trees.base_score", path)?;
    let feature_gain = vec1_f64(t, "trees.feature_gain", path).unwrap_or_default();
    let n = feature.len();
    if [
        threshold.len(),
        missing_left.len(),
        is_cat.len(),
        left.len(),
        right.len(),
        value.len(),
    ]
    .iter()
    .any(|&l| l != n)
        || cats.len() != n * 8
        || base.len() != k
        || outputs.len() + 1 != offsets.len()
    {
        return Err(damaged());
    }
    let mut trees: Vec<Vec<Tree>> = Vec::new();
    for (ti, w) in offsets.windows(2).enumerate() {
        let (start, end) = (w[0] as usize, w[1] as usize);
        if start > end || end > n {
            return Err(damaged());
        }
        let mut nodes = Vec::with_capacity(end - start);
        for i in start..end {
            let leaf = feature[i] < 0;
            let node_count = end - start;
            let child = |c: i64| -> Result<usize> {
                if leaf {
                    return Ok(0);
                }
                usize::try_from(c)
                    .ok()
                    .filter(|&c| c > 0 && c < node_count)
                    .ok_or_else(damaged)
            };
            let categories_left = (is_cat[i] != 0).then(|| {
                let mut set = [0u64; 4];
                for (wi, s) in set.iter_mut().enumerate() {
                    let lo = cats.get(i * 8 + wi * 2).copied().unwrap_or(0) as u64;
                    let hi = cats.get(i * 8 + wi * 2 + 1).copied().unwrap_or(0) as u64;
                    *s = lo | (hi << 32);
                }
                set
            });
            nodes.push(Node {
                feature: feature[i].max(0) as usize,
                threshold: threshold[i],
                bin_threshold: 0,
                missing_left: missing_left[i] != 0,
                categories_left,
                left: child(left[i])?,
                right: child(right[i])?,
                value: value[i],
                gain: 0.0,
                count: 0,
            });
        }
        let j = outputs.get(ti).copied().unwrap_or(0) as usize;
        if j >= k {
            return Err(damaged());
        }
        if j == 0 {
            trees.push(Vec::with_capacity(k));
        }
        trees.last_mut().ok_or_else(damaged)?.push(Tree { nodes });
    }
    Ok((base, trees, feature_gain))
}
