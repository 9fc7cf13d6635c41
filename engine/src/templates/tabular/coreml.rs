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
//!
//! This file writes the pipeline: the inputs, categorical mappings, feature vector and imputer,
//! and the whole model's description; `coreml_trees` writes boosted trees and forests,
//! `coreml_networks` the linear models and MLPs, `coreml_ensemble` the weighted ensemble.

use crate::data::table_schema::{ColumnKind, FeatureColumn};
use crate::error::{Error, Result};
use crate::export::coreml::spec::{self, feature};
use crate::export::coreml::{Exported, Options, Precision, meta};
use crate::templates::tabular::coreml_ensemble;
use crate::templates::tabular::coreml_networks::{design_network, linear_layers, mlp_layers};
use crate::templates::tabular::coreml_trees::{forest, trees};
use crate::templates::tabular::data::TargetKind;
use crate::templates::tabular::model::{Fitted, TabularModel};
use coreml_proto::proto::{
    CategoricalMapping, DoubleVector, FeatureDescription, FeatureVectorizer, Imputer, Model,
    Pipeline, PipelineClassifier, PipelineRegressor, StringToInt64Map, categorical_mapping,
    feature_vectorizer, imputer, model,
};
use std::collections::{BTreeMap, HashSet};
use std::path::Path;

