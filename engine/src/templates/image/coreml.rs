//! The image classifier as one Core ML `NeuralNetworkClassifier`: an RGB image input at the
//! model's size; ImageNet-style normalization as the image scaler (`x/255 − mean`) plus a
//! per-channel scale layer (`1/std`), which is exact; the backbone with batch norm folded and
//! the engine's own padding; global average pooling; the head's inner products; softmax. Outputs
//! `classLabel` and `classLabelProbability`, as Vision and Turi Create models do.
//!
//! A multi-label image classifier is the same network with one sigmoid per label instead of the
//! softmax, as a plain `NeuralNetwork` with one output `labelProbabilities` (labels and threshold
//! in the metadata).

use crate::error::{Error, Result};
use crate::export::coreml::backbone::{FeatureMap, pooled_features, values};
use crate::export::coreml::builder::{Activation, NetworkBuilder};
use crate::export::coreml::spec::{ClassifierSpec, ModelMetadata, image_input, image_scaler};
use crate::export::coreml::{Exported, Options, spec};
use crate::fsutil::read_json;
use crate::nets::head::HeadKind;
use crate::task::Model;
use crate::templates::image::model::ImageModel;
use candle_core::Device;
use std::collections::BTreeMap;
use std::path::Path;

/// Name of the image input.
pub const INPUT: &str = "image";
/// Name of the top-label output.
pub const LABEL_OUTPUT: &str = "classLabel";
/// Name of the probabilities output (and of the softmax blob).
pub const PROBABILITY_OUTPUT: &str = "classLabelProbability";
/// Name of a multi-label model's output: one probability per label.
pub const MULTI_LABEL_OUTPUT: &str = "labelProbabilities";

