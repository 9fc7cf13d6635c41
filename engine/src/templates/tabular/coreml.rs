//! The table models (tabular classifier and regressor) as a Core ML pipeline
//! (`PipelineClassifier` / `PipelineRegressor`, specification 1), one input per feature column,
//! named after the CSV column:
//!
//! | column kind | input | what the app passes |
//! |---|---|---|
//! | numeric | `Double` | the number; NaN when the cell is missing or unreadable |
//! | boolean | `Double` | 1 for true/yes/t/y, 0 for false/no/f/n (any case), NaN when missing |
//! | categorical | `String` | the trimmed cell text (missing → empty string) |
//!
//! 1. one `CategoricalMapping` per categorical column: level → its code, anything else (missing,
//!    unseen, rare) → the "other or missing" code, as the engine encodes it;
//! 2. a `FeatureVectorizer` puts the encoded columns into one array in the model's feature order;
//! 3. gradient-boosted trees: one `TreeEnsembleClassifier` (binary: one score and
//!    `Regression_Logistic`; multiclass: one score per class and `Classification_SoftMax`) or
//!    `TreeEnsembleRegressor`. A numeric split is `BranchOnValueLessThanEqual` with
//!    `missingValueTracksTrueChild` = the engine's learned missing direction. Core ML has no
//!    set-membership split, so a categorical split (a set of codes goes left) becomes a ladder of
//!    `x ≤ c + ½` nodes over the runs of consecutive codes that go the same way, each leading to
//!    a copy of the matching subtree: the same leaf for every code, exactly;
//! 4. linear models: an `Imputer` puts each numeric column's training median in place of NaN,
//!    then a `NeuralNetworkClassifier` / `NeuralNetworkRegressor` clips numbers into the
//!    training range (bias + `THRESHOLD` layers: spec 1 has no clip layer; ±inf become the
//!    range's ends, and level codes pass unchanged), one-hot encodes the level codes (`relu(1 − |x − level|)`, exact on whole codes), and applies the weights as two
//!    inner products (numbers, levels) → add → softmax. `GLMClassifier` is not used: it can only
//!    express one-vs-rest or binary logistic models, not the engine's multinomial softmax;
//! 5. random forests: the trees as in 3 (leaf values already divided by the number of trees)
//!    in a `TreeEnsembleRegressor`; a classifier's ensemble writes the averaged class
//!    frequencies, which a small `NeuralNetworkClassifier` turns into the engine's
//!    probabilities (`[1 − p, p]` with p clipped for two classes; else the frequencies over
//!    their total, uniform when all are 0): Lathe grows one tree per class, so they need not
//!    sum to 1 and no tree-ensemble transform normalizes them;
//! 6. MLPs: the linear models' imputer and design layers, standardized with the training mean
//!    and deviation, then inner product + ReLU layers and softmax (or the target's scale).
//!
//! Classifier outputs follow the Turi Create / Vision convention: `<target>` (the label) and
//! `<target>Probability` (label → probability); a regressor outputs `<target>` (Double).
//! `--precision fp16` stores the linear and MLP weights in half precision (spec 2); trees keep
//! their double thresholds and leaf values (Core ML has no half-precision tree ensembles).

use crate::data::table_schema::{ColumnKind, FeatureColumn};
use crate::error::{Error, Result};
use crate::export::coreml::builder::{Activation, NetworkBuilder};
use crate::export::coreml::spec::{self, feature};
use crate::export::coreml::{Exported, Options, Precision, meta};
use crate::learners::forest::{Forest, ForestKind};
use crate::learners::gbt::{Gbt, Objective};
use crate::learners::gbt_tree::Tree;
use crate::learners::glm::Glm;
use crate::learners::mlp::Mlp;
use crate::templates::tabular::coreml_ensemble;
use crate::templates::tabular::data::TargetKind;
use crate::templates::tabular::model::{Fitted, TabularModel};
use coreml_proto::proto::{
    CategoricalMapping, DoubleVector, FeatureDescription, FeatureVectorizer, Imputer, Model,
    NeuralNetworkClassifier, NeuralNetworkRegressor, Pipeline, PipelineClassifier,
    PipelineRegressor, StringToInt64Map, TreeEnsembleClassifier, TreeEnsembleParameters,
    TreeEnsemblePostEvaluationTransform, TreeEnsembleRegressor, categorical_mapping,
    feature_vectorizer, imputer, model, neural_network_classifier, tree_ensemble_classifier,
    tree_ensemble_parameters::TreeNode,
    tree_ensemble_parameters::tree_node::{EvaluationInfo, TreeNodeBehavior},
};
use std::collections::HashSet;
use std::path::Path;

