//! Boosted trees and random forests in the table models' Core ML pipeline: the engine's trees
//! as `TreeEnsembleClassifier` / `TreeEnsembleRegressor` nodes (categorical splits unrolled
//! into ladders, double thresholds that split as the engine's f32 reading does) and the small
//! network that turns a forest classifier's averaged frequencies into the engine's
//! probabilities. `coreml.rs` describes the whole pipeline.

use crate::data::table_schema::ColumnKind;
use crate::error::{Error, Result};
use crate::export::coreml::Precision;
use crate::export::coreml::builder::{Activation, NetworkBuilder};
use crate::export::coreml::spec::{self, feature};
use crate::learners::forest::{Forest, ForestKind};
use crate::learners::gbt::{Gbt, Objective};
use crate::learners::gbt_tree::Tree;
use crate::templates::tabular::coreml_networks::classifier_network;
use crate::templates::tabular::model::TabularModel;
use coreml_proto::proto::{
    FeatureDescription, Model, TreeEnsembleClassifier, TreeEnsembleParameters,
    TreeEnsemblePostEvaluationTransform, TreeEnsembleRegressor, model, tree_ensemble_classifier,
    tree_ensemble_parameters::TreeNode,
    tree_ensemble_parameters::tree_node::{EvaluationInfo, TreeNodeBehavior},
};

/// Most tree nodes written (categorical ladders copy subtrees; this bounds the file).
const MAX_NODES: usize = 20_000_000;

/// A forest's "no class has any frequency" test: `relu(1 − BIG · total)` is 1 at a total of 0
/// and 0 from `1 / BIG` on, far below the smallest nonzero total (one row of one leaf of one
/// tree of a forest of at most 5000 trees over at most a few billion rows).
const NO_FREQUENCY_SCALE: f32 = 1e18;

/// Epsilon of the forest's `1 / total` (Core ML reads 0 as 1e-6, which would bias it).
const INVERSE_EPSILON: f32 = 1e-30;

/// The tree ensemble over the feature vector.
pub(super) fn trees(
    m: &TabularModel,
    gbt: &Gbt,
    input: FeatureDescription,
    label_name: &str,
    probability_name: &str,
) -> Result<Model> {
    let ensemble = ensemble(m, &gbt.trees, gbt.objective.outputs(), gbt.base.clone())?;
    Ok(match gbt.objective {
        Objective::Regression => spec::model(
            1,
            spec::description(
                vec![input],
                vec![feature(label_name, "Predicted value", spec::double_type())],
            ),
            model::Type::TreeEnsembleRegressor(TreeEnsembleRegressor {
                tree_ensemble: Some(ensemble),
                post_evaluation_transform: TreeEnsemblePostEvaluationTransform::NoTransform as i32,
            }),
        ),
        Objective::Binary | Objective::Multiclass { .. } => {
            let transform = if gbt.objective == Objective::Binary {
                TreeEnsemblePostEvaluationTransform::RegressionLogistic
            } else {
                TreeEnsemblePostEvaluationTransform::ClassificationSoftMax
            };
            spec::model(
                1,
                spec::classifier_description(vec![input], label_name, probability_name),
                model::Type::TreeEnsembleClassifier(TreeEnsembleClassifier {
                    tree_ensemble: Some(ensemble),
                    post_evaluation_transform: transform as i32,
                    class_labels: Some(tree_ensemble_classifier::ClassLabels::StringClassLabels(
                        spec::strings(&m.labels),
                    )),
                }),
            )
        }
    })
}

/// `trees[round][output]` as Core ML tree-ensemble parameters: every tree adds its leaf to its
/// output, on top of `base`.
pub(super) fn ensemble(
    m: &TabularModel,
    trees: &[Vec<Tree>],
    outputs: usize,
    base: Vec<f64>,
) -> Result<TreeEnsembleParameters> {
    let domains: Vec<Option<usize>> = m
        .schema
        .features
        .iter()
        .map(|f| (f.kind == ColumnKind::Categorical).then(|| f.missing_code()))
        .collect();
    let mut writer = TreeWriter {
        nodes: Vec::new(),
        tree_id: 0,
        next_id: 0,
        output: 0,
        domains: &domains,
    };
    for (t, round) in trees.iter().enumerate() {
        for (j, tree) in round.iter().enumerate() {
            writer.tree_id = (t * outputs + j) as u64;
            writer.next_id = 1;
            writer.output = j as u64;
            writer.emit(tree, 0, 0)?;
        }
    }
    Ok(TreeEnsembleParameters {
        nodes: writer.nodes,
        num_prediction_dimensions: outputs as u64,
        base_prediction_value: base,
    })
}