/// Exports the image classifier in `model_dir` to `out`.
pub fn export(model_dir: &Path, out: &Path, options: &Options) -> Result<Exported> {
    let model = ImageModel::load(model_dir, &Device::Cpu)?;
    let backbone = model.backbone();
    let head = model.head();
    let labels = model.labels().to_vec();
    let pre = &backbone.preprocessing;
    let mut b = NetworkBuilder::new(options.precision);

    // (x/255 - mean) / std, exactly: the scaler takes x/255 - mean, a scale layer 1/std.
    let scaler = image_scaler(INPUT, 1.0 / 255.0, pre.mean.map(|m| -m));
    let inv_std = pre.std.map(|s| 1.0 / s);
    let normalized = b.scale("normalize", INPUT, "normalized", &inv_std, None)?;
    let input = FeatureMap {
        blob: normalized,
        channels: 3,
        height: pre.height as usize,
        width: pre.width as usize,
    };
    let features = pooled_features(&mut b, backbone, &input)?;

    let names = crate::nets::head::Head::layer_names(&head.kind);
    let last = head.layers.len().saturating_sub(1);
    let mut blob = features.blob;
    for (i, ((w, bias), name)) in head.layers.iter().zip(names).enumerate() {
        let (out_dim, in_dim) = w.as_tensor().dims2()?;
        let weight = values(w.as_tensor())?;
        let bias = values(bias.as_tensor())?;
        let output = if i == last {
            "logits".to_string()
        } else {
            name.to_string()
        };
        blob = b.inner_product(
            name,
            &blob,
            &output,
            &weight,
            Some(&bias),
            (out_dim, in_dim),
        )?;
        if i < last {
            let act = format!("{name}.relu");
            blob = b.activation(&act, &blob, &act, Activation::Relu);
        }
    }
    let multi_label = model.multi_label();
    if multi_label.is_some() {
        b.activation(
            "probabilities",
            &blob,
            MULTI_LABEL_OUTPUT,
            Activation::Sigmoid,
        );
    } else {
        b.softmax("probabilities", &blob, PROBABILITY_OUTPUT);
    }

    let metadata = metadata(model_dir, &model, options)?;
    let description = format!(
        "An RGB photo, {w}×{h} pixels. Lathe resizes the whole image to this size (aspect ratio \
         not kept; Vision: VNImageCropAndScaleOptionScaleFill).",
        w = pre.width,
        h = pre.height
    );
    if let Some(threshold) = multi_label {
        return multi_label_model(
            out,
            options,
            b.finish(),
            vec![image_input(INPUT, pre.width, pre.height, &description)],
            scaler,
            metadata,
            labels.len(),
            threshold,
        );
    }
    let classifier = ClassifierSpec {
        specification_version: options.precision.specification_version(),
        inputs: vec![image_input(INPUT, pre.width, pre.height, &description)],
        preprocessing: vec![scaler],
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

/// A multi-label model: a plain `NeuralNetwork` whose output `labelProbabilities` holds one
/// sigmoid probability per label (labels in metadata `classes`, in that order; a label is
/// predicted at or above metadata `threshold`). Not a `NeuralNetworkClassifier`: a classifier
/// picks one label, and its probabilities are expected to sum to 1.
#[allow(clippy::too_many_arguments)]
fn multi_label_model(
    out: &Path,
    options: &Options,
    layers: Vec<coreml_proto::proto::NeuralNetworkLayer>,
    inputs: Vec<coreml_proto::proto::FeatureDescription>,
    scaler: coreml_proto::proto::NeuralNetworkPreprocessing,
    mut metadata: ModelMetadata,
    num_labels: usize,
    threshold: f32,
) -> Result<Exported> {
    use coreml_proto::proto::{NeuralNetwork, model};
    metadata
        .user_defined
        .insert("threshold".into(), format!("{threshold}"));
    // Xcode's image-classifier preview expects a classifier's outputs.
    metadata
        .user_defined
        .remove("com.apple.coreml.model.preview.type");
    metadata.short_description = metadata
        .short_description
        .replace("Image classifier", "Multi-label image classifier");
    let num_layers = layers.len();
    let mut description = spec::description(
        inputs,
        vec![spec::feature(
            MULTI_LABEL_OUTPUT,
            &format!(
                "Probability of each of the {num_labels} labels (order: metadata classes); a label is present at or above {threshold}"
            ),
            spec::array_type(&[num_labels], false),
        )],
    );
    description.metadata = Some(metadata.message());
    let m = spec::model(
        options.precision.specification_version(),
        description,
        model::Type::NeuralNetwork(NeuralNetwork {
            layers,
            preprocessing: vec![scaler],
            ..Default::default()
        }),
    );
    let bytes = spec::write(out, &m)?;
    Ok(Exported {
        path: out.to_path_buf(),
        bytes,
        specification_version: m.specification_version,
        num_layers,
    })
}

pub(crate) fn backbone_title(id: &str) -> &str {
    match id {
        "mobilenet_v2" => "MobileNetV2",
        "efficientnet_lite0" => "EfficientNet-Lite0",
        "efficientnet_lite2" => "EfficientNet-Lite2",
        other => other,
    }
}

pub(crate) fn backbone_license(id: &str) -> &'static str {
    match id {
        "mobilenet_v2" => "torchvision MobileNetV2 ImageNet weights, BSD-3-Clause",
        "efficientnet_lite0" => {
            "EfficientNet-Lite0 ImageNet weights (TensorFlow TPU models), Apache-2.0"
        }
        "efficientnet_lite2" => {
            "EfficientNet-Lite2 ImageNet weights (TensorFlow TPU models), Apache-2.0"
        }
        _ => "see the backbone's weights",
    }
}

/// Description, author, license, version and the user-defined entries (classes, training
/// parameters, data hash, preprocessing, provenance) from the model folder's JSON files.
fn metadata(model_dir: &Path, model: &ImageModel, options: &Options) -> Result<ModelMetadata> {
    let backbone = model.backbone();
    let head = model.head();
    let labels = model.labels();
    let pre = &backbone.preprocessing;
    let manifest_path = model_dir.join("manifest.json");
    let manifest: serde_json::Value = if manifest_path.is_file() {
        read_json(&manifest_path)?
    } else {
        serde_json::Value::Null
    };
    let head_title = match &head.kind {
        HeadKind::Logistic => "logistic regression".to_string(),
        HeadKind::Mlp { hidden, .. } => format!("MLP with {hidden} hidden units"),
    };
    let shown: Vec<&str> = labels.iter().take(6).map(String::as_str).collect();
    let more = if labels.len() > shown.len() {
        ", …"
    } else {
        ""
    };
    let short_description = format!(
        "Image classifier ({} features + {head_title}) for {} labels ({}{more}), trained with Lathe.",
        backbone_title(&backbone.id),
        labels.len(),
        shown.join(", "),
    );
    let json = |v: &serde_json::Value| serde_json::to_string(v).unwrap_or_default();
    let mut user = BTreeMap::new();
    let mut put = |k: &str, v: String| {
        user.insert(k.to_string(), v);
    };
    put(
        "com.apple.coreml.model.preview.type",
        "imageClassifier".into(),
    );
    put("classes", json(&serde_json::json!(labels)));
    put("backbone", backbone.id.clone());
    put(
        "head",
        serde_json::to_string(&head.kind).map_err(|e| Error::Unsupported(e.to_string()))?,
    );
    put("image_size", format!("{}x{}", pre.width, pre.height));
    put(
        "preprocessing",
        format!(
            "RGB, whole image resized to {}x{} (bilinear, aspect ratio not kept), x/255, minus mean {:?}, divided by std {:?}",
            pre.width, pre.height, pre.mean, pre.std
        ),
    );
    put("precision", options.precision.as_str().into());
    put("lathe_version", env!("CARGO_PKG_VERSION").into());
    if let Some(params) = manifest.get("params") {
        put("training_params", json(params));
    }
    if let Some(seed) = manifest.get("seed") {
        put("seed", json(seed));
    }
    if let Some(data) = manifest.get("data") {
        for split in ["train", "validation", "test"] {
            if let Some(hash) = data
                .pointer(&format!("/{split}/blake3"))
                .and_then(|v| v.as_str())
            {
                put(&format!("data_blake3_{split}"), hash.into());
            }
        }
    }
    if let Some(w) = manifest
        .pointer("/backbone/weights_blake3")
        .and_then(|v| v.as_str())
    {
        put("backbone_weights_blake3", w.into());
    }
    if let Some(c) = manifest.get("created").and_then(|v| v.as_str()) {
        put("trained", c.into());
    }
    Ok(ModelMetadata {
        short_description: options.description.clone().unwrap_or(short_description),
        author: options
            .author
            .clone()
            .unwrap_or_else(|| "Made with Lathe".into()),
        license: options.license.clone().unwrap_or_else(|| {
            format!(
                "Unspecified (set with --license). Contains {}.",
                backbone_license(&backbone.id)
            )
        }),
        version: options.version.clone().unwrap_or_else(|| "1.0".into()),
        user_defined: user,
    })
}
