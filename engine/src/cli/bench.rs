//! `lathe bench`: throughput of the steps that dominate training time on this machine —
//! decode + resize (one thread and all threads) and backbone feature extraction; the text and
//! sound encoders' throughput with `--text-encoder` / `--sound` (bench_text.rs, bench_sound.rs).

use crate::data::image_decode::{IMAGE_EXTENSIONS, Preprocessing};
use crate::fit::optim::AdamW;
use crate::nets::backbone::Backbone;
use crate::nets::head::{Head, HeadKind};
use anyhow::{Result, bail};
use candle_core::{DType, Device, Tensor};
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
    /// Backbone batch size for feature extraction; 0 = 32 on the CPU, 256 on a GPU.
    #[arg(long, default_value_t = 0)]
    pub batch: usize,
    /// Precisions of feature extraction to time, comma-separated (f32, tf32, bf16, f16);
    /// default f32 on the CPU, f32,tf32,bf16 on a GPU. tf32 is f32 with TF32 tensor-core
    /// matrix products (CUDA only), as PyTorch's default f32 convolutions.
    #[arg(long)]
    pub precision: Option<String>,
    /// Batch size of the fine-tuning step benchmark (0 skips it).
    #[arg(long, default_value_t = 64)]
    pub fine_tune_batch: usize,
    /// Trailing MobileNetV2 blocks trained in the fine-tuning step benchmark.
    #[arg(long, default_value_t = 4)]
    pub fine_tune_blocks: usize,
    /// Fine-tuning steps to time (after one warm-up step).
    #[arg(long, default_value_t = 5)]
    pub fine_tune_steps: usize,
    /// Skip the decode + resize benchmark.
    #[arg(long)]
    pub no_decode: bool,
    /// Batches of feature extraction to time (after one warm-up batch).
    #[arg(long, default_value_t = 4)]
    pub batches: usize,
    /// Also time one extraction batch layer by layer (per kind of layer: depthwise, 1×1
    /// matrix products, epilogues, …), and the fine-tuning steps phase by phase (forward,
    /// backward, optimizer), to show where the time goes.
    #[arg(long)]
    pub profile: bool,
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
    /// Measure the sound classifier's encoders instead (statistics, speech, transfer, and yamnet /
    /// whisper when installed): one-second clips per second each, --count clips on --device.
    #[arg(long)]
    pub sound: bool,
    /// Sound files for --sound (searched recursively; the first second of each); default:
    /// generated clips.
    #[arg(long, value_name = "DIR", requires = "sound")]
    pub clips: Option<PathBuf>,
    /// Also run PyTorch's reference (benches/reference/mobilenet_v2.py: torchvision MobileNetV2
    /// with the same weights) on the same device, alternating with Lathe --rounds times, and
    /// print both sides' medians and the ratio of each step. Needs a Python with torch.
    #[arg(long)]
    pub reference: bool,
    /// The Python that runs the reference (default: /opt/torch/.venv/bin/python, python3 or
    /// python, the first that imports torch).
    #[arg(long, value_name = "PYTHON", requires = "reference")]
    pub reference_python: Option<PathBuf>,
    /// Folder of the reference scripts.
    #[arg(long, value_name = "DIR", requires = "reference")]
    pub reference_dir: Option<PathBuf>,
    /// Rounds of each side with --reference.
    #[arg(long, default_value_t = 3, requires = "reference")]
    pub rounds: usize,
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

fn decode_bench(args: &BenchArgs) -> Result<serde_json::Value> {
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
    Ok(
        json!({ "source": source, "images": encoded.len(), "size": args.image_size,
        "images_per_sec_1_thread": one_thread, "images_per_sec_all_threads": all_threads }),
    )
}

