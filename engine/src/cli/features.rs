//! `lathe features`: the pooled backbone features of every image in a folder-per-class tree,
//! written as a CSV (`path,label,f0,f1,…`) — embeddings for other tools, and what the quality
//! suite's scikit-learn baseline fits on (the same features Lathe's image head sees).

use crate::data::image_folder;
use crate::nets::backbone::{BACKBONES, Backbone};
use anyhow::{Context, Result, bail};
use candle_core::Tensor;
use clap::Args;
use rayon::prelude::*;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args, Debug)]
#[command(
    after_help = "Example:\n  lathe features --data photos/train --out train-features.csv\n\nEach row: the image's path, its class (the subfolder it is in; empty for a folder of images without class subfolders) and the backbone's pooled features. Unreadable images are skipped with a warning."
)]
pub struct FeaturesArgs {
    /// A folder with one subfolder per class (the class column is the subfolder), or a folder of
    /// images (the class column is empty).
    #[arg(long)]
    pub data: PathBuf,
    /// The CSV to write (replaced atomically).
    #[arg(long)]
    pub out: PathBuf,
    /// Backbone id (see `lathe templates --params image-classifier`).
    #[arg(long, default_value = "mobilenet_v2")]
    pub backbone: String,
    /// A safetensors file with the backbone's weights (default: built in or cached).
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// Images are resized to this many pixels square.
    #[arg(long, default_value_t = 224)]
    pub image_size: u32,
    /// auto, cpu, cuda, cuda:N or metal.
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

pub fn run(args: FeaturesArgs) -> Result<ExitCode> {
    if !BACKBONES.contains(&args.backbone.as_str()) {
        bail!(
            "unknown backbone \"{}\"; use one of: {}",
            args.backbone,
            BACKBONES.join(", ")
        );
    }
    let device = crate::device::open(&args.device)?;
    let backbone = Backbone::load(
        &args.backbone,
        args.image_size,
        args.weights.as_deref(),
        0,
        &device,
    )?;
    let mut issues = Vec::new();
    let mut files: Vec<(PathBuf, String)> = Vec::new();
    for class_dir in crate::fsutil::sorted_entries(&args.data)? {
        if !class_dir.is_dir() {
            continue;
        }
        let label = class_dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        for f in image_folder::list_files(&class_dir, &mut issues) {
            files.push((f, label.clone()));
        }
    }
    // A folder of images without class subfolders (a multi-label folder, or images to
    // label): every image in it, with an empty class.
    if files.is_empty() {
        files = image_folder::list_files(&args.data, &mut issues)
            .into_iter()
            .map(|f| (f, String::new()))
            .collect();
    }
    if files.is_empty() {
        bail!(
            "no images found in {}; give a folder of images, or one with a subfolder per class",
            args.data.display()
        );
    }
    let pre = backbone.preprocessing.clone();
    let mut text = String::new();
    let mut written = 0usize;
    for chunk in files.chunks(32) {
        let decoded: Vec<(usize, std::result::Result<Vec<f32>, String>)> = chunk
            .par_iter()
            .enumerate()
            .map(|(i, (path, _))| {
                let r = std::fs::read(path)
                    .map_err(|e| e.to_string())
                    .and_then(|b| pre.load(&b));
                (i, r)
            })
            .collect();
        let mut ok = Vec::new();
        let mut pixels = Vec::new();
        for (i, r) in decoded {
            match r {
                Ok(p) => {
                    ok.push(i);
                    pixels.extend(p);
                }
                Err(e) => eprintln!("warning: skipped ({e}): {}", chunk[i].0.display()),
            }
        }
        if ok.is_empty() {
            continue;
        }
        let (h, w) = (pre.height as usize, pre.width as usize);
        let x = Tensor::from_vec(pixels, (ok.len(), 3, h, w), &device)?;
        let f = backbone
            .features(&x, false)?
            .to_dtype(candle_core::DType::F32)?
            .to_vec2::<f32>()?;
        for (i, row) in ok.iter().zip(f) {
            let (path, label) = &chunk[*i];
            text.push_str(&csv_field(&path.display().to_string()));
            text.push(',');
            text.push_str(&csv_field(label));
            for v in row {
                text.push(',');
                text.push_str(&v.to_string());
            }
            text.push('\n');
            written += 1;
        }
    }
    let mut out = Vec::new();
    write!(out, "path,label")?;
    for j in 0..backbone.feature_dim {
        write!(out, ",f{j}")?;
    }
    writeln!(out)?;
    out.extend_from_slice(text.as_bytes());
    crate::fsutil::atomic_write(&args.out, &out)
        .with_context(|| format!("writing {}", args.out.display()))?;
    eprintln!(
        "wrote {written} rows of {} features to {}",
        backbone.feature_dim,
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}
