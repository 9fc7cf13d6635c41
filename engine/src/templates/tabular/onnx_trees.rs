//! The engine's trees (boosted or forest) as one `ai.onnx.ml` `TreeEnsembleRegressor` over the
//! feature vector: every tree adds its leaf to its output, on top of the base values. A numeric
//! split is `BRANCH_LEQ` with `nodes_missing_value_tracks_true` = the engine's learned missing
//! direction; its f64 threshold is rounded *down* to f32, so `x ≤ t` in f32 decides exactly as
//! the engine does for every f32 input. ONNX's opset 3 has no set-membership split, so a
//! categorical split (a set of codes goes left) becomes a ladder of `x ≤ c + ½` nodes over the
//! runs of consecutive codes that go the same way, each leading to a copy of the matching
//! subtree (as the Core ML export does): the same leaf for every code, exactly.
//!
//! [`ensemble_f64`] writes the same trees over a double input with double thresholds, leaf and
//! base values (`*_as_tensor` attributes): for features the graph computes in f64 (the activity
//! classifier's window statistics), so every split decides exactly as the engine's f64 one.

use crate::error::{Error, Result};
use crate::export::onnx::graph::{self, Graph};
use crate::learners::gbt_tree::Tree;

/// Most tree nodes written (categorical ladders copy subtrees; this bounds the file).
const MAX_NODES: usize = 20_000_000;

/// The flat node arrays of `TreeEnsembleRegressor`.
#[derive(Default)]
struct Arrays {
    tree_ids: Vec<i64>,
    node_ids: Vec<i64>,
    features: Vec<i64>,
    values: Vec<f32>,
    /// The thresholds as the engine holds them (f64), for [`ensemble_f64`].
    values_f64: Vec<f64>,
    modes: Vec<String>,
    true_ids: Vec<i64>,
    false_ids: Vec<i64>,
    missing_true: Vec<i64>,
    target_tree_ids: Vec<i64>,
    target_node_ids: Vec<i64>,
    target_ids: Vec<i64>,
    target_weights: Vec<f32>,
    target_weights_f64: Vec<f64>,
}

/// Writes the engine's trees as ONNX nodes.
struct Writer<'a> {
    a: Arrays,
    tree_id: i64,
    next_id: i64,
    output: i64,
    /// Per feature: the "other or missing" code of a categorical feature.
    domains: &'a [Option<usize>],
}

/// The largest f32 not above `t`: `x ≤ t` ⇔ `x ≤ floor_f32(t)` for every f32 `x`.
pub(super) fn floor_f32(t: f64) -> f32 {
    let f = t as f32;
    if f64::from(f) > t { f.next_down() } else { f }
}

impl Writer<'_> {
    fn fresh(&mut self) -> i64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// One node; `children` = (true, false) node ids.
    fn node(
        &mut self,
        id: i64,
        mode: &str,
        feature: usize,
        value: (f32, f64),
        children: (i64, i64),
        miss: bool,
    ) {
        let (t, f) = children;
        let (value, value_f64) = value;
        self.a.values_f64.push(value_f64);
        self.a.tree_ids.push(self.tree_id);
        self.a.node_ids.push(id);
        self.a.features.push(feature as i64);
        self.a.values.push(value);
        self.a.modes.push(mode.into());
        self.a.true_ids.push(t);
        self.a.false_ids.push(f);
        self.a.missing_true.push(i64::from(miss));
    }

    fn branch(
        &mut self,
        id: i64,
        feature: usize,
        value: (f32, f64),
        missing_true: bool,
    ) -> (i64, i64) {
        let (t, f) = (self.fresh(), self.fresh());
        self.node(id, "BRANCH_LEQ", feature, value, (t, f), missing_true);
        (t, f)
    }

    /// Writes engine node `i` of `tree` (and its subtree) as ONNX node `id`.
    fn emit(&mut self, tree: &Tree, i: usize, id: i64) -> Result<()> {
        if self.a.node_ids.len() > MAX_NODES {
            return Err(Error::Unsupported(format!(
                "ONNX export: the trees need more than {MAX_NODES} nodes once categorical splits are unrolled; train with fewer levels (or algorithm=linear)"
            )));
        }
        let Some(n) = tree.nodes.get(i) else {
            return Err(Error::Unsupported(
                "ONNX export: a tree refers to a node it does not have (a bug)".into(),
            ));
        };
        if n.is_leaf() {
            self.node(id, "LEAF", 0, (0.0, 0.0), (0, 0), false);
            self.a.target_tree_ids.push(self.tree_id);
            self.a.target_node_ids.push(id);
            self.a.target_ids.push(self.output);
            self.a.target_weights.push(n.value as f32);
            self.a.target_weights_f64.push(n.value);
            return Ok(());
        }
        if n.categories_left.is_none() {
            let threshold = (floor_f32(n.threshold), n.threshold);
            let (t, f) = self.branch(id, n.feature, threshold, n.missing_left);
            self.emit(tree, n.left, t)?;
            return self.emit(tree, n.right, f);
        }
        let last = self
            .domains
            .get(n.feature)
            .copied()
            .flatten()
            .unwrap_or(255);
        let mut runs: Vec<(usize, bool)> = Vec::new();
        for code in 0..=last {
            let left = n.value_goes_left(code as f64);
            match runs.last_mut() {
                Some((end, l)) if *l == left => *end = code,
                _ => runs.push((code, left)),
            }
        }
        let mut current = id;
        for (k, (end, left)) in runs.iter().enumerate() {
            let child = if *left { n.left } else { n.right };
            if k + 1 == runs.len() {
                self.emit(tree, child, current)?;
            } else {
                let half = (*end as f32 + 0.5, *end as f64 + 0.5);
                let (t, f) = self.branch(current, n.feature, half, false);
                self.emit(tree, child, t)?;
                current = f;
            }
        }
        Ok(())
    }
}

