//! Model-level pieces of a Core ML specification: feature descriptions (image input,
//! classifier outputs), the image scaler, metadata, the `NeuralNetworkClassifier` wrapper, and
//! reading / writing `.mlmodel` files (protobuf via `prost`).

use crate::error::{Error, Result};
use crate::fsutil::atomic_write;
use coreml_proto::proto::{
    DictionaryFeatureType, FeatureDescription, FeatureType, ImageFeatureType, Metadata, Model,
    ModelDescription, NeuralNetworkClassifier, NeuralNetworkImageScaler, NeuralNetworkLayer,
    NeuralNetworkPreprocessing, StringFeatureType, StringVector, dictionary_feature_type,
    feature_type, image_feature_type, model, neural_network_classifier,
    neural_network_preprocessing,
};
use prost::Message;
use std::collections::BTreeMap;
use std::path::Path;

/// An RGB image input of a fixed size.
pub fn image_input(name: &str, width: u32, height: u32, description: &str) -> FeatureDescription {
    FeatureDescription {
        name: name.into(),
        short_description: description.into(),
        r#type: Some(FeatureType {
            is_optional: false,
            r#type: Some(feature_type::Type::ImageType(ImageFeatureType {
                width: width as i64,
                height: height as i64,
                color_space: image_feature_type::ColorSpace::Rgb as i32,
                size_flexibility: None,
            })),
        }),
    }
}

/// `y[c] = channel_scale * x[c] + bias[c]` on an RGB image input (pixels 0–255).
pub fn image_scaler(input: &str, channel_scale: f32, rgb_bias: [f32; 3]) -> NeuralNetworkPreprocessing {
    NeuralNetworkPreprocessing {
        feature_name: input.into(),
        preprocessor: Some(neural_network_preprocessing::Preprocessor::Scaler(
            NeuralNetworkImageScaler {
                channel_scale,
                red_bias: rgb_bias[0],
                green_bias: rgb_bias[1],
                blue_bias: rgb_bias[2],
                gray_bias: 0.0,
            },
        )),
    }
}

/// The two outputs of a classifier (Turi Create / Vision convention): the top label
/// (`label_name`, a string) and every label's probability (`probability_name`, a dictionary).
pub fn classifier_outputs(label_name: &str, probability_name: &str) -> Vec<FeatureDescription> {
    let string = || FeatureType {
        is_optional: false,
        r#type: Some(feature_type::Type::StringType(StringFeatureType {})),
    };
    vec![
        FeatureDescription {
            name: probability_name.into(),
            short_description: "Probability of each label".into(),
            r#type: Some(FeatureType {
                is_optional: false,
                r#type: Some(feature_type::Type::DictionaryType(DictionaryFeatureType {
                    key_type: Some(dictionary_feature_type::KeyType::StringKeyType(
                        StringFeatureType {},
                    )),
                })),
            }),
        },
        FeatureDescription {
            name: label_name.into(),
            short_description: "Most likely label".into(),
            r#type: Some(string()),
        },
    ]
}

/// Model metadata shown by Xcode and readable through `MLModelDescription`.
pub struct ModelMetadata {
    pub short_description: String,
    pub author: String,
    pub license: String,
    pub version: String,
    /// `userDefined`: string keys and values (JSON for structured values).
    pub user_defined: BTreeMap<String, String>,
}

impl ModelMetadata {
    fn to_spec(&self) -> Metadata {
        Metadata {
            short_description: self.short_description.clone(),
            version_string: self.version.clone(),
            author: self.author.clone(),
            license: self.license.clone(),
            user_defined: self
                .user_defined
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }
    }
}

/// A neural-network classifier over string labels.
pub struct ClassifierSpec {
    pub specification_version: i32,
    pub inputs: Vec<FeatureDescription>,
    pub preprocessing: Vec<NeuralNetworkPreprocessing>,
    pub layers: Vec<NeuralNetworkLayer>,
    pub labels: Vec<String>,
    /// Output of the layer that produces the probabilities (softmax); also the name of the
    /// probability dictionary output.
    pub probability_name: String,
    /// Name of the top-label output.
    pub label_name: String,
    pub metadata: ModelMetadata,
}

impl ClassifierSpec {
    /// The complete `Model` message.
    pub fn to_model(self) -> Model {
        let description = ModelDescription {
            input: self.inputs,
            output: classifier_outputs(&self.label_name, &self.probability_name),
            predicted_feature_name: self.label_name,
            predicted_probabilities_name: self.probability_name.clone(),
            metadata: Some(self.metadata.to_spec()),
            ..Default::default()
        };
        let classifier = NeuralNetworkClassifier {
            layers: self.layers,
            preprocessing: self.preprocessing,
            label_probability_layer_name: self.probability_name,
            class_labels: Some(neural_network_classifier::ClassLabels::StringClassLabels(
                StringVector {
                    vector: self.labels,
                },
            )),
            ..Default::default()
        };
        Model {
            specification_version: self.specification_version,
            description: Some(description),
            is_updatable: false,
            r#type: Some(model::Type::NeuralNetworkClassifier(classifier)),
        }
    }
}

/// Writes `model` as a `.mlmodel` file (atomically).
pub fn write(path: &Path, model: &Model) -> Result<u64> {
    let bytes = model.encode_to_vec();
    atomic_write(path, &bytes)?;
    Ok(bytes.len() as u64)
}

/// Reads a `.mlmodel` file.
pub fn read(path: &Path) -> Result<Model> {
    let bytes = std::fs::read(path).map_err(|e| Error::io("reading", path, e))?;
    Model::decode(bytes.as_slice())
        .map_err(|e| Error::model(format!("not a Core ML model ({e})"), path))
}
