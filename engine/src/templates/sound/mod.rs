//! The sound classifier: scan and CNN training (`train`), transfer learning on a pretrained
//! encoder (`transfer`), parameters, the model (`model`: streaming predict, evaluate) and the
//! Core ML export with the log-mel front end inside (`coreml`, `coreml_crepe`).

pub mod coreml;
pub mod coreml_crepe;
pub mod encoder;
pub mod model;
pub mod params;
pub mod train;
pub mod transfer;
