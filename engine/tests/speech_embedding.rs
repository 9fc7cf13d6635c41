//! Google's speech embedding port (nets::speech_embedding, embedded f16 weights) against the
//! original graph run by ONNX Runtime (`scripts/speech_embedding_reference.py` →
//! `tests/data/speech_embedding_golden.json`): the log-mel frames and the embeddings of a
//! chirp/tone/noise mix, a short clip (padded to one window) and two spoken words. The
//! embeddings are checked tightly against the graph with the same float16-rounded conv weights
//! (the port itself) and within float16's rounding against the float32 original (the stored
//! weights). Plus the edges (empty, short, non-finite input), the batching in chunks, and that
//! different words give different, deterministic embeddings. No network access, CPU only.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use candle_core::{Device, Tensor};
use lathe_engine::nets::speech_embedding::{self as se, SpeechEmbedding};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

fn model() -> &'static SpeechEmbedding {
    static M: OnceLock<SpeechEmbedding> = OnceLock::new();
    M.get_or_init(|| SpeechEmbedding::load(None, &Device::Cpu).unwrap())
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
    let u = lcg_noise(24_000, 12_345);
    (0..24_000)
        .map(|n| {
            let t = n as f64 / 16_000.0;
            let tau = 2.0 * std::f64::consts::PI;
            let x = 0.3 * (tau * (150.0 * t + 1000.0 * t * t)).sin()
                + 0.15 * (tau * 440.0 * t).sin()
                + 0.05 * u[n];
            (x * (0.6 + 0.4 * (tau * 2.0 * t).sin())) as f32
        })
        .collect()
}

fn short() -> Vec<f32> {
    let u = lcg_noise(8_000, 777);
    (0..8_000)
        .map(|n| {
            let t = n as f64 / 16_000.0;
            let env = (std::f64::consts::PI * t / 0.5).sin().powi(2);
            (0.4 * (2.0 * std::f64::consts::PI * 1000.0 * t).sin() * env + 0.02 * u[n]) as f32
        })
        .collect()
}

fn wav(word: &str) -> Vec<f32> {
    let path = data().join(format!("speech_embedding_{word}.wav"));
    let mut r = hound::WavReader::open(&path).unwrap();
    assert_eq!(r.spec().sample_rate, se::SAMPLE_RATE);
    r.samples::<i16>()
        .map(|s| s.unwrap() as f32 / 32768.0)
        .collect()
}

fn matrix(v: &Value) -> Vec<Vec<f32>> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect()
        })
        .collect()
}

/// max |a − b| and max |b|, shapes checked.
fn delta(got: &Tensor, want: &[Vec<f32>], what: &str) -> (f32, f32) {
    let got: Vec<Vec<f32>> = got.to_vec2().unwrap();
    assert_eq!(got.len(), want.len(), "{what}: rows");
    let (mut d, mut scale) = (0f32, 0f32);
    for (g, w) in got.iter().zip(want) {
        assert_eq!(g.len(), w.len(), "{what}: columns");
        for (a, b) in g.iter().zip(w) {
            d = d.max((a - b).abs());
            scale = scale.max(b.abs());
        }
    }
    (d, scale)
}

#[test]
fn log_mel_and_embeddings_match_the_original_graph() {
    let text = std::fs::read_to_string(data().join("speech_embedding_golden.json")).unwrap();
    let golden: Value = serde_json::from_str(&text).unwrap();
    let m = model();
    let mut worst_rel_original = 0f32;
    for name in ["mix", "short", "hello", "seven"] {
        let g = &golden["signals"][name];
        let x = match name {
            "mix" => mix(),
            // The fixture holds the graph's output on the zero-padded clip; the port pads itself.
            "short" => short(),
            w => wav(w),
        };
        let n = g["num_samples"].as_u64().unwrap() as usize;
        assert_eq!(x.len().max(se::MIN_SAMPLES), n, "{name}: samples");

        let (dm, mel_scale) = delta(&m.log_mel(&x).unwrap(), &matrix(&g["mel"]), name);
        let emb = m.embed(&x).unwrap();
        assert_eq!(
            emb.dims2().unwrap(),
            (se::num_windows(x.len()), se::EMBED_DIM)
        );
        let (d16, scale) = delta(&emb, &matrix(&g["embeddings_f16"]), name);
        let (d32, _) = delta(&emb, &matrix(&g["embeddings"]), name);
        eprintln!(
            "{name}: log-mel max|Δ| {dm:.2e} (scale {mel_scale:.2}); embeddings max|Δ| {d16:.2e} \
             vs f16-weight graph, {d32:.2e} vs f32 original (scale {scale:.1}: {:.2e} relative)",
            d32 / scale
        );
        // Same arithmetic up to f32 summation order: the DFT and the mel matrix are exact.
        assert!(dm <= 2e-4, "{name}: log-mel off by {dm}");
        // The port against the graph with the very weights it stores.
        assert!(
            d16 <= 1e-5 * scale,
            "{name}: embeddings off by {d16} (scale {scale})"
        );
        // The f16 weights against the published f32 ones.
        assert!(
            d32 <= 2e-3 * scale,
            "{name}: f16 weights cost {d32} (scale {scale})"
        );
        worst_rel_original = worst_rel_original.max(d32 / scale);
    }
    eprintln!("worst relative max|Δ| vs the f32 original: {worst_rel_original:.2e}");
}