/// Images/s of frozen MobileNetV2 feature extraction in `dtype`, after one warm-up batch, and
/// with `--profile` the per-layer profile of one more batch.
fn extract_bench(
    args: &BenchArgs,
    device: &Device,
    batch: usize,
    dtype: DType,
) -> Result<(f64, Option<serde_json::Value>)> {
    let mut backbone = Backbone::load("mobilenet_v2", args.image_size, None, 0, device)?;
    backbone.set_precision(dtype)?;
    let s = args.image_size as usize;
    let x = Tensor::randn(0f32, 1.0, (batch, 3, s, s), device)?;
    backbone
        .features(&x, false)?
        .to_dtype(DType::F32)?
        .to_vec2::<f32>()?;
    let t = Instant::now();
    for _ in 0..args.batches {
        backbone
            .features(&x, false)?
            .to_dtype(DType::F32)?
            .to_vec2::<f32>()?;
    }
    let ips = (batch * args.batches) as f64 / t.elapsed().as_secs_f64();
    let profile = if args.profile {
        Some(super::bench_profile::profile(&backbone, device, batch, s)?)
    } else {
        None
    };
    Ok((ips, profile))
}

/// Images/s of one fine-tuning step as the image task takes it: frozen blocks (in the device's
/// precision), the last `fine_tune_blocks` blocks and a logistic head trained in f32 with AdamW.
fn fine_tune_bench(args: &BenchArgs, device: &Device) -> Result<(f64, Option<serde_json::Value>)> {
    let mut backbone = Backbone::load(
        "mobilenet_v2",
        args.image_size,
        None,
        args.fine_tune_blocks,
        device,
    )?;
    backbone.set_precision(crate::device::auto_precision(device))?;
    let classes = 10;
    let head = Head::new(HeadKind::Logistic, backbone.feature_dim, classes, 0, device)?;
    let mut vars: Vec<_> = backbone
        .vars()
        .into_iter()
        .map(|v| {
            let d = v.rank() > 1;
            (v, d)
        })
        .collect();
    vars.extend(
        head.layers
            .iter()
            .flat_map(|(w, b)| [(w.clone(), true), (b.clone(), false)]),
    );
    let mut opt = AdamW::new(vars, 1e-4, 1e-4)?;
    let (b, s) = (args.fine_tune_batch, args.image_size as usize);
    let x = Tensor::randn(0f32, 1.0, (b, 3, s, s), device)?;
    let y = Tensor::from_vec(
        (0..b as u32)
            .map(|i| i % classes as u32)
            .collect::<Vec<_>>(),
        b,
        device,
    )?;
    let mut step = || -> Result<f32> {
        let f = backbone.features(&x, true)?;
        let logits = head.forward(&f, true, None)?;
        let loss = candle_nn::loss::cross_entropy(&logits, &y)?;
        opt.apply(&loss.backward()?)?;
        Ok(loss.to_scalar::<f32>()?)
    };
    step()?;
    let t = Instant::now();
    for _ in 0..args.fine_tune_steps {
        step()?;
    }
    let ips = (b * args.fine_tune_steps) as f64 / t.elapsed().as_secs_f64();
    if !args.profile {
        return Ok((ips, None));
    }
    // The same steps again, synchronized after each phase: where a step's time goes.
    let mut ms = [0f64; 4];
    let mut lap = |i: usize, t: &mut Instant| -> Result<()> {
        device.synchronize()?;
        ms[i] += t.elapsed().as_secs_f64() * 1e3;
        *t = Instant::now();
        Ok(())
    };
    for _ in 0..args.fine_tune_steps {
        let mut t = Instant::now();
        let f = backbone.features(&x, true)?;
        lap(0, &mut t)?;
        let logits = head.forward(&f, true, None)?;
        let loss = candle_nn::loss::cross_entropy(&logits, &y)?;
        lap(1, &mut t)?;
        let grads = loss.backward()?;
        lap(2, &mut t)?;
        opt.apply(&grads)?;
        lap(3, &mut t)?;
    }
    let per = |v: f64| v / args.fine_tune_steps.max(1) as f64;
    let profile = json!({
        "backbone_forward_ms": per(ms[0]), "head_and_loss_ms": per(ms[1]),
        "backward_ms": per(ms[2]), "optimizer_ms": per(ms[3]),
        "step_ms": per(ms.iter().sum()),
    });
    Ok((ips, Some(profile)))
}

