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
pub fn image_scaler(
    input: &str,
    channel_scale: f32,
    rgb_bias: [f32; 3],
) -> NeuralNetworkPreprocessing {
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

/// A feature description of `ty`.
pub fn feature(name: &str, description: &str, ty: feature_type::Type) -> FeatureDescription {
    FeatureDescription {
        name: name.into(),
        short_description: description.into(),
        r#type: Some(FeatureType {
            is_optional: false,
            r#type: Some(ty),
        }),
    }
}

/// A scalar double feature.
pub fn double_type() -> feature_type::Type {
    feature_type::Type::DoubleType(coreml_proto::proto::DoubleFeatureType {})
}

/// A scalar 64-bit integer feature.
pub fn int64_type() -> feature_type::Type {
    feature_type::Type::Int64Type(coreml_proto::proto::Int64FeatureType {})
}

/// A string feature.
pub fn string_type() -> feature_type::Type {
    feature_type::Type::StringType(StringFeatureType {})
}

/// A multi-array of doubles (fp64) or floats (fp32) of a fixed `shape`.
pub fn array_type(shape: &[usize], double: bool) -> feature_type::Type {
    use coreml_proto::proto::{ArrayFeatureType, array_feature_type::ArrayDataType};
    feature_type::Type::MultiArrayType(ArrayFeatureType {
        shape: shape.iter().map(|&d| d as i64).collect(),
        data_type: if double {
            ArrayDataType::Double
        } else {
            ArrayDataType::Float32
        } as i32,
        ..Default::default()
    })
}

/// A model description with plain inputs and outputs (no metadata, no predicted names).
pub fn description(
    input: Vec<FeatureDescription>,
    output: Vec<FeatureDescription>,
) -> ModelDescription {
    ModelDescription {
        input,
        output,
        ..Default::default()
    }
}

/// A classifier's description: `label_name` and `probability_name` outputs, marked as the
/// predicted feature and probabilities.
pub fn classifier_description(
    input: Vec<FeatureDescription>,
    label_name: &str,
    probability_name: &str,
) -> ModelDescription {
    ModelDescription {
        input,
        output: classifier_outputs(label_name, probability_name),
        predicted_feature_name: label_name.into(),
        predicted_probabilities_name: probability_name.into(),
        ..Default::default()
    }
}

impl ModelMetadata {
    /// The `Metadata` message.
    pub fn message(&self) -> Metadata {
        self.to_spec()
    }
}

/// A `Model` of `ty` with `description` at `specification_version`.
pub fn model(specification_version: i32, description: ModelDescription, ty: model::Type) -> Model {
    Model {
        specification_version,
        description: Some(description),
        is_updatable: false,
        r#type: Some(ty),
    }
}

/// A string label vector.
pub fn strings(values: &[String]) -> StringVector {
    StringVector {
        vector: values.to_vec(),
    }
}