/// The random forest over the feature vector. A regressor is one `TreeEnsembleRegressor` (the
/// leaf values are already divided by the number of trees, so the sum is the forest's average).
/// A classifier's trees sum into `scores` (class frequencies averaged over the trees; one per
/// class, or the frequency of the second class for two), which a small network turns into the
/// engine's probabilities; the tree ensemble is pushed onto `models` and the network returned,
/// with its number of layers.
pub(super) fn forest(
    m: &TabularModel,
    f: &Forest,
    input: FeatureDescription,
    scores: &str,
    label_name: &str,
    probability_name: &str,
    models: &mut Vec<Model>,
) -> Result<(Model, usize)> {
    let outputs = f.kind.outputs();
    let ensemble = ensemble(m, &f.trees, outputs, Vec::new())?;
    let classes = match f.kind {
        ForestKind::Regression => {
            let model = spec::model(
                1,
                spec::description(
                    vec![input],
                    vec![feature(label_name, "Predicted value", spec::double_type())],
                ),
                model::Type::TreeEnsembleRegressor(TreeEnsembleRegressor {
                    tree_ensemble: Some(ensemble),
                    post_evaluation_transform: TreeEnsemblePostEvaluationTransform::NoTransform
                        as i32,
                }),
            );
            return Ok((model, 0));
        }
        ForestKind::Classification { classes } => classes,
    };
    if m.labels.len() != classes.max(2) {
        return Err(Error::Unsupported(
            "Core ML export: the forest's classes do not match the labels (a bug)".into(),
        ));
    }
    let scores_feature = feature(scores, "", spec::array_type(&[outputs], true));
    models.push(raw_trees_model(ensemble, input, scores_feature.clone()));
    let mut b = NetworkBuilder::new(Precision::Fp32);
    forest_probabilities(&mut b, "forest", scores, outputs, probability_name)?;
    Ok(classifier_network(
        m,
        b,
        vec![scores_feature],
        label_name,
        probability_name,
        1,
    ))
}

/// A `TreeEnsembleRegressor` writing the trees' raw sums (no transform) into `output`, an
/// array of `numPredictionDimensions` values: a forest's averaged frequencies or values, or
/// (base included) boosting's scores.
pub(super) fn raw_trees_model(
    ensemble: TreeEnsembleParameters,
    input: FeatureDescription,
    output: FeatureDescription,
) -> Model {
    spec::model(
        1,
        spec::description(vec![input], vec![output]),
        model::Type::TreeEnsembleRegressor(TreeEnsembleRegressor {
            tree_ensemble: Some(ensemble),
            post_evaluation_transform: TreeEnsemblePostEvaluationTransform::NoTransform as i32,
        }),
    )
}

/// Layers turning a forest classifier's averaged class frequencies (blob `scores`, `outputs`
/// values) into the engine's probabilities (`forest::probabilities`) in blob `out`: `[1 − p, p]`
/// with p clipped into [0, 1] for one output; else the frequencies clipped at 0 over their
/// total, uniform when every one is 0. Layer and blob names start with `prefix`.
pub(super) fn forest_probabilities(
    b: &mut NetworkBuilder,
    prefix: &str,
    scores: &str,
    outputs: usize,
    out: &str,
) -> Result<()> {
    let n = |s: &str| format!("{prefix}.{s}");
    let nonneg = b.activation(&n("clip.low"), scores, &n("clip.low"), Activation::Relu);
    if outputs == 1 {
        // [1 − p, p] with p clipped into [0, 1]: q = relu(1 − relu(x)) = 1 − p.
        let t = b.activation(
            &n("one_minus"),
            &nonneg,
            &n("one_minus"),
            Activation::Linear {
                alpha: -1.0,
                beta: 1.0,
            },
        );
        let q = b.activation(&n("first_class"), &t, &n("first_class"), Activation::Relu);
        b.inner_product(
            &n("probabilities"),
            &q,
            out,
            &[1.0, -1.0],
            Some(&[0.0, 1.0]),
            (2, 1),
        )?;
    } else {
        // The frequencies over their total, or uniform when every one is 0:
        // (c + u/K) / (total + u) with u = 1 exactly when the total is 0, else 0.
        let k = outputs;
        let total = b.inner_product(
            &n("total"),
            &nonneg,
            &n("total"),
            &vec![1.0; k * k],
            None,
            (k, k),
        )?;
        let t = b.activation(
            &n("none.scaled"),
            &total,
            &n("none.scaled"),
            Activation::Linear {
                alpha: -NO_FREQUENCY_SCALE,
                beta: 1.0,
            },
        );
        let none = b.activation(&n("none"), &t, &n("none"), Activation::Relu);
        let uniform = b.activation(
            &n("uniform"),
            &none,
            &n("uniform"),
            Activation::Linear {
                alpha: 1.0 / k as f32,
                beta: 0.0,
            },
        );
        let numerator = b.add(&n("numerator"), &[&nonneg, &uniform], &n("numerator"));
        let denominator = b.add(&n("denominator"), &[&total, &none], &n("denominator"));
        let inverse = b.inverse(&n("inverse"), &denominator, &n("inverse"), INVERSE_EPSILON);
        b.multiply(&n("probabilities"), &[&numerator, &inverse], out);
    }
    Ok(())
}