/// Exports the table model in `model_dir` to `out`.
pub fn export(model_dir: &Path, out: &Path, options: &Options) -> Result<Exported> {
    let m = TabularModel::load(model_dir)?;
    let features = &m.schema.features;
    let label_name = m.target.clone();
    let probability_name = format!("{}Probability", m.target);
    let mut fresh = fresh_names(features, [&label_name, &probability_name])?;
    let inputs: Vec<FeatureDescription> = features.iter().map(input_of).collect();

    // Half-precision weights need specification 2; only networks over the design hold any.
    let version = if uses_design(&m.fitted) {
        options.precision.specification_version()
    } else {
        1
    };
    let mut models = Vec::new();
    let vector_feature = feature_vector(features, &inputs, version, &mut fresh, &mut models);
    // Linear models and MLPs (also as ensemble members) share one imputed feature vector.
    let imputed = uses_design(&m.fitted).then(|| {
        let vector_type = spec::array_type(&[features.len()], true);
        let imputed_feature = feature(&fresh("imputed"), "", vector_type);
        models.push(imputer_model(
            features,
            vector_feature.clone(),
            imputed_feature.clone(),
            version,
        ));
        imputed_feature
    });
    let (predictor, num_layers, kind_title, network_name) = predictor(
        &m,
        (&vector_feature, imputed.as_ref()),
        (&label_name, &probability_name),
        options.precision,
        version,
        &mut fresh,
        &mut models,
    )?;
    let predictor = Model {
        specification_version: version,
        ..predictor
    };
    models.push(predictor);
    let names = pipeline_names(&models, network_name);
    let pipeline = Pipeline { models, names };

    let metadata = meta::metadata(
        options,
        summary(&m, kind_title),
        "Unspecified (set with --license).",
        user_metadata(model_dir, &m, options)?,
    );
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

/// A source of feature names no column and no output already has (`base`, else `base_2`, …);
/// an error when a feature column is named like one of the `outputs`.
fn fresh_names(
    features: &[FeatureColumn],
    outputs: [&str; 2],
) -> Result<impl FnMut(&str) -> String + use<>> {
    let mut taken: HashSet<String> = features.iter().map(|f| f.name.clone()).collect();
    for name in outputs {
        if !taken.insert(name.to_string()) {
            return Err(Error::Unsupported(format!(
                "Core ML export: a feature column is named `{name}`, which is also an output name; rename the column"
            )));
        }
    }
    Ok(move |base: &str| {
        let mut name = base.to_string();
        let mut i = 1;
        while !taken.insert(name.clone()) {
            i += 1;
            name = format!("{base}_{i}");
        }
        name
    })
}

/// Pushes onto `models` one `CategoricalMapping` per categorical column and the
/// `FeatureVectorizer` that puts the columns into one array in the model's feature order;
/// returns that array's feature.
fn feature_vector(
    features: &[FeatureColumn],
    inputs: &[FeatureDescription],
    version: i32,
    fresh: &mut dyn FnMut(&str) -> String,
    models: &mut Vec<Model>,
) -> FeatureDescription {
    let mut vector_inputs = Vec::new();
    for (f, input) in features.iter().zip(inputs) {
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
    feature(&vector, "", vector_type)
}

/// The model that predicts from the feature vector (trees, forest) or the imputed vector
/// (linear, MLP, an ensemble's members), with its number of layers, its kind in words and its
/// name in the pipeline; a forest or an ensemble pushes the models it reads onto `models`.
fn predictor(
    m: &TabularModel,
    inputs: (&FeatureDescription, Option<&FeatureDescription>),
    outputs: (&str, &str),
    precision: Precision,
    version: i32,
    fresh: &mut dyn FnMut(&str) -> String,
    models: &mut Vec<Model>,
) -> Result<(Model, usize, &'static str, &'static str)> {
    let (vector_feature, imputed) = inputs;
    let (label_name, probability_name) = outputs;
    let design_input = || {
        imputed.cloned().ok_or_else(|| {
            Error::Unsupported("Core ML export: no imputed feature vector (a bug)".into())
        })
    };
    Ok(match &m.fitted {
        Fitted::Ensemble(e) => {
            let (predictor, layers) = coreml_ensemble::members(
                m,
                e,
                (vector_feature, imputed),
                (label_name, probability_name),
                precision,
                version,
                fresh,
                models,
            )?;
            (predictor, layers, "weighted ensemble", "ensemble")
        }
        Fitted::Trees(gbt) => {
            let predictor = trees(m, gbt, vector_feature.clone(), label_name, probability_name)?;
            (predictor, 0, "gradient-boosted trees", "")
        }
        Fitted::Forest(f) => {
            let scores = fresh("scores");
            let (predictor, layers) = forest(
                m,
                f,
                vector_feature.clone(),
                &scores,
                label_name,
                probability_name,
                models,
            )?;
            (predictor, layers, "random forest", "probabilities")
        }
        Fitted::Linear(glm) => {
            let (predictor, layers) = design_network(
                m,
                design_input()?,
                outputs,
                precision,
                version,
                |b, x, out| linear_layers(b, m, glm, x, out),
            )?;
            let title = if m.kind == TargetKind::Regression {
                "ridge regression"
            } else {
                "logistic regression"
            };
            (predictor, layers, title, "linear")
        }
        Fitted::Mlp(mlp) => {
            let (predictor, layers) = design_network(
                m,
                design_input()?,
                outputs,
                precision,
                version,
                |b, x, out| mlp_layers(b, m, mlp, x, out),
            )?;
            (predictor, layers, "MLP", "mlp")
        }
    })
}

/// The pipeline's model names: `<i>_<kind>`, the predictor's kind being `network_name`.
fn pipeline_names(models: &[Model], network_name: &str) -> Vec<String> {
    models
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
        .collect()
}

/// The user-defined metadata: provenance, columns, target, algorithm (and an ensemble's
/// members), how to pass missing values.
fn user_metadata(
    model_dir: &Path,
    m: &TabularModel,
    options: &Options,
) -> Result<BTreeMap<String, String>> {
    let features = &m.schema.features;
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
    Ok(user)
}

/// The model's short description: classifier or regressor, its kind (an ensemble's members
/// with their weights), the target and the columns.
fn summary(m: &TabularModel, kind_title: &str) -> String {
    let features = &m.schema.features;
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
    match m.kind {
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
    }
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

/// Whether the model (or a member of the ensemble) is a network over the linear models'
/// design, which reads the imputed feature vector.
fn uses_design(fitted: &Fitted) -> bool {
    match fitted {
        Fitted::Linear(_) | Fitted::Mlp(_) => true,
        Fitted::Trees(_) | Fitted::Forest(_) => false,
        Fitted::Ensemble(e) => e.members.iter().any(|m| uses_design(&m.fitted)),
    }
}