/// On a GPU: training batch norm + ReLU6 on the same random batch here and on the CPU — the
/// largest differences of the output and of the input, scale and shift gradients.
fn batch_norm_agreement(device: &Device) -> Result<serde_json::Value> {
    use crate::ops::batch_norm::TrainBatchNorm;
    let (n, c, h, w) = (16, 96, 14, 14);
    let x = (Tensor::randn(0f32, 1.0, (n, c, h, w), &Device::Cpu)? * 3.0)?;
    let r = Tensor::randn(0f32, 1.0, (n, c, h, w), &Device::Cpu)?;
    let gamma = Tensor::randn(1f32, 0.3, c, &Device::Cpu)?;
    let beta = Tensor::randn(0.5f32, 0.5, c, &Device::Cpu)?;
    let run = |dev: &Device| -> Result<Vec<Tensor>> {
        let var = |t: &Tensor| candle_core::Var::from_tensor(&t.to_device(dev)?);
        let bn = TrainBatchNorm {
            gamma: var(&gamma)?,
            beta: var(&beta)?,
            running_mean: var(&Tensor::zeros(c, DType::F32, &Device::Cpu)?)?,
            running_var: var(&Tensor::ones(c, DType::F32, &Device::Cpu)?)?,
            eps: 1e-5,
        };
        let xv = var(&x)?;
        let y = bn.forward(xv.as_tensor(), true, true)?;
        let grads = (&y * &r.to_device(dev)?)?.sum_all()?.backward()?;
        let mut out = vec![y];
        for v in [&xv, &bn.gamma, &bn.beta] {
            let g = grads.get(v).ok_or_else(|| {
                candle_core::Error::Msg("batch norm: a gradient is missing".into())
            })?;
            out.push(g.clone());
        }
        out.push(bn.running_var.as_tensor().clone());
        out.iter().map(|t| Ok(t.to_device(&Device::Cpu)?)).collect()
    };
    let (here, cpu) = (run(device)?, run(&Device::Cpu)?);
    let mut out = serde_json::Map::new();
    for (i, name) in [
        "output",
        "input_gradient",
        "scale_gradient",
        "shift_gradient",
        "running_var",
    ]
    .iter()
    .enumerate()
    {
        let diff = (&here[i] - &cpu[i])?.abs()?.max_all()?.to_scalar::<f32>()?;
        let scale = cpu[i].abs()?.max_all()?.to_scalar::<f32>()?;
        out.insert(
            (*name).into(),
            json!({ "max_abs_diff": diff, "max_abs_value": scale }),
        );
    }
    Ok(out.into())
}

/// On a GPU: the same random batch through MobileNetV2 here and on the CPU, and the largest
/// feature difference, in f32 and bf16 (a quick check of the device's kernels; the full check
/// is engine/tests/gpu.rs).
fn agreement_check(args: &BenchArgs, device: &Device) -> Result<serde_json::Value> {
    let s = args.image_size as usize;
    let x = Tensor::randn(0f32, 1.0, (4, 3, s, s), &Device::Cpu)?;
    let cpu = Backbone::load("mobilenet_v2", args.image_size, None, 0, &Device::Cpu)?;
    let reference = cpu.features(&x, false)?;
    let scale = reference.abs()?.max_all()?.to_scalar::<f32>()?;
    let mut out = serde_json::Map::new();
    for dtype in [DType::F32, DType::BF16] {
        let mut b = Backbone::load("mobilenet_v2", args.image_size, None, 0, device)?;
        b.set_precision(dtype)?;
        let f = b
            .features(&x.to_device(device)?, false)?
            .to_dtype(DType::F32)?
            .to_device(&Device::Cpu)?;
        let diff = (f - &reference)?.abs()?.max_all()?.to_scalar::<f32>()?;
        out.insert(
            dtype.as_str().into(),
            json!({ "max_abs_diff": diff, "max_abs_feature": scale }),
        );
    }
    Ok(out.into())
}