/// Writes the engine's trees as Core ML tree nodes.
struct TreeWriter<'a> {
    nodes: Vec<TreeNode>,
    tree_id: u64,
    next_id: u64,
    /// Prediction dimension the current tree adds to.
    output: u64,
    /// Per feature: the largest code of a categorical feature (its "other or missing" code).
    domains: &'a [Option<usize>],
}

/// The threshold a Core ML tree needs on a **double** input to split as the engine does: the
/// engine reads a cell as f32 and sends `x ≤ t` left, so a double `d` goes left exactly when it
/// rounds (to nearest, ties to even) to an f32 at or below `t`. That is `d ≤` the midpoint
/// between the largest f32 at or below `t` and the next f32 — or just below the midpoint when a
/// tie would round up. (`0.8429` typed in an app is above `f32(0.8429)`, which a split may sit
/// on exactly: the plain threshold would send it right.)
pub(super) fn double_threshold(t: f64) -> f64 {
    let low = super::onnx_trees::floor_f32(t);
    let high = low.next_up();
    if !low.is_finite() || !high.is_finite() {
        return t;
    }
    let mid = (f64::from(low) + f64::from(high)) / 2.0;
    if low.to_bits() % 2 == 0 {
        mid
    } else {
        mid.next_down()
    }
}

impl TreeWriter<'_> {
    fn fresh(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    fn branch(&mut self, id: u64, feature: usize, value: f64, missing_true: bool) -> (u64, u64) {
        let (t, f) = (self.fresh(), self.fresh());
        self.nodes.push(TreeNode {
            tree_id: self.tree_id,
            node_id: id,
            node_behavior: TreeNodeBehavior::BranchOnValueLessThanEqual as i32,
            branch_feature_index: feature as u64,
            branch_feature_value: value,
            true_child_node_id: t,
            false_child_node_id: f,
            missing_value_tracks_true_child: missing_true,
            ..Default::default()
        });
        (t, f)
    }

    /// Writes engine node `i` of `tree` (and its subtree) as Core ML node `id`.
    fn emit(&mut self, tree: &Tree, i: usize, id: u64) -> Result<()> {
        if self.nodes.len() > MAX_NODES {
            return Err(Error::Unsupported(format!(
                "Core ML export: the trees need more than {MAX_NODES} nodes once categorical splits are unrolled; train with fewer levels (or algorithm=linear)"
            )));
        }
        let Some(n) = tree.nodes.get(i) else {
            return Err(Error::Unsupported(
                "Core ML export: a tree refers to a node it does not have (a bug)".into(),
            ));
        };
        if n.is_leaf() {
            self.nodes.push(TreeNode {
                tree_id: self.tree_id,
                node_id: id,
                node_behavior: TreeNodeBehavior::LeafNode as i32,
                evaluation_info: vec![EvaluationInfo {
                    evaluation_index: self.output,
                    evaluation_value: n.value,
                }],
                ..Default::default()
            });
            return Ok(());
        }
        if n.categories_left.is_none() {
            let threshold = double_threshold(n.threshold);
            let (t, f) = self.branch(id, n.feature, threshold, n.missing_left);
            self.emit(tree, n.left, t)?;
            return self.emit(tree, n.right, f);
        }
        // A set split: runs of consecutive codes that go the same way, as a ladder.
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
                let (t, f) = self.branch(current, n.feature, *end as f64 + 0.5, false);
                self.emit(tree, child, t)?;
                current = f;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::double_threshold;

    /// Every double near a split goes the way its f32 reading goes in the engine.
    #[test]
    fn double_thresholds_split_as_the_f32_engine_does() {
        for t in [
            0.8429f64,
            f64::from(0.8429f32),
            -3.25,
            0.0,
            1e-3,
            123_456.79,
            -0.1,
        ] {
            let b = double_threshold(t);
            let mut d = f64::from(super::super::onnx_trees::floor_f32(t));
            let step = f64::from((d as f32).next_up()) - d;
            d -= 2.0 * step;
            while d < f64::from(t as f32) + 2.0 * step {
                let engine = f64::from(d as f32) <= t;
                assert_eq!(d <= b, engine, "t = {t}, d = {d}, boundary {b}");
                d += step / 64.0;
            }
            // The exact neighbours of the boundary.
            for d in [b, b.next_up(), b.next_down()] {
                assert_eq!(d <= b, f64::from(d as f32) <= t, "t = {t}, d = {d}");
            }
        }
    }
}