#[test]
fn empty_short_and_bad_input() {
    let m = model();
    let err = m.embed(&[]).unwrap_err().to_string();
    assert!(err.contains("no samples"), "{err}");
    let err = m.embed(&[0.1, f32::NAN, 0.2]).unwrap_err().to_string();
    assert!(err.contains("sample 1"), "{err}");
    let too_few_frames = Tensor::zeros((75, 32), candle_core::DType::F32, &Device::Cpu).unwrap();
    assert!(m.embed_log_mel(&too_few_frames).is_err());

    // Shorter than one window: zero-padded at the end, so equal to padding by hand.
    let x = short();
    let tiny = &x[3_000..3_100];
    let mut padded = tiny.to_vec();
    padded.resize(se::MIN_SAMPLES, 0.0);
    let a: Vec<Vec<f32>> = m.embed(tiny).unwrap().to_vec2().unwrap();
    let b: Vec<Vec<f32>> = m.embed(&padded).unwrap().to_vec2().unwrap();
    assert_eq!(a.len(), 1);
    assert_eq!(a, b);

    // Window count: one per 8 frames once the first 76 are there.
    for (n, want) in [
        (1, 1),
        (se::MIN_SAMPLES, 1),
        (se::MIN_SAMPLES + se::HOP_SAMPLES - 1, 1),
        (se::MIN_SAMPLES + se::HOP_SAMPLES, 2),
        (16_000, 3),
        (32_000, 16),
    ] {
        assert_eq!(se::num_windows(n), want, "{n} samples");
        let noise: Vec<f32> = lcg_noise(n, 5).iter().map(|&v| 0.1 * v as f32).collect();
        assert_eq!(
            m.embed(&noise).unwrap().dims2().unwrap(),
            (want, 96),
            "{n} samples"
        );
    }
}

#[test]
fn chunked_batches_equal_one_window_at_a_time() {
    // 50 s: 616 windows = 9 chunks of 64 (one call of 8, one of 1) and a remainder of 40.
    let n = 50 * 16_000;
    let u = lcg_noise(n, 99);
    let x: Vec<f32> = (0..n)
        .map(|i| {
            let t = i as f64 / 16_000.0;
            let f = 300.0 + 200.0 * (0.7 * t).sin();
            (0.3 * (2.0 * std::f64::consts::PI * f * t).sin() + 0.05 * u[i]) as f32
        })
        .collect();
    let m = model();
    let t0 = std::time::Instant::now();
    let mel = m.log_mel(&x).unwrap();
    let mel_secs = t0.elapsed().as_secs_f64();
    let t0 = std::time::Instant::now();
    let all: Vec<Vec<f32>> = m.embed(&x).unwrap().to_vec2().unwrap();
    let secs = t0.elapsed().as_secs_f64();
    eprintln!(
        "log-mel of {} frames alone: {mel_secs:.3} s",
        mel.dims2().unwrap().0
    );
    assert_eq!(all.len(), se::num_windows(n));
    assert_eq!(all.len(), 616);
    assert!(all.len() > se::CHUNK_WINDOWS * (se::CHUNKS_PER_CALL + 1));
    eprintln!(
        "{} windows ({} s of audio) in {:.3} s on the CPU: {:.0} windows/s",
        all.len(),
        n / 16_000,
        secs,
        all.len() as f64 / secs
    );
    for w in [0, 1, 63, 64, 65, 511, 512, 575, 576, all.len() - 1] {
        let start = w * se::HOP_SAMPLES;
        let one: Vec<Vec<f32>> = m
            .embed(&x[start..start + se::MIN_SAMPLES])
            .unwrap()
            .to_vec2()
            .unwrap();
        let d = one[0]
            .iter()
            .zip(&all[w])
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(d < 1e-3, "window {w}: {d}");
    }
}

fn mean_row(t: &Tensor) -> Vec<f32> {
    let rows: Vec<Vec<f32>> = t.to_vec2().unwrap();
    (0..se::EMBED_DIM)
        .map(|j| rows.iter().map(|r| r[j]).sum::<f32>() / rows.len() as f32)
        .collect()
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb)
}

#[test]
fn different_words_differ_and_embeddings_are_deterministic() {
    let m = model();
    let hello = wav("hello");
    let seven = wav("seven");
    let h1 = m.embed(&hello).unwrap();
    let h2 = m.embed(&hello).unwrap();
    let a: Vec<Vec<f32>> = h1.to_vec2().unwrap();
    let b: Vec<Vec<f32>> = h2.to_vec2().unwrap();
    assert_eq!(a, b, "same input, same embeddings");

    // The same word at half the level stays closer to itself than to another word.
    let quieter: Vec<f32> = hello.iter().map(|v| v * 0.5).collect();
    let h = mean_row(&h1);
    let q = mean_row(&m.embed(&quieter).unwrap());
    let s = mean_row(&m.embed(&seven).unwrap());
    let (same, other) = (cosine(&h, &q), cosine(&h, &s));
    eprintln!("cosine(hello, hello at -6 dB) {same:.4}, cosine(hello, seven) {other:.4}");
    assert!(same > 0.99, "{same}");
    assert!(
        other < same - 0.02,
        "hello vs seven {other}, vs itself quieter {same}"
    );
    let d = h
        .iter()
        .zip(&s)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max);
    assert!(d > 1.0, "hello and seven differ by at most {d}");
}