pub fn run(args: BenchArgs) -> Result<ExitCode> {
    if let Some(dir) = &args.text_encoder {
        let texts = args.texts.as_deref();
        let batch = if args.batch == 0 { 32 } else { args.batch };
        return super::bench_text::run(dir, texts, args.count, batch, &args.device, args.json);
    }
    if args.sound {
        return super::bench_sound::run(args.clips.as_deref(), args.count, &args.device, args.json);
    }
    if args.reference {
        return run_with_reference(&args);
    }
    let decode = if args.no_decode {
        None
    } else {
        Some(decode_bench(&args)?)
    };
    let device = crate::device::open(&args.device)?;
    let batch = batch_size(&args, &device);
    let (extraction, fine_tune) = measure(&args, &device, batch)?;
    let agreement = if device.is_cpu() {
        None
    } else {
        let mut a = agreement_check(&args, &device)?;
        a["batch_norm_train"] = batch_norm_agreement(&device)?;
        Some(a)
    };
    let threads = rayon::current_num_threads();
    let result = json!({
        "agreement_with_cpu": agreement,
        "machine": { "threads": threads, "device": crate::device::label(&device), "os": std::env::consts::OS, "arch": std::env::consts::ARCH },
        "decode_resize": decode,
        "feature_extraction": extraction,
        "fine_tune_step": fine_tune,
    });
    if args.json {
        println!("{result}");
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(d) = &decode {
        println!(
            "decode + resize to {0}×{0} ({1}, {2} images):",
            args.image_size,
            d["source"].as_str().unwrap_or(""),
            d["images"]
        );
        println!(
            "  1 thread:   {:8.1} images/s",
            d["images_per_sec_1_thread"].as_f64().unwrap_or(0.0)
        );
        println!(
            "  {threads} threads: {:8.1} images/s",
            d["images_per_sec_all_threads"].as_f64().unwrap_or(0.0)
        );
    }
    for e in &extraction {
        println!(
            "MobileNetV2 feature extraction (batch {batch}, {0}×{0}, {1}, {2}):",
            args.image_size,
            e["dtype"].as_str().unwrap_or(""),
            crate::device::label(&device)
        );
        println!(
            "  {:8.1} images/s",
            e["images_per_sec"].as_f64().unwrap_or(0.0)
        );
        if !e["profile"].is_null() {
            super::bench_profile::print(&e["profile"]);
        }
    }
    if let Some(f) = &fine_tune {
        println!(
            "MobileNetV2 fine-tuning step (batch {}, last {} blocks + head, AdamW, {}):",
            args.fine_tune_batch,
            args.fine_tune_blocks,
            crate::device::label(&device)
        );
        println!(
            "  {:8.1} images/s",
            f["images_per_sec"].as_f64().unwrap_or(0.0)
        );
        if let Some(p) = f["profile"].as_object() {
            let ms = |k: &str| p.get(k).and_then(|v| v.as_f64()).unwrap_or(0.0);
            println!(
                "  per step: backbone forward {:.2} ms, head + loss {:.2} ms, backward {:.2} ms, optimizer {:.2} ms",
                ms("backbone_forward_ms"),
                ms("head_and_loss_ms"),
                ms("backward_ms"),
                ms("optimizer_ms")
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The backbone batch size: `--batch`, else 32 on the CPU and 256 on a GPU.
fn batch_size(args: &BenchArgs, device: &Device) -> usize {
    match args.batch {
        0 if device.is_cpu() => 32,
        0 => 256,
        n => n,
    }
}

/// Feature extraction at each precision and the fine-tuning step: their JSON.
fn measure(
    args: &BenchArgs,
    device: &Device,
    batch: usize,
) -> Result<(Vec<serde_json::Value>, Option<serde_json::Value>)> {
    let precisions = args.precision.clone().unwrap_or_else(|| {
        if device.is_cpu() {
            "f32".into()
        } else {
            "f32,tf32,bf16".into()
        }
    });
    let mut extraction = Vec::new();
    for name in precisions
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        // tf32: f32 tensors with cuBLAS allowed TF32 tensor cores — what PyTorch's default f32
        // convolutions do (`torch.backends.cudnn.allow_tf32` is on by default).
        let tf32 = name == "tf32";
        if tf32 && !device.is_cuda() {
            bail!("--precision tf32 needs a CUDA device");
        }
        let dtype = if tf32 {
            DType::F32
        } else {
            crate::device::precision(name, device)?
        };
        candle_core::cuda::set_gemm_reduced_precision_f32(tf32);
        let result = extract_bench(args, device, batch, dtype);
        candle_core::cuda::set_gemm_reduced_precision_f32(false);
        let (ips, profile) = result?;
        extraction.push(
            json!({ "backbone": "mobilenet_v2", "batch": batch, "batches": args.batches,
            "size": args.image_size, "dtype": if tf32 { "tf32" } else { dtype.as_str() },
            "images_per_sec": ips, "profile": profile }),
        );
    }
    let fine_tune = if args.fine_tune_batch > 0 {
        let (ips, profile) = fine_tune_bench(args, device)?;
        Some(
            json!({ "backbone": "mobilenet_v2", "batch": args.fine_tune_batch, "trainable_blocks": args.fine_tune_blocks,
            "steps": args.fine_tune_steps, "size": args.image_size,
            "frozen_dtype": crate::device::auto_precision(device).as_str(), "images_per_sec": ips,
            "profile": profile }),
        )
    } else {
        None
    };
    Ok((extraction, fine_tune))
}

/// `--reference`: Lathe and PyTorch alternating on one device, `--rounds` times each.
fn run_with_reference(args: &BenchArgs) -> Result<ExitCode> {
    let device = crate::device::open(&args.device)?;
    let batch = batch_size(args, &device);
    let scratch = std::env::temp_dir().join(format!("lathe-bench-{}", std::process::id()));
    let reference = super::bench_reference::Reference::locate(
        args.reference_python.as_deref(),
        args.reference_dir.as_deref(),
        &scratch,
    )?;
    let torch_device = super::bench_reference::torch_device(&args.device);
    let (mut lathe_runs, mut torch_runs) = (Vec::new(), Vec::new());
    let rounds = args.rounds.max(1);
    for round in 1..=rounds {
        eprintln!("round {round}/{rounds}: Lathe");
        let (extraction, fine_tune) = measure(args, &device, batch)?;
        lathe_runs.push(json!({ "feature_extraction": extraction, "fine_tune_step": fine_tune }));
        eprintln!("round {round}/{rounds}: PyTorch");
        torch_runs.push(reference.run(args, &torch_device, batch)?);
    }
    let _ = std::fs::remove_dir_all(&scratch);
    let summary = super::bench_reference::summarize(&lathe_runs, &torch_runs);
    let about = torch_runs.first().cloned().unwrap_or_default();
    if args.json {
        println!(
            "{}",
            json!({
                "machine": { "threads": rayon::current_num_threads(), "device": crate::device::label(&device), "os": std::env::consts::OS, "arch": std::env::consts::ARCH },
                "reference": about["reference"], "reference_threads": about["threads"],
                "batch": batch, "size": args.image_size, "rounds": rounds,
                "summary": summary, "lathe_runs": lathe_runs, "reference_runs": torch_runs,
            })
        );
    } else {
        super::bench_reference::print(&summary, &crate::device::label(&device), &about, rounds);
    }
    Ok(ExitCode::SUCCESS)
}