/// Adds `trees[round][output]` over `x` (float `[N, features]`, categorical columns as codes)
/// to `g`; returns the name of the float `[N, outputs]` sums (plus `base`, when given).
pub fn ensemble(
    g: &mut Graph,
    x: &str,
    trees: &[Vec<Tree>],
    outputs: usize,
    base: &[f64],
    domains: &[Option<usize>],
) -> Result<String> {
    let a = arrays(trees, outputs, domains)?;
    let mut attrs = common_attributes(&a, outputs);
    attrs.push(graph::floats("nodes_values", a.values));
    attrs.push(graph::floats("target_weights", a.target_weights));
    if !base.is_empty() {
        attrs.push(graph::floats(
            "base_values",
            base.iter().map(|&v| v as f32).collect(),
        ));
    }
    Ok(g.ml_node("TreeEnsembleRegressor", &[x], attrs))
}

/// As [`ensemble`], over a double `x` `[N, features]` (numeric features only, no categorical
/// domains): thresholds, leaf values and `base` are written as double tensors, so each split
/// compares in f64 exactly as the engine does. Returns the float `[N, outputs]` sums.
pub fn ensemble_f64(
    g: &mut Graph,
    x: &str,
    trees: &[Vec<Tree>],
    outputs: usize,
    base: &[f64],
) -> Result<String> {
    let a = arrays(trees, outputs, &[])?;
    let mut attrs = common_attributes(&a, outputs);
    attrs.push(doubles("nodes_values_as_tensor", &a.values_f64));
    attrs.push(doubles("target_weights_as_tensor", &a.target_weights_f64));
    if !base.is_empty() {
        attrs.push(doubles("base_values_as_tensor", base));
    }
    Ok(g.ml_node("TreeEnsembleRegressor", &[x], attrs))
}

/// A double tensor attribute `[values.len()]`.
fn doubles(name: &str, values: &[f64]) -> crate::export::onnx::proto::AttributeProto {
    graph::tensor(
        name,
        crate::export::onnx::proto::TensorProto {
            dims: vec![values.len() as i64],
            data_type: crate::export::onnx::proto::data_type::DOUBLE,
            raw_data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ..Default::default()
        },
    )
}

/// The attributes both forms share (structure, modes, targets; not the values).
fn common_attributes(
    a: &Arrays,
    outputs: usize,
) -> Vec<crate::export::onnx::proto::AttributeProto> {
    vec![
        graph::int("n_targets", outputs as i64),
        graph::string("aggregate_function", "SUM"),
        graph::string("post_transform", "NONE"),
        graph::ints("nodes_treeids", a.tree_ids.clone()),
        graph::ints("nodes_nodeids", a.node_ids.clone()),
        graph::ints("nodes_featureids", a.features.clone()),
        graph::strings("nodes_modes", &a.modes),
        graph::ints("nodes_truenodeids", a.true_ids.clone()),
        graph::ints("nodes_falsenodeids", a.false_ids.clone()),
        graph::ints("nodes_missing_value_tracks_true", a.missing_true.clone()),
        graph::ints("target_treeids", a.target_tree_ids.clone()),
        graph::ints("target_nodeids", a.target_node_ids.clone()),
        graph::ints("target_ids", a.target_ids.clone()),
    ]
}

/// The flat node arrays of `trees[round][output]`.
fn arrays(trees: &[Vec<Tree>], outputs: usize, domains: &[Option<usize>]) -> Result<Arrays> {
    let mut w = Writer {
        a: Arrays::default(),
        tree_id: 0,
        next_id: 0,
        output: 0,
        domains,
    };
    for (t, round) in trees.iter().enumerate() {
        for (j, tree) in round.iter().enumerate() {
            w.tree_id = (t * outputs + j) as i64;
            w.next_id = 1;
            w.output = j as i64;
            w.emit(tree, 0, 0)?;
        }
    }
    if w.a.node_ids.is_empty() {
        // No trees (zero rounds): one leaf of weight 0 per output keeps the operator valid.
        for j in 0..outputs {
            w.tree_id = j as i64;
            w.output = j as i64;
            w.node(0, "LEAF", 0, (0.0, 0.0), (0, 0), false);
            w.a.target_tree_ids.push(j as i64);
            w.a.target_node_ids.push(0);
            w.a.target_ids.push(j as i64);
            w.a.target_weights.push(0.0);
            w.a.target_weights_f64.push(0.0);
        }
    }
    Ok(w.a)
}

#[cfg(test)]
mod tests {
    use super::floor_f32;

    #[test]
    fn thresholds_round_down_so_f32_comparisons_match_f64() {
        for t in [0.1f64, -0.1, 1.0 / 3.0, 5.5, -7.25, 1e-30, 123456789.123] {
            let f = floor_f32(t);
            assert!(f64::from(f) <= t);
            assert!(f64::from(f.next_up()) > t);
        }
    }
}
