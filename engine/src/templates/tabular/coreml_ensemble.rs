//! The weighted ensemble (and a bagged model, an ensemble of fold models) in the table models'
//! Core ML pipeline (`coreml.rs` writes the inputs, categorical mappings, feature vector and the
//! shared imputer; this file the rest). A Core ML pipeline lets every model read any earlier
//! model's output, so:
//!
//! 1. every member writes its **raw outputs** to a feature of its own (`member<i>.raw`, an
//!    array): boosted trees and forests as a `TreeEnsembleRegressor` over the feature vector
//!    with `numPredictionDimensions` = outputs and no transform (boosting's scores with the
//!    base score, a forest's averaged class frequencies or values); linear models and MLPs as a
//!    `NeuralNetwork` over the imputed vector (the same layers as a single model's export, up
//!    to the logits or the value);
//! 2. one last `NeuralNetworkClassifier` / `NeuralNetworkRegressor` reads every member's raw
//!    outputs and turns each into probabilities exactly as the engine does
//!    (`model.rs::probabilities_of`): a sigmoid and `[1 − p, p]` for binary boosted trees,
//!    softmax for multiclass trees, linear models and MLPs, the forest's clip or
//!    `max(·, 0) / total` normalization; scales them by the member's weight and sums them into
//!    the probabilities (or the weighted sum of the values for a regressor).

use crate::error::{Error, Result};
use crate::export::coreml::Precision;
use crate::export::coreml::builder::{Activation, NetworkBuilder};
use crate::export::coreml::spec::{self, feature};
use crate::learners::forest::ForestKind;
use crate::learners::gbt::Objective;
use crate::templates::tabular::coreml_networks::{
    classifier_network, linear_layers, mlp_layers, regressor_network,
};
use crate::templates::tabular::coreml_trees::{
    ensemble as tree_parameters, forest_probabilities, raw_trees_model,
};
use crate::templates::tabular::data::TargetKind;
use crate::templates::tabular::model::{Ensemble, Fitted, TabularModel};
use coreml_proto::proto::{FeatureDescription, Model, NeuralNetwork, model};

/// Pushes every member's model onto `models` (after the pipeline's feature models) and
/// returns the last model, which weights and sums the members' outputs, with its number of
/// layers. `inputs` are the feature vector and the imputed vector (present when a member is a
/// linear model or an MLP); `outputs` the label and probability names.
#[allow(clippy::too_many_arguments)]
pub(super) fn members(
    m: &TabularModel,
    e: &Ensemble,
    inputs: (&FeatureDescription, Option<&FeatureDescription>),
    outputs: (&str, &str),
    precision: Precision,
    version: i32,
    fresh: &mut dyn FnMut(&str) -> String,
    models: &mut Vec<Model>,
) -> Result<(Model, usize)> {
    let (vector, imputed) = inputs;
    let (label_name, probability_name) = outputs;
    if e.members.is_empty() {
        return Err(Error::Unsupported(
            "Core ML export: the ensemble has no members (a bug)".into(),
        ));
    }
    let mut raws = Vec::with_capacity(e.members.len());
    for (i, member) in e.members.iter().enumerate() {
        let raw_name = fresh(&format!("member{i}.raw"));
        let width = raw_width(&member.fitted)?;
        let raw = feature(&raw_name, "", spec::array_type(&[width], true));
        let model = match &member.fitted {
            Fitted::Trees(g) => raw_trees_model(
                tree_parameters(m, &g.trees, width, g.base.clone())?,
                vector.clone(),
                raw.clone(),
            ),
            Fitted::Forest(f) => raw_trees_model(
                tree_parameters(m, &f.trees, width, Vec::new())?,
                vector.clone(),
                raw.clone(),
            ),
            Fitted::Linear(_) | Fitted::Mlp(_) => {
                let imputed = imputed.ok_or_else(|| {
                    Error::Unsupported(
                        "Core ML export: no imputed feature vector for a network member (a bug)"
                            .into(),
                    )
                })?;
                let mut b = NetworkBuilder::new(precision);
                match &member.fitted {
                    Fitted::Linear(glm) => linear_layers(&mut b, m, glm, &imputed.name, &raw_name)?,
                    Fitted::Mlp(mlp) => mlp_layers(&mut b, m, mlp, &imputed.name, &raw_name)?,
                    _ => {}
                }
                spec::model(
                    version,
                    spec::description(vec![imputed.clone()], vec![raw.clone()]),
                    model::Type::NeuralNetwork(NeuralNetwork {
                        layers: b.finish(),
                        ..Default::default()
                    }),
                )
            }
            Fitted::Ensemble(_) => return Err(nested()),
        };
        models.push(Model {
            specification_version: version,
            ..model
        });
        raws.push(raw);
    }
    combine(m, e, raws, label_name, probability_name, version)
}

