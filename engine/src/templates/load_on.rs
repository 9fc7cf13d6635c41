//! Loading a model by device name, for callers that never touch candle (the app): opens the
//! device (`cpu`, `auto`, `cuda:N`, `metal`) and dispatches on the task in `config.json`.

use crate::error::Result;
use crate::task::Model;
use crate::templates::load_model;
use std::path::Path;

/// Loads the model in a run or model folder onto the device named `device`.
pub fn load_model_on(path: &Path, device: &str) -> Result<Box<dyn Model>> {
    let device = crate::device::open(device)?;
    load_model(path, &device)
}