/// Most tree nodes written (categorical ladders copy subtrees; this bounds the file).
const MAX_NODES: usize = 20_000_000;

/// A forest's "no class has any frequency" test: `relu(1 − BIG · total)` is 1 at a total of 0
/// and 0 from `1 / BIG` on, far below the smallest nonzero total (one row of one leaf of one
/// tree of a forest of at most 5000 trees over at most a few billion rows).
pub(super) const NO_FREQUENCY_SCALE: f32 = 1e18;

/// Epsilon of the forest's `1 / total` (Core ML reads 0 as 1e-6, which would bias it).
const INVERSE_EPSILON: f32 = 1e-30;

/// Exports the table model in `model_dir` to `out`.
pub fn export(model_dir: &Path, out: &Path, options: &Options) -> Result<Exported> {
    let m = TabularModel::load(model_dir)?;
    let features = &m.schema.features;
    let mut taken: HashSet<String> = features.iter().map(|f| f.name.clone()).collect();
    let label_name = m.target.clone();
    let probability_name = format!("{}Probability", m.target);
    for name in [&label_name, &probability_name] {
        if !taken.insert(name.clone()) {
            return Err(Error::Unsupported(format!(
                "Core ML export: a feature column is named `{name}`, which is also an output name; rename the column"
            )));
        }
    }
    let mut fresh = |base: &str| {
        let mut name = base.to_string();
        let mut i = 1;
        while !taken.insert(name.clone()) {
            i += 1;
            name = format!("{base}_{i}");
        }
        name
    };
    let inputs: Vec<FeatureDescription> = features.iter().map(input_of).collect();

    // Half-precision weights need specification 2; only networks over the design hold any.
    let version = if uses_design(&m.fitted) {
        options.precision.specification_version()
    } else {
        1
    };
    let mut models = Vec::new();
    let mut vector_inputs = Vec::new();
    for (f, input) in features.iter().zip(&inputs) {
        if f.kind == ColumnKind::Categorical {
            let code = fresh(&format!("{}.code", f.name));
            models.push(categorical_mapping(f, input.clone(), &code, version));
            vector_inputs.push(code);
        } else {
            vector_inputs.push(f.name.clone());
        }
    }
    let vector = fresh("features");
    let vector_type = spec::array_type(&[features.len()], true);
    models.push(spec::model(
        version,
        spec::description(
            vector_inputs
                .iter()
                .zip(features)
                .map(|(name, f)| {
                    let ty = if f.kind == ColumnKind::Categorical {
                        spec::int64_type()
                    } else {
                        spec::double_type()
                    };
                    feature(name, "", ty)
                })
                .collect(),
            vec![feature(&vector, "", vector_type.clone())],
        ),
        model::Type::FeatureVectorizer(FeatureVectorizer {
            input_list: vector_inputs
                .iter()
                .map(|name| feature_vectorizer::InputColumn {
                    input_column: name.clone(),
                    input_dimensions: 1,
                })
                .collect(),
        }),
    ));
    let vector_feature = feature(&vector, "", vector_type.clone());
    // Linear models and MLPs (also as ensemble members) share one imputed feature vector.
    let imputed = uses_design(&m.fitted).then(|| {
        let imputed_feature = feature(&fresh("imputed"), "", vector_type.clone());
        models.push(imputer_model(
            features,
            vector_feature.clone(),
            imputed_feature.clone(),
            version,
        ));
        imputed_feature
    });
    let design_input = || {
        imputed.clone().ok_or_else(|| {
            Error::Unsupported("Core ML export: no imputed feature vector (a bug)".into())
        })
    };
    let (predictor, num_layers, kind_title, network_name) = match &m.fitted {
        Fitted::Ensemble(e) => {
            let (predictor, layers) = coreml_ensemble::members(
                &m,
                e,
                (&vector_feature, imputed.as_ref()),
                (&label_name, &probability_name),
                options.precision,
                version,
                &mut fresh,
                &mut models,
            )?;
            (predictor, layers, "weighted ensemble", "ensemble")
        }
        Fitted::Trees(gbt) => {
            let predictor = trees(
                &m,
                gbt,
                vector_feature.clone(),
                &label_name,
                &probability_name,
            )?;
            (predictor, 0, "gradient-boosted trees", "")
        }
        Fitted::Forest(f) => {
            let scores = fresh("scores");
            let (predictor, layers) = forest(
                &m,
                f,
                vector_feature.clone(),
                &scores,
                &label_name,
                &probability_name,
                &mut models,
            )?;
            (predictor, layers, "random forest", "probabilities")
        }
        Fitted::Linear(glm) => {
            let imputed_feature = design_input()?;
            let (predictor, layers) = linear_network(
                &m,
                glm,
                imputed_feature,
                &label_name,
                &probability_name,
                options.precision,
                version,
            )?;
            let title = if m.kind == TargetKind::Regression {
                "ridge regression"
            } else {
                "logistic regression"
            };
            (predictor, layers, title, "linear")
        }
        Fitted::Mlp(mlp) => {
            let imputed_feature = design_input()?;
            let (predictor, layers) = mlp_network(
                &m,
                mlp,
                imputed_feature,
                &label_name,
                &probability_name,
                options.precision,
                version,
            )?;
            (predictor, layers, "MLP", "mlp")
        }
    };
    let predictor = Model {
        specification_version: version,
        ..predictor
    };
    models.push(predictor);

    let names: Vec<String> = models
        .iter()
        .map(|sub| match &sub.r#type {
            Some(model::Type::CategoricalMapping(_)) => "categorical_mapping",
            Some(model::Type::FeatureVectorizer(_)) => "feature_vectorizer",
            Some(model::Type::Imputer(_)) => "imputer",
            Some(
                model::Type::TreeEnsembleClassifier(_) | model::Type::TreeEnsembleRegressor(_),
            ) => "trees",
            Some(model::Type::NeuralNetwork(_)) => "member_network",
            _ => network_name,
        })
        .enumerate()
        .map(|(i, n)| format!("{i}_{n}"))
        .collect();
    let pipeline = Pipeline { models, names };

    let mut user = meta::provenance(model_dir, &m.labels, options)?;
    let columns: Vec<serde_json::Value> = features
        .iter()
        .map(|f| {
            let kind = match f.kind {
                ColumnKind::Numeric => "numeric",
                ColumnKind::Boolean => "boolean",
                ColumnKind::Categorical => "categorical",
            };
            serde_json::json!({"name": f.name, "kind": kind, "levels": f.categories.len()})
        })
        .collect();
    user.insert(
        "columns".into(),
        serde_json::to_string(&columns).unwrap_or_default(),
    );
    user.insert("target".into(), m.target.clone());
    user.insert("algorithm".into(), m.algorithm.clone());
    if let Fitted::Ensemble(e) = &m.fitted {
        let members: Vec<serde_json::Value> = e
            .members
            .iter()
            .map(|m| serde_json::json!({"algorithm": m.algorithm, "weight": m.weight}))
            .collect();
        user.insert(
            "members".into(),
            serde_json::to_string(&members).unwrap_or_default(),
        );
    }
    user.insert(
        "missing_values".into(),
        "numeric and boolean inputs: NaN; categorical inputs: an empty string (any text that is not a training level counts as missing or other)".into(),
    );
    let kind_title = match &m.fitted {
        Fitted::Ensemble(e) => format!(
            "{kind_title}: {}",
            e.members
                .iter()
                .map(|m| format!("{} × {:.2}", m.algorithm.replace('_', " "), m.weight))
                .collect::<Vec<_>>()
                .join(" + ")
        ),
        _ => kind_title.to_string(),
    };
    let what = match m.kind {
        TargetKind::Classification => format!(
            "Table classifier ({kind_title}) predicting `{}` ({} labels: {}) from {} columns, trained with Lathe.",
            m.target,
            m.labels.len(),
            meta::label_list(&m.labels),
            features.len()
        ),
        TargetKind::Regression => format!(
            "Table regressor ({kind_title}) predicting `{}` from {} columns, trained with Lathe.",
            m.target,
            features.len()
        ),
    };
    let metadata = meta::metadata(options, what, "Unspecified (set with --license).", user);
    let mut description = match m.kind {
        TargetKind::Classification => {
            spec::classifier_description(inputs, &label_name, &probability_name)
        }
        TargetKind::Regression => spec::description(
            inputs,
            vec![feature(&label_name, "Predicted value", spec::double_type())],
        ),
    };
    description.metadata = Some(metadata.message());
    let ty = match m.kind {
        TargetKind::Classification => model::Type::PipelineClassifier(PipelineClassifier {
            pipeline: Some(pipeline),
        }),
        TargetKind::Regression => model::Type::PipelineRegressor(PipelineRegressor {
            pipeline: Some(pipeline),
        }),
    };
    let whole = spec::model(version, description, ty);
    let bytes = spec::write(out, &whole)?;
    Ok(Exported {
        path: out.to_path_buf(),
        bytes,
        specification_version: version,
        num_layers,
    })
}

