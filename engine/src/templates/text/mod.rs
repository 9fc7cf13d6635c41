//! The text classifier: parameters, the pipeline and the `auto` choice (`train`), tokenizer and
//! TF-IDF (`features`), sparse L-BFGS logistic regression (`maxent`), the model (`model`) and
//! the Core ML pipeline (`coreml`).

pub mod coreml;
pub mod features;
pub mod maxent;
pub mod model;
pub mod params;
pub mod train;
