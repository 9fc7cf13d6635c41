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
//!    express one-vs-rest or binary logistic models, not the engine's multinomial softmax.
//!
//! Classifier outputs follow the Turi Create / Vision convention: `<target>` (the label) and
//! `<target>Probability` (label → probability); a regressor outputs `<target>` (Double).
//! `--precision fp16` stores the linear model's weights in half precision (spec 2); trees keep
//! their double thresholds and leaf values (Core ML has no half-precision tree ensembles).

use crate::data::table_schema::{ColumnKind, FeatureColumn};
use crate::error::{Error, Result};
use crate::export::coreml::builder::{Activation, NetworkBuilder};
use crate::export::coreml::spec::{self, feature};
use crate::export::coreml::{Exported, Options, Precision, meta};
use crate::model::gbt::{Gbt, Objective};
use crate::model::gbt_tree::Tree;
use crate::model::glm::Glm;
use crate::task::tabular_data::TargetKind;
use crate::task::tabular_model::{Fitted, TabularModel};
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

/// Why a fitted table model cannot be exported to Core ML yet (`None`: it can).
fn not_exportable(fitted: &Fitted) -> Option<Error> {
    let kind = match fitted {
        Fitted::Trees(_) | Fitted::Linear(_) => return None,
        Fitted::Forest(_) => "random forest",
        Fitted::Mlp(_) => "MLP",
    };
    Some(Error::Unsupported(format!(
        "Core ML export of a {kind} table model is not available yet; train with --param algorithm=gbt or algorithm=linear to export Core ML (safetensors export works for every model)"
    )))
}