fn input_of(f: &FeatureColumn) -> FeatureDescription {
    match f.kind {
        ColumnKind::Numeric => feature(&f.name, "Number (NaN when missing)", spec::double_type()),
        ColumnKind::Boolean => feature(
            &f.name,
            "1 for true/yes, 0 for false/no, NaN when missing",
            spec::double_type(),
        ),
        ColumnKind::Categorical => {
            let shown: Vec<&str> = f.categories.iter().take(8).map(String::as_str).collect();
            feature(
                &f.name,
                &format!(
                    "One of: {}{} (anything else counts as missing)",
                    shown.join(", "),
                    if f.categories.len() > shown.len() {
                        ", …"
                    } else {
                        ""
                    }
                ),
                spec::string_type(),
            )
        }
    }
}

fn categorical_mapping(
    f: &FeatureColumn,
    input: FeatureDescription,
    output: &str,
    version: i32,
) -> Model {
    spec::model(
        version,
        spec::description(vec![input], vec![feature(output, "", spec::int64_type())]),
        model::Type::CategoricalMapping(CategoricalMapping {
            mapping_type: Some(categorical_mapping::MappingType::StringToInt64Map(
                StringToInt64Map {
                    map: f
                        .categories
                        .iter()
                        .enumerate()
                        .map(|(i, c)| (c.clone(), i as i64))
                        .collect(),
                },
            )),
            value_on_unknown: Some(categorical_mapping::ValueOnUnknown::Int64Value(
                f.missing_code() as i64,
            )),
        }),
    )
}

