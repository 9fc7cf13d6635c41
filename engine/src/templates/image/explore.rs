//! The features of an image classifier's run for the data explorer: every image of its data
//! (train, validation and test, split as the run split them), through the backbone of the run's
//! model folder. A model whose backbone was not fine-tuned has the backbone training extracted
//! features with, so the run's feature cache (keyed by backbone signature + file hash) answers
//! for every image it saw; the rest are computed on the CPU and cached.

use crate::data::image_folder::LabeledFile;
use crate::error::Result;
use crate::explore::{FeatureTable, Sample, Step};
use crate::params::ResolvedParams;
use crate::project::Project;
use crate::task::ResolvedData;
use crate::templates::image::model::ImageModel;
use crate::templates::image::params::ImageParams;
use crate::templates::image::scan::scan_splits;
use crate::train::Control;
use crate::train::feature_cache::FeatureCache;
use crate::train::run_dir::RunDir;
use candle_core::{DType, Device, Tensor};
use rayon::prelude::*;
use std::path::Path;

/// Images decoded and run through the backbone at once.
const BATCH: usize = 32;

/// The feature table of the run in `run_dir` (its project and resolved parameters given) and a
/// sentence on where the features came from.
pub fn features(
    run_dir: &Path,
    project: &Project,
    params: &ResolvedParams,
    cache_dir: &Path,
    progress: &mut dyn FnMut(Step, u64, u64),
    control: &Control,
) -> Result<(FeatureTable, String)> {
    let p = ImageParams::from_resolved(params);
    let data = ResolvedData::of(project);
    let splits = scan_splits(
        &data,
        p.validation_split,
        data.seed,
        &mut |done, total| progress(Step::Scanning, done, total),
        control,
    )?;
    let model_dir = RunDir {
        root: run_dir.to_path_buf(),
    }
    .model();
    let mut backbone = ImageModel::load(&model_dir, &Device::Cpu)?.into_backbone();
    // The signature training cached under: the original weights' hash (from the manifest) when
    // the backbone is as it was; a fine-tuned one is keyed by the model's own weights.
    let manifest: Option<serde_json::Value> =
        crate::fsutil::read_json(&model_dir.join("manifest.json")).ok();
    let original = manifest
        .as_ref()
        .and_then(|m| m.pointer("/backbone/weights_blake3"))
        .and_then(|h| h.as_str())
        .filter(|h| !h.is_empty() && p.fine_tune_blocks == 0);
    backbone.weights_hash = match original {
        Some(h) => h.to_string(),
        None => {
            let weights = model_dir.join(crate::train::run_dir::MODEL_WEIGHTS);
            let bytes = std::fs::read(&weights)
                .map_err(|e| crate::error::Error::io("reading", &weights, e))?;
            format!("model-{}", blake3::hash(&bytes).to_hex())
        }
    };
    let signature = backbone.signature();
    let mut cache = FeatureCache::open(cache_dir, &signature, backbone.feature_dim).ok();

    let files: Vec<(&LabeledFile, &str)> = [
        (&splits.train, "train"),
        (&splits.validation, "validation"),
        (&splits.test, "test"),
    ]
    .into_iter()
    .flat_map(|(files, split)| files.iter().map(move |f| (f, split)))
    .collect();
    let keys: Vec<[u8; 32]> = files
        .iter()
        .map(|(f, _)| FeatureCache::key(&signature, &f.hash, ""))
        .collect();
    let mut rows: Vec<Option<Vec<f32>>> = keys
        .iter()
        .map(|k| cache.as_ref().and_then(|c| c.get(k)).map(<[f32]>::to_vec))
        .collect();
    let reused = rows.iter().filter(|r| r.is_some()).count();
    let todo: Vec<usize> = (0..files.len()).filter(|&i| rows[i].is_none()).collect();
    let total = files.len() as u64;
    let mut done = reused as u64;
    progress(Step::Features, done, total);
    let pre = backbone.preprocessing.clone();
    let mut failed = 0usize;
    let mut cache_failed = false;
    for chunk in todo.chunks(BATCH) {
        control.check_cancelled()?;
        let decoded: Vec<(usize, std::result::Result<Vec<f32>, String>)> = chunk
            .par_iter()
            .map(|&i| {
                let r = std::fs::read(&files[i].0.path)
                    .map_err(|e| e.to_string())
                    .and_then(|b| pre.load(&b));
                (i, r)
            })
            .collect();
        let mut ok = Vec::new();
        let mut pixels = Vec::new();
        for (i, r) in decoded {
            match r {
                Ok(px) => {
                    ok.push(i);
                    pixels.extend(px);
                }
                Err(_) => failed += 1,
            }
        }
        if !ok.is_empty() {
            let (h, w) = (pre.height as usize, pre.width as usize);
            let x = Tensor::from_vec(pixels, (ok.len(), 3, h, w), &Device::Cpu)?;
            let f = backbone
                .features(&x, false)?
                .to_dtype(DType::F32)?
                .to_vec2::<f32>()?;
            let mut fresh = Vec::with_capacity(ok.len());
            for (&i, row) in ok.iter().zip(f) {
                fresh.push((keys[i], row.clone()));
                rows[i] = Some(row);
            }
            if let Some(c) = cache.as_mut()
                && c.insert_many(&fresh).is_err()
            {
                cache = None;
                cache_failed = true;
            }
        }
        done += chunk.len() as u64;
        progress(Step::Features, done, total);
    }

    let mut table = FeatureTable {
        labels: splits.labels.clone(),
        samples: Vec::with_capacity(files.len()),
        dim: backbone.feature_dim,
        x: Vec::with_capacity(files.len() * backbone.feature_dim),
    };
    for ((file, split), row) in files.iter().zip(rows) {
        let Some(row) = row else { continue };
        table.samples.push(Sample {
            input: file.path.clone(),
            label: file.label,
            split: split.to_string(),
            hash: Some(file.hash),
        });
        table.x.extend(row);
    }
    let mut about = format!(
        "{} {} features per image; {reused} of {} image{} from the feature cache",
        backbone.feature_dim,
        backbone.id,
        files.len(),
        if files.len() == 1 { "" } else { "s" },
    );
    if failed > 0 {
        about.push_str(&format!(
            "; {failed} image{} could not be read and {} left out",
            if failed == 1 { "" } else { "s" },
            if failed == 1 { "is" } else { "are" },
        ));
    }
    if cache_failed {
        about.push_str("; the feature cache could not be written");
    }
    Ok((table, about))
}