fn nested() -> Error {
    Error::Unsupported("Core ML export: an ensemble member is itself an ensemble (a bug)".into())
}

/// Values a member writes: its raw outputs per row.
fn raw_width(fitted: &Fitted) -> Result<usize> {
    Ok(match fitted {
        Fitted::Trees(g) => g.objective.outputs(),
        Fitted::Forest(f) => f.kind.outputs(),
        Fitted::Linear(glm) => glm.outputs(),
        Fitted::Mlp(mlp) => mlp.outputs(),
        Fitted::Ensemble(_) => return Err(nested()),
    })
}

/// The last model: each member's raw outputs (`raws`, in member order) → its probabilities
/// (classifier) → × its weight → summed into the probabilities, or the value (regressor).
fn combine(
    m: &TabularModel,
    e: &Ensemble,
    raws: Vec<FeatureDescription>,
    label_name: &str,
    probability_name: &str,
    version: i32,
) -> Result<(Model, usize)> {
    let out = match m.kind {
        TargetKind::Classification => probability_name,
        TargetKind::Regression => label_name,
    };
    let classes = m.labels.len();
    let single = e.members.len() == 1;
    let mut b = NetworkBuilder::new(Precision::Fp32);
    let mut weighted = Vec::with_capacity(raws.len());
    for (i, (member, raw)) in e.members.iter().zip(&raws).enumerate() {
        let w = member.weight as f32;
        let name = format!("member{i}");
        let n = |s: &str| format!("{name}.{s}");
        // One member alone writes the output itself.
        let target = if single {
            out.to_string()
        } else {
            n("weighted")
        };
        let x = raw.name.as_str();
        let scaled = |b: &mut NetworkBuilder, input: &str| {
            b.activation(
                &n("weighted"),
                input,
                &target,
                Activation::Linear {
                    alpha: w,
                    beta: 0.0,
                },
            )
        };
        match (m.kind, &member.fitted) {
            (_, Fitted::Ensemble(_)) => return Err(nested()),
            (TargetKind::Regression, _) => {
                scaled(&mut b, x);
            }
            (TargetKind::Classification, Fitted::Trees(g)) if g.objective == Objective::Binary => {
                // w · [1 − σ(s), σ(s)] as one inner product over σ(s).
                let p = b.activation(&n("sigmoid"), x, &n("sigmoid"), Activation::Sigmoid);
                b.inner_product(
                    &n("weighted"),
                    &p,
                    &target,
                    &[-w, w],
                    Some(&[w, 0.0]),
                    (2, 1),
                )?;
            }
            (TargetKind::Classification, Fitted::Forest(f)) => {
                let ForestKind::Classification { classes: k } = f.kind else {
                    return Err(mismatch());
                };
                if k.max(2) != classes {
                    return Err(mismatch());
                }
                forest_probabilities(
                    &mut b,
                    &n("forest"),
                    x,
                    f.kind.outputs(),
                    &n("probabilities"),
                )?;
                scaled(&mut b, &n("probabilities"));
            }
            (TargetKind::Classification, fitted) => {
                if raw_width(fitted)? != classes {
                    return Err(mismatch());
                }
                let p = b.softmax(&n("softmax"), x, &n("probabilities"));
                scaled(&mut b, &p);
            }
        }
        weighted.push(target);
    }
    if !single {
        let refs: Vec<&str> = weighted.iter().map(String::as_str).collect();
        b.add("ensemble", &refs, out);
    }
    Ok(match m.kind {
        TargetKind::Classification => {
            classifier_network(m, b, raws, label_name, probability_name, version)
        }
        TargetKind::Regression => regressor_network(b, raws, label_name, version),
    })
}

fn mismatch() -> Error {
    Error::Unsupported(
        "Core ML export: an ensemble member's outputs do not match the labels (a bug)".into(),
    )
}