/// The tree ensemble over the feature vector.
fn trees(
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
fn forest(
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

/// The `Imputer` putting each number column's training median in place of NaN.
fn imputer_model(
    features: &[FeatureColumn],
    input: FeatureDescription,
    output: FeatureDescription,
    version: i32,
) -> Model {
    spec::model(
        version,
        spec::description(vec![input], vec![output]),
        model::Type::Imputer(Imputer {
            imputed_value: Some(imputer::ImputedValue::ImputedDoubleArray(DoubleVector {
                vector: features
                    .iter()
                    .map(|f| {
                        if f.kind == ColumnKind::Categorical {
                            0.0
                        } else {
                            f.median
                        }
                    })
                    .collect(),
            })),
            replace_value: Some(imputer::ReplaceValue::ReplaceDoubleValue(f64::NAN)),
        }),
    )
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

/// The engine's design (`glm::design`) as network layers over the imputed feature vector: the
/// numbers clipped into their training range, and the one-hot levels of the categorical codes.
struct Design {
    /// Blob of the clipped vector (one value per feature; level codes unchanged).
    clipped: String,
    /// `(feature, level, design column)` of every one-hot level, in design order.
    levels: Vec<(usize, usize, usize)>,
    /// Design column of each feature's first value.
    offsets: Vec<usize>,
    /// Design columns.
    dim: usize,
    num_features: usize,
}

impl Design {
    /// Writes the clip layers.
    fn new(b: &mut NetworkBuilder, features: &[FeatureColumn], x: &str) -> Result<Self> {
        let num_features = features.len();
        let mut offsets = Vec::with_capacity(num_features);
        let mut dim = 0;
        for f in features {
            offsets.push(dim);
            dim += match f.kind {
                ColumnKind::Categorical => f.categories.len() + 1,
                _ => 1,
            };
        }
        let levels: Vec<(usize, usize, usize)> = features
            .iter()
            .enumerate()
            .filter(|(_, f)| f.kind == ColumnKind::Categorical)
            .flat_map(|(f, feat)| {
                let off = offsets.get(f).copied().unwrap_or(0);
                (0..=feat.categories.len()).map(move |l| (f, l, off + l))
            })
            .collect();
        // Clip numbers into [min, max]: hi - max(hi - max(x, lo), 0). Level codes pass
        // unchanged (exactly: small whole numbers) through [0, other-or-missing code]; after
        // this every value is finite, so zero weights of later inner products never meet an
        // infinity.
        let (lo, hi): (Vec<f32>, Vec<f32>) = features
            .iter()
            .map(|f| match f.kind {
                ColumnKind::Categorical => (0.0, f.missing_code() as f32),
                _ => (f.min as f32, f.max.max(f.min) as f32),
            })
            .unzip();
        let neg_lo: Vec<f32> = lo.iter().map(|v| -v).collect();
        let lo_minus_hi: Vec<f32> = lo.iter().zip(&hi).map(|(l, h)| l - h).collect();
        let t = b.bias("clip.shift_lo", x, "clip.shift_lo", &neg_lo);
        let t = b.threshold("clip.max_lo", &t, "clip.max_lo", 1.0, 0.0);
        let t = b.bias("clip.shift_hi", &t, "clip.shift_hi", &lo_minus_hi);
        let t = b.threshold("clip.min_hi", &t, "clip.min_hi", -1.0, 0.0);
        let clipped = b.scale("clip", &t, "clipped", &vec![-1.0; num_features], Some(&hi))?;
        Ok(Self {
            clipped,
            levels,
            offsets,
            dim,
            num_features,
        })
    }

    /// Writes the one-hot layers (`relu(1 − |code − level|)`, exact on whole codes); `None`
    /// without categorical columns.
    fn onehot(&self, b: &mut NetworkBuilder) -> Result<Option<String>> {
        if self.levels.is_empty() {
            return Ok(None);
        }
        let n = self.levels.len();
        let mut expand = vec![0f32; n * self.num_features];
        let mut shift = vec![0f32; n];
        for (r, &(f, l, _)) in self.levels.iter().enumerate() {
            expand[r * self.num_features + f] = 1.0;
            shift[r] = -(l as f32);
        }
        let t = b.inner_product(
            "onehot.difference",
            &self.clipped,
            "onehot.difference",
            &expand,
            Some(&shift),
            (n, self.num_features),
        )?;
        let t = b.abs("onehot.abs", &t, "onehot.abs");
        let t = b.activation(
            "onehot.one_minus",
            &t,
            "onehot.one_minus",
            Activation::Linear {
                alpha: -1.0,
                beta: 1.0,
            },
        );
        Ok(Some(b.activation("onehot", &t, "onehot", Activation::Relu)))
    }
}

/// The MLP as a neural network over the imputed feature vector: the design (as the linear
/// model's), standardized with the training mean and deviation (a scale layer for the numbers,
/// one for the levels), then inner product + ReLU per hidden layer — the first one split into
/// a numbers part and a levels part, summed — and the output layer, with softmax (classes) or
/// `target_mean + target_std · output` (numbers). Returns it and its number of layers.
fn mlp_network(
    m: &TabularModel,
    mlp: &Mlp,
    input: FeatureDescription,
    label_name: &str,
    probability_name: &str,
    precision: Precision,
    version: i32,
) -> Result<(Model, usize)> {
    let mut b = NetworkBuilder::new(precision);
    let out = match m.kind {
        TargetKind::Classification => "logits",
        TargetKind::Regression => label_name,
    };
    mlp_layers(&mut b, m, mlp, &input.name, out)?;
    Ok(network_model(
        m,
        b,
        out,
        vec![input],
        label_name,
        probability_name,
        version,
    ))
}

/// The MLP's layers over the imputed feature vector `x`, writing its raw outputs (class
/// scores, or the value in the target's scale) into blob `out`.
pub(super) fn mlp_layers(
    b: &mut NetworkBuilder,
    m: &TabularModel,
    mlp: &Mlp,
    x: &str,
    out: &str,
) -> Result<()> {
    let features = &m.schema.features;
    let num_features = features.len();
    let design = Design::new(b, features, x)?;
    let mismatch = || {
        Error::Unsupported(
            "Core ML export: the MLP weights do not match the feature pipeline (a bug)".into(),
        )
    };
    let dim = design.dim;
    if dim != mlp.in_dim
        || mlp.input_mean.len() != dim
        || mlp.input_std.len() != dim
        || mlp.layers.is_empty()
    {
        return Err(mismatch());
    }
    // z = (design − mean) / std = design · (1/std) − mean/std, per design column.
    let standardize = |col: usize| {
        let mean = mlp.input_mean.get(col).copied().unwrap_or(0.0);
        let std = mlp.input_std.get(col).copied().unwrap_or(1.0);
        (1.0 / std, -mean / std)
    };
    let (mut scale_num, mut shift_num) = (vec![1f32; num_features], vec![0f32; num_features]);
    for (f, (feat, &off)) in features.iter().zip(&design.offsets).enumerate() {
        if feat.kind != ColumnKind::Categorical {
            (scale_num[f], shift_num[f]) = standardize(off);
        }
    }
    let z_num = b.scale(
        "standardize.numbers",
        &design.clipped,
        "standardized.numbers",
        &scale_num,
        Some(&shift_num),
    )?;
    let z_levels = match design.onehot(b)? {
        Some(onehot) => {
            let (scale, shift): (Vec<f32>, Vec<f32>) = design
                .levels
                .iter()
                .map(|&(_, _, col)| standardize(col))
                .unzip();
            Some(b.scale(
                "standardize.levels",
                &onehot,
                "standardized.levels",
                &scale,
                Some(&shift),
            )?)
        }
        None => None,
    };

    let last = mlp.layers.len() - 1;
    let mut h = String::new();
    let mut fan_in = dim;
    for (i, (w, bias)) in mlp.layers.iter().enumerate() {
        let width = bias.len();
        if w.len() != width * fan_in {
            return Err(mismatch());
        }
        let name = format!("mlp.{}", 2 * i);
        // A classifier's last layer writes the raw scores into `out`.
        let blob = if i == last && m.kind == TargetKind::Classification {
            out.to_string()
        } else {
            name.clone()
        };
        let pre = if i == 0 {
            // The design's columns of the first layer: numbers, then levels.
            let mut w_num = vec![0f32; width * num_features];
            for (f, (feat, &off)) in features.iter().zip(&design.offsets).enumerate() {
                if feat.kind != ColumnKind::Categorical {
                    for o in 0..width {
                        w_num[o * num_features + f] = w[o * dim + off];
                    }
                }
            }
            let numbers = format!("{name}.numbers");
            let numbers_out = if z_levels.is_some() {
                numbers.clone()
            } else {
                blob.clone()
            };
            let numbers = b.inner_product(
                &numbers,
                &z_num,
                &numbers_out,
                &w_num,
                Some(bias),
                (width, num_features),
            )?;
            match &z_levels {
                Some(z) => {
                    let n = design.levels.len();
                    let mut w_levels = vec![0f32; width * n];
                    for (r, &(_, _, col)) in design.levels.iter().enumerate() {
                        for o in 0..width {
                            w_levels[o * n + r] = w[o * dim + col];
                        }
                    }
                    let levels = format!("{name}.levels");
                    let levels =
                        b.inner_product(&levels, z, &levels, &w_levels, None, (width, n))?;
                    b.add(&name, &[&numbers, &levels], &blob)
                }
                None => numbers,
            }
        } else {
            b.inner_product(&name, &h, &blob, w, Some(bias), (width, fan_in))?
        };
        h = if i < last {
            let relu = format!("mlp.{}", 2 * i + 1);
            b.activation(&relu, &pre, &relu, Activation::Relu)
        } else {
            pre
        };
        fan_in = width;
    }
    if m.kind == TargetKind::Regression {
        if fan_in != 1 {
            return Err(mismatch());
        }
        b.scale(
            "target",
            &h,
            out,
            &[mlp.target_std as f32],
            Some(&[mlp.target_mean as f32]),
        )?;
    } else if fan_in != m.labels.len() {
        return Err(mismatch());
    }
    Ok(())
}

/// The linear model as a neural network over the imputed feature vector; returns it and its
/// number of layers.
fn linear_network(
    m: &TabularModel,
    glm: &Glm,
    input: FeatureDescription,
    label_name: &str,
    probability_name: &str,
    precision: Precision,
    version: i32,
) -> Result<(Model, usize)> {
    let mut b = NetworkBuilder::new(precision);
    let out = match m.kind {
        TargetKind::Classification => "logits",
        TargetKind::Regression => label_name,
    };
    linear_layers(&mut b, m, glm, &input.name, out)?;
    Ok(network_model(
        m,
        b,
        out,
        vec![input],
        label_name,
        probability_name,
        version,
    ))
}

/// The linear model's layers over the imputed feature vector `x`, writing its raw outputs
/// (logits, or the value) into blob `out`: the design, then two inner products (numbers,
/// levels) summed.
pub(super) fn linear_layers(
    b: &mut NetworkBuilder,
    m: &TabularModel,
    glm: &Glm,
    x: &str,
    out: &str,
) -> Result<()> {
    let features = &m.schema.features;
    let num_features = features.len();
    let outputs = glm.outputs();
    let design = Design::new(b, features, x)?;
    if design.dim != glm.dim {
        return Err(Error::Unsupported(
            "Core ML export: the linear weights do not match the feature pipeline (a bug)".into(),
        ));
    }
    let weight = |k: usize, col: usize| glm.weight.get(k * glm.dim + col).copied().unwrap_or(0.0);
    let offsets = &design.offsets;
    let clipped = design.clipped.clone();

    // Numbers: their weight columns; categorical positions get 0.
    let mut w_num = vec![0f32; outputs * num_features];
    for (f, (feat, off)) in features.iter().zip(offsets).enumerate() {
        if feat.kind != ColumnKind::Categorical {
            for k in 0..outputs {
                w_num[k * num_features + f] = weight(k, *off) as f32;
            }
        }
    }
    let bias: Vec<f32> = glm.bias.iter().map(|&v| v as f32).collect();
    // Without levels the numbers' inner product is the output.
    let numbers_out = if design.levels.is_empty() {
        out
    } else {
        "linear.numbers"
    };
    let numbers = b.inner_product(
        "linear.numbers",
        &clipped,
        numbers_out,
        &w_num,
        Some(&bias),
        (outputs, num_features),
    )?;

    // Levels: their weight columns over the one-hot codes.
    if let Some(onehot) = design.onehot(b)? {
        let levels = &design.levels;
        let n = levels.len();
        let mut w_levels = vec![0f32; outputs * n];
        for (r, &(_, _, col)) in levels.iter().enumerate() {
            for k in 0..outputs {
                w_levels[k * n + r] = weight(k, col) as f32;
            }
        }
        let by_level = b.inner_product(
            "linear.levels",
            &onehot,
            "linear.levels",
            &w_levels,
            None,
            (outputs, n),
        )?;
        b.add("linear", &[&numbers, &by_level], out);
    }
    Ok(())
}

/// The network of `b` as a classifier (softmax over `logits`) or regressor (the last layer
/// writes the predicted value); returns it and its number of layers.
fn network_model(
    m: &TabularModel,
    mut b: NetworkBuilder,
    logits: &str,
    inputs: Vec<FeatureDescription>,
    label_name: &str,
    probability_name: &str,
    version: i32,
) -> (Model, usize) {
    match m.kind {
        TargetKind::Classification => {
            b.softmax("probabilities", logits, probability_name);
            classifier_network(m, b, inputs, label_name, probability_name, version)
        }
        TargetKind::Regression => regressor_network(b, inputs, label_name, version),
    }
}

/// The network of `b`, whose layers write the class probabilities into blob
/// `probability_name`, as a `NeuralNetworkClassifier` over `inputs` with the model's labels;
/// returns it and its number of layers.
pub(super) fn classifier_network(
    m: &TabularModel,
    b: NetworkBuilder,
    inputs: Vec<FeatureDescription>,
    label_name: &str,
    probability_name: &str,
    version: i32,
) -> (Model, usize) {
    let layers = b.finish();
    let count = layers.len();
    let nn = NeuralNetworkClassifier {
        layers,
        label_probability_layer_name: probability_name.into(),
        class_labels: Some(neural_network_classifier::ClassLabels::StringClassLabels(
            spec::strings(&m.labels),
        )),
        ..Default::default()
    };
    (
        spec::model(
            version,
            spec::classifier_description(inputs, label_name, probability_name),
            model::Type::NeuralNetworkClassifier(nn),
        ),
        count,
    )
}

/// The network of `b`, whose last layer writes the predicted value into blob `label_name`, as
/// a `NeuralNetworkRegressor` over `inputs`; returns it and its number of layers.
pub(super) fn regressor_network(
    b: NetworkBuilder,
    inputs: Vec<FeatureDescription>,
    label_name: &str,
    version: i32,
) -> (Model, usize) {
    let layers = b.finish();
    let count = layers.len();
    // Core ML's validator requires a network regressor to name its prediction.
    let mut description = spec::description(
        inputs,
        vec![feature(label_name, "Predicted value", spec::double_type())],
    );
    description.predicted_feature_name = label_name.into();
    (
        spec::model(
            version,
            description,
            model::Type::NeuralNetworkRegressor(NeuralNetworkRegressor {
                layers,
                ..Default::default()
            }),
        ),
        count,
    )
}

/// Whether the model (or a member of the ensemble) is a network over the linear models'
/// design, which reads the imputed feature vector.
fn uses_design(fitted: &Fitted) -> bool {
    match fitted {
        Fitted::Linear(_) | Fitted::Mlp(_) => true,
        Fitted::Trees(_) | Fitted::Forest(_) => false,
        Fitted::Ensemble(e) => e.members.iter().any(|m| uses_design(&m.fitted)),
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
