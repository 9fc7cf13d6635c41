//! Linear models and MLPs in the table models' Core ML pipeline: the engine's design (numbers
//! clipped into their training range, one-hot levels) as network layers over the imputed
//! feature vector, then the linear weights or the MLP's layers, as a
//! `NeuralNetworkClassifier` / `NeuralNetworkRegressor`. `coreml.rs` describes the whole
//! pipeline.

use crate::data::table_schema::{ColumnKind, FeatureColumn};
use crate::error::{Error, Result};
use crate::export::coreml::Precision;
use crate::export::coreml::builder::{Activation, NetworkBuilder};
use crate::export::coreml::spec::{self, feature};
use crate::learners::glm::Glm;
use crate::learners::mlp::Mlp;
use crate::templates::tabular::data::TargetKind;
use crate::templates::tabular::model::TabularModel;
use coreml_proto::proto::{
    FeatureDescription, Model, NeuralNetworkClassifier, NeuralNetworkRegressor, model,
    neural_network_classifier,
};

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

/// A linear model or an MLP as a neural network over the imputed feature vector `input`:
/// `layers(builder, input, out)` writes its raw outputs into blob `out`, then softmax
/// (classes) or nothing (the value is the output). Returns it and its number of layers.
pub(super) fn design_network(
    m: &TabularModel,
    input: FeatureDescription,
    (label_name, probability_name): (&str, &str),
    precision: Precision,
    version: i32,
    layers: impl FnOnce(&mut NetworkBuilder, &str, &str) -> Result<()>,
) -> Result<(Model, usize)> {
    let mut b = NetworkBuilder::new(precision);
    let out = match m.kind {
        TargetKind::Classification => "logits",
        TargetKind::Regression => label_name,
    };
    layers(&mut b, &input.name, out)?;
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
/// scores, or the value in the target's scale) into blob `out`: the design (as the linear
/// model's), standardized with the training mean and deviation (a scale layer for the numbers,
/// one for the levels), then inner product + ReLU per hidden layer — the first one split into
/// a numbers part and a levels part, summed — and the output layer (for numbers,
/// `target_mean + target_std · output`).
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