/// Exports the table model in `model_dir` to `out`.
pub fn export(model_dir: &Path, out: &Path, options: &Options) -> Result<Exported> {
    let m = TabularModel::load(model_dir)?;
    if let Some(e) = not_exportable(&m.fitted) {
        return Err(e);
    }
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

    let version = match (&m.fitted, options.precision) {
        (Fitted::Linear(_), p) => p.specification_version(),
        (Fitted::Trees(_) | Fitted::Forest(_) | Fitted::Mlp(_), _) => 1,
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
    let (predictor, num_layers, kind_title) = match &m.fitted {
        Fitted::Trees(gbt) => {
            let predictor = trees(&m, gbt, vector_feature, &label_name, &probability_name)?;
            (predictor, 0, "gradient-boosted trees")
        }
        Fitted::Forest(_) | Fitted::Mlp(_) => {
            return Err(not_exportable(&m.fitted).unwrap_or_else(|| {
                Error::Unsupported("Core ML export: unsupported table model".into())
            }));
        }
        Fitted::Linear(glm) => {
            let imputed = fresh("imputed");
            let imputed_feature = feature(&imputed, "", vector_type.clone());
            models.push(spec::model(
                version,
                spec::description(vec![vector_feature], vec![imputed_feature.clone()]),
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
            ));
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
            (predictor, layers, title)
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
            _ => "linear",
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
    user.insert(
        "missing_values".into(),
        "numeric and boolean inputs: NaN; categorical inputs: an empty string (any text that is not a training level counts as missing or other)".into(),
    );
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
    let outputs = gbt.objective.outputs();
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
    for (t, round) in gbt.trees.iter().enumerate() {
        for (j, tree) in round.iter().enumerate() {
            writer.tree_id = (t * outputs + j) as u64;
            writer.next_id = 1;
            writer.output = j as u64;
            writer.emit(tree, 0, 0)?;
        }
    }
    let ensemble = TreeEnsembleParameters {
        nodes: writer.nodes,
        num_prediction_dimensions: outputs as u64,
        base_prediction_value: gbt.base.clone(),
    };
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
            let (t, f) = self.branch(id, n.feature, n.threshold, n.missing_left);
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
    let features = &m.schema.features;
    let num_features = features.len();
    let outputs = glm.outputs();
    let x = input.name.clone();
    // Design offsets of each feature's columns.
    let mut offsets = Vec::with_capacity(num_features);
    let mut d = 0;
    for f in features {
        offsets.push(d);
        d += match f.kind {
            ColumnKind::Categorical => f.categories.len() + 1,
            _ => 1,
        };
    }
    if d != glm.dim {
        return Err(Error::Unsupported(
            "Core ML export: the linear weights do not match the feature pipeline (a bug)".into(),
        ));
    }
    let weight = |k: usize, col: usize| glm.weight.get(k * glm.dim + col).copied().unwrap_or(0.0);
    let mut b = NetworkBuilder::new(precision);

    // Clip numbers into [min, max]: hi - max(hi - max(x, lo), 0). Level codes pass unchanged
    // (exactly: small whole numbers) through [0, other-or-missing code]; after this every value
    // is finite, so the zero weights of the inner products below never meet an infinity.
    let (lo, hi): (Vec<f32>, Vec<f32>) = features
        .iter()
        .map(|f| match f.kind {
            ColumnKind::Categorical => (0.0, f.missing_code() as f32),
            _ => (f.min as f32, f.max.max(f.min) as f32),
        })
        .unzip();
    let neg_lo: Vec<f32> = lo.iter().map(|v| -v).collect();
    let lo_minus_hi: Vec<f32> = lo.iter().zip(&hi).map(|(l, h)| l - h).collect();
    let t = b.bias("clip.shift_lo", &x, "clip.shift_lo", &neg_lo);
    let t = b.threshold("clip.max_lo", &t, "clip.max_lo", 1.0, 0.0);
    let t = b.bias("clip.shift_hi", &t, "clip.shift_hi", &lo_minus_hi);
    let t = b.threshold("clip.min_hi", &t, "clip.min_hi", -1.0, 0.0);
    let clipped = b.scale("clip", &t, "clipped", &vec![-1.0; num_features], Some(&hi))?;

    // Numbers: their weight columns; categorical positions get 0.
    let mut w_num = vec![0f32; outputs * num_features];
    for (f, (feat, off)) in features.iter().zip(&offsets).enumerate() {
        if feat.kind != ColumnKind::Categorical {
            for k in 0..outputs {
                w_num[k * num_features + f] = weight(k, *off) as f32;
            }
        }
    }
    let bias: Vec<f32> = glm.bias.iter().map(|&v| v as f32).collect();
    let numbers = b.inner_product(
        "linear.numbers",
        &clipped,
        "linear.numbers",
        &w_num,
        Some(&bias),
        (outputs, num_features),
    )?;

    // Levels: one-hot of each categorical code, then their weight columns.
    let levels: Vec<(usize, usize, usize)> = features
        .iter()
        .enumerate()
        .filter(|(_, f)| f.kind == ColumnKind::Categorical)
        .flat_map(|(f, feat)| {
            let off = offsets.get(f).copied().unwrap_or(0);
            (0..=feat.categories.len()).map(move |l| (f, l, off + l))
        })
        .collect();
    let logits = if levels.is_empty() {
        numbers
    } else {
        let n = levels.len();
        let mut expand = vec![0f32; n * num_features];
        let mut shift = vec![0f32; n];
        let mut w_levels = vec![0f32; outputs * n];
        for (r, &(f, l, col)) in levels.iter().enumerate() {
            expand[r * num_features + f] = 1.0;
            shift[r] = -(l as f32);
            for k in 0..outputs {
                w_levels[k * n + r] = weight(k, col) as f32;
            }
        }
        let t = b.inner_product(
            "onehot.difference",
            &clipped,
            "onehot.difference",
            &expand,
            Some(&shift),
            (n, num_features),
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
        let onehot = b.activation("onehot", &t, "onehot", Activation::Relu);
        let by_level = b.inner_product(
            "linear.levels",
            &onehot,
            "linear.levels",
            &w_levels,
            None,
            (outputs, n),
        )?;
        let out = if m.kind == TargetKind::Regression {
            label_name.to_string()
        } else {
            "logits".to_string()
        };
        b.add("linear", &[&numbers, &by_level], &out)
    };
    let model = match m.kind {
        TargetKind::Classification => {
            b.softmax("probabilities", &logits, probability_name);
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
                    spec::classifier_description(vec![input], label_name, probability_name),
                    model::Type::NeuralNetworkClassifier(nn),
                ),
                count,
            )
        }
        TargetKind::Regression => {
            let mut layers = b.finish();
            // Without levels the inner product itself is the output.
            if let Some(last) = layers.last_mut()
                && last.output.first().is_some_and(|o| o != label_name)
            {
                last.output = vec![label_name.to_string()];
            }
            let count = layers.len();
            (
                spec::model(
                    version,
                    spec::description(
                        vec![input],
                        vec![feature(label_name, "Predicted value", spec::double_type())],
                    ),
                    model::Type::NeuralNetworkRegressor(NeuralNetworkRegressor {
                        layers,
                        ..Default::default()
                    }),
                ),
                count,
            )
        }
    };
    Ok(model)
}
