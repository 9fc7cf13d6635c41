//! `lathe bench`: throughput of the steps that dominate training time on this machine —
//! decode + resize (one thread and all threads) and backbone feature extraction.

use crate::data::image_decode::{IMAGE_EXTENSIONS, Preprocessing};
use crate::model::backbone::Backbone;
use anyhow::{Result, bail};
use candle_core::Tensor;
use clap::Args;
use rayon::prelude::*;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

#[derive(Args, Debug)]
#[command(
    after_help = "Results go to stdout; record them with the machine and command in docs/benchmarks.md."
)]
pub struct BenchArgs {
    /// Folder of images to decode (searched recursively); default: synthetic 640×480 JPEGs.
    #[arg(long)]
    pub images: Option<PathBuf>,
    /// Number of images to decode.
    #[arg(long, default_value_t = 512)]
    pub count: usize,
    /// Backbone batch size.
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
    /// Batches of feature extraction to time (after one warm-up batch).
    #[arg(long, default_value_t = 4)]
    pub batches: usize,
    /// Input size of the backbone.
    #[arg(long, default_value_t = 224)]
    pub image_size: u32,
    /// auto, cpu, cuda, cuda:N or metal.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Print results as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Measure the text classifier's sentence encoder instead: a folder with all-MiniLM-L6-v2
    /// (scripts/fetch-minilm.sh). Uses --count texts, --batch and --device.
    #[arg(long, value_name = "DIR")]
    pub text_encoder: Option<PathBuf>,
    /// Texts for --text-encoder: a CSV / JSON table with a `text` column or a .txt file (one per
    /// line); default: generated sentences.
    #[arg(long, value_name = "FILE")]
    pub texts: Option<PathBuf>,
}

fn collect_images(dir: &Path, limit: usize, out: &mut Vec<PathBuf>) {
    let Ok(entries) = crate::fsutil::sorted_entries(dir) else {
        return;
    };
    for e in entries {
        if out.len() >= limit {
            return;
        }
        if e.is_dir() {
            collect_images(&e, limit, out);
        } else if e.extension().is_some_and(|x| {
            IMAGE_EXTENSIONS.contains(&x.to_string_lossy().to_lowercase().as_str())
        }) {
            out.push(e);
        }
    }
}

fn synthetic_jpegs(n: usize) -> Result<Vec<Vec<u8>>> {
    (0..n)
        .into_par_iter()
        .map(|i| {
            let img = image::RgbImage::from_fn(640, 480, |x, y| {
                let v = (x * 7 + y * 13 + i as u32 * 31) ^ (x * y);
                image::Rgb([v as u8, (v >> 3) as u8, (x + y) as u8])
            });
            let mut buf = Vec::new();
            img.write_to(
                &mut std::io::Cursor::new(&mut buf),
                image::ImageFormat::Jpeg,
            )?;
            Ok(buf)
        })
        .collect()
}

pub fn run(args: BenchArgs) -> Result<ExitCode> {
    if let Some(dir) = &args.text_encoder {
        let texts = args.texts.as_deref();
        return super::bench_text::run(dir, texts, args.count, args.batch, &args.device, args.json);
    }
    let (source, encoded) = match &args.images {
        Some(dir) => {
            let mut paths = Vec::new();
            collect_images(dir, args.count, &mut paths);
            if paths.is_empty() {
                bail!("no images found under {}", dir.display());
            }
            let bytes = paths
                .iter()
                .map(std::fs::read)
                .collect::<std::io::Result<Vec<_>>>()?;
            (dir.display().to_string(), bytes)
        }
        None => (
            "synthetic 640x480 JPEG".to_string(),
            synthetic_jpegs(args.count)?,
        ),
    };
    let pre = Preprocessing::imagenet(args.image_size);
    let decode = |b: &Vec<u8>| pre.load(b).map(|v| v.len()).unwrap_or(0);
    let t = Instant::now();
    let single = rayon::ThreadPoolBuilder::new().num_threads(1).build()?;
    single.install(|| encoded.iter().map(decode).sum::<usize>());
    let one_thread = encoded.len() as f64 / t.elapsed().as_secs_f64();
    let t = Instant::now();
    let _: usize = encoded.par_iter().map(decode).sum();
    let all_threads = encoded.len() as f64 / t.elapsed().as_secs_f64();

    let device = crate::device::open(&args.device)?;
    let backbone = Backbone::load("mobilenet_v2", args.image_size, None, 0, &device)?;
    let s = args.image_size as usize;
    let x = Tensor::randn(0f32, 1.0, (args.batch, 3, s, s), &device)?;
    backbone.features(&x, false)?.to_vec2::<f32>()?;
    let t = Instant::now();
    for _ in 0..args.batches {
        backbone.features(&x, false)?.to_vec2::<f32>()?;
    }
    let extract = (args.batch * args.batches) as f64 / t.elapsed().as_secs_f64();
    let threads = rayon::current_num_threads();
    let result = json!({
        "machine": { "threads": threads, "device": crate::device::label(&device), "os": std::env::consts::OS, "arch": std::env::consts::ARCH },
        "decode_resize": { "source": source, "images": encoded.len(), "size": args.image_size, "images_per_sec_1_thread": one_thread, "images_per_sec_all_threads": all_threads },
        "feature_extraction": { "backbone": "mobilenet_v2", "batch": args.batch, "batches": args.batches, "size": args.image_size, "dtype": "f32", "images_per_sec": extract },
    });
    if args.json {
        println!("{result}");
    } else {
        println!(
            "decode + resize to {0}×{0} ({source}, {1} images):",
            args.image_size,
            encoded.len()
        );
        println!("  1 thread:   {one_thread:8.1} images/s");
        println!("  {threads} threads: {all_threads:8.1} images/s");
        println!(
            "MobileNetV2 feature extraction (batch {}, {}×{}, f32, {}):",
            args.batch,
            s,
            s,
            crate::device::label(&device)
        );
        println!("  {extract:8.1} images/s");
    }
    Ok(ExitCode::SUCCESS)
}
