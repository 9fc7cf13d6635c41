//! The activity CNN as one Core ML `NeuralNetworkClassifier`: the input `windowData` is one
//! prediction window, an MLMultiArray `[1, prediction_window, channels]` (the samples in time
//! order, one row per sample, the columns in the order of the metadata's `columns`; the leading
//! 1 is the channel axis Core ML's neural networks need for a rank-3 input). Layers: a permute
//! to `[channels, 1, window]`, the standardization (bias −mean, scale 1/std per channel), the
//! three convolutions as 1×5 convolutions with ReLU, the global average over time, the linear
//! classifier and a softmax. Specification version 1 (2 with fp16 weights).
//!
//! The boosted-trees model is not exported to Core ML: its features (per-window statistics) are
//! no standard layers, and asking says so and what works.

use super::cnn::{KERNEL, STRIDES};
use super::model::{ActivityModel, ActivityNet};
use crate::error::{Error, Result};
use crate::export::coreml::builder::{Activation, Conv2d, GlobalPool, NetworkBuilder};
use crate::export::coreml::spec::{self, ClassifierSpec, feature};
use crate::export::coreml::{Exported, Options, meta};
use crate::task::Model;
use candle_core::{Device, Tensor};
use coreml_proto::proto::{PermuteLayerParams, neural_network_layer::Layer};
use std::path::Path;

/// Name of the window input.
pub const INPUT: &str = "windowData";
/// Name of the top-label output.
pub const LABEL_OUTPUT: &str = "label";
/// Name of the probabilities output.
pub const PROBABILITY_OUTPUT: &str = "labelProbability";

fn values(t: &Tensor) -> Result<Vec<f32>> {
    Ok(t.flatten_all()?
        .to_dtype(candle_core::DType::F32)?
        .to_vec1()?)
}

/// Exports the activity classifier in `model_dir` to `out`.
pub fn export(model_dir: &Path, out: &Path, options: &Options) -> Result<Exported> {
    let model = ActivityModel::load(model_dir, &Device::Cpu)?;
    let net = match &model.net {
        ActivityNet::Cnn(net) => net,
        ActivityNet::Trees(_) => {
            return Err(Error::Unsupported(
                "Core ML export of the activity classifier's statistics + boosted-trees model is not available; export it as safetensors (--format safetensors), or train with --param algorithm=cnn for a Core ML model".into(),
            ));
        }
    };
    let (w, c) = (model.window, model.columns.len());
    let labels = model.labels().to_vec();
    let mut b = NetworkBuilder::new(options.precision);
    let x = b.push(
        "window.channels_first",
        &[INPUT],
        "window.channels_first",
        Layer::Permute(PermuteLayerParams {
            axis: vec![0, 3, 1, 2],
        }),
    );
    let neg_mean: Vec<f32> = values(&net.mean)?.iter().map(|m| -m).collect();
    let x = b.bias("standardize.mean", &x, "standardize.mean", &neg_mean);
    let mut x = b.scale(
        "standardize.std",
        &x,
        "standardize.std",
        &values(&net.inv_std)?,
        None,
    )?;
    let mut c_in = c;
    for (i, (conv, &stride)) in net.convs.iter().zip(&STRIDES).enumerate() {
        let weight = values(conv.weight())?;
        let bias = match conv.bias() {
            Some(b) => values(b)?,
            None => Vec::new(),
        };
        let c_out = conv.weight().dims().first().copied().unwrap_or(0);
        let name = format!("features.{i}");
        let spec = Conv2d {
            weight: &weight,
            shape: [c_out, c_in, 1, KERNEL],
            bias: (!bias.is_empty()).then_some(bias.as_slice()),
            stride,
            groups: 1,
            padding: ((0, 0), (KERNEL / 2, KERNEL / 2)),
        };
        x = b.conv(&name, &x, &name, &spec)?;
        x = b.activation(
            &format!("{name}.relu"),
            &x,
            &format!("{name}.relu"),
            Activation::Relu,
        );
        c_in = c_out;
    }
    let pooled = b.global_pool("pool", &x, "pool", GlobalPool::Average);
    let lw = values(net.classifier.weight())?;
    let lb = match net.classifier.bias() {
        Some(t) => values(t)?,
        None => vec![0.0; labels.len()],
    };
    let logits = b.inner_product(
        "classifier",
        &pooled,
        "logits",
        &lw,
        Some(&lb),
        (labels.len(), c_in),
    )?;
    b.softmax("probabilities", &logits, PROBABILITY_OUTPUT);

    let description = format!(
        "One prediction window: {w} samples × {c} sensor columns ({}), shape [1, {w}, {c}], one row per sample in time order, raw sensor units at {:.1} Hz. For a recording, classify windows starting every {} samples (the last one ending at the last sample) and average their probabilities for the session, as Lathe does.",
        model.columns.join(", "),
        model.sample_rate,
        model.hop
    );
    let mut user = meta::provenance(model_dir, &labels, options)?;
    user.insert("algorithm".into(), "cnn".into());
    user.insert(
        "columns".into(),
        serde_json::to_string(&model.columns).unwrap_or_default(),
    );
    user.insert("prediction_window".into(), w.to_string());
    user.insert("window_hop".into(), model.hop.to_string());
    user.insert("sample_rate".into(), format!("{}", model.sample_rate));
    user.insert(
        "session_prediction".into(),
        "mean of the window probabilities".into(),
    );
    let metadata = meta::metadata(
        options,
        format!(
            "Activity classifier (1-D CNN over {c} motion-sensor channels) for {} activities ({}), trained with Lathe. Input: one window of {w} samples.",
            labels.len(),
            meta::label_list(&labels)
        ),
        "Unspecified (set with --license).",
        user,
    );
    let classifier = ClassifierSpec {
        specification_version: options.precision.specification_version(),
        inputs: vec![feature(
            INPUT,
            &description,
            spec::array_type(&[1, w, c], false),
        )],
        preprocessing: Vec::new(),
        layers: b.finish(),
        labels,
        probability_name: PROBABILITY_OUTPUT.into(),
        label_name: LABEL_OUTPUT.into(),
        metadata,
    };
    let num_layers = classifier.layers.len();
    let model = classifier.to_model();
    let bytes = spec::write(out, &model)?;
    Ok(Exported {
        path: out.to_path_buf(),
        bytes,
        specification_version: model.specification_version,
        num_layers,
    })
}
