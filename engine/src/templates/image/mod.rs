//! The image families: the image classifier (`classifier`: extraction on the frozen backbone,
//! head; `finetune`: fine-tuning the last blocks) and the multi-label classifier (`multilabel`,
//! `multilabel_scan`), their shared scan and parameters, the model folder (`model`: export,
//! load, predict, evaluate), the Core ML export (`coreml`), the ONNX export (`onnx`) and a
//! run's features for the data explorer (`explore`).

pub mod backbone_choice;
pub mod classifier;
pub mod coreml;
pub mod decode;
pub mod explore;
pub mod finetune;
pub mod model;
pub mod multilabel;
pub mod multilabel_scan;
pub mod onnx;
pub mod params;
pub mod scan;
