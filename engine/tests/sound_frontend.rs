//! The sound front end against independent references: every supported format decodes to the
//! same 16 kHz mono tone (committed fixtures in `assets/sound-fixtures`), and the log-mel frames
//! match numpy's float64 computation (`scripts/mel-reference.py` → `tests/data/mel_golden.json`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use lathe_engine::data::audio_decode;
use lathe_engine::data::audio_frontend::{FrontEndConfig, LogMel};
use std::path::Path;

fn fixtures() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/sound-fixtures")
}

#[test]
fn every_format_decodes_to_the_same_16k_mono_tone() {
    for name in [
        "tone-440hz.flac",
        "tone-440hz.ogg",
        "tone-440hz.mp3",
        "tone-440hz.m4a",
        "tone-440hz-ulaw.wav",
        "tone-440hz-24bit-48k.wav",
    ] {
        let path = fixtures().join(name);
        let bytes = std::fs::read(&path).unwrap();
        audio_decode::probe(&path, &bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        let (x, _) = audio_decode::decode_to_vec(&path, usize::MAX)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        // 0.5 s; lossy codecs add priming / padding frames.
        assert!(
            (7_900..=9_500).contains(&x.len()),
            "{name}: {} samples",
            x.len()
        );
        // Pitch from zero crossings in the middle, level from the peak.
        let mid = &x[1_500..6_500];
        let crossings = mid.windows(2).filter(|w| w[0] < 0.0 && w[1] >= 0.0).count();
        let hz = crossings as f32 * 16_000.0 / mid.len() as f32;
        assert!((hz - 440.0).abs() < 8.0, "{name}: {hz} Hz");
        let peak = mid.iter().fold(0f32, |m, v| m.max(v.abs()));
        assert!((0.4..0.6).contains(&peak), "{name}: peak {peak}");
    }
}

#[test]
fn corrupt_payloads_name_a_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let flac = std::fs::read(fixtures().join("tone-440hz.flac")).unwrap();
    let mut bad = flac.clone();
    for b in bad.iter_mut().skip(200) {
        *b = 0x55;
    }
    let path = tmp.path().join("bad.flac");
    std::fs::write(&path, &bad).unwrap();
    // Either an error or far fewer samples than the real file: never a panic.
    match audio_decode::decode_to_vec(&path, usize::MAX) {
        Err(e) => assert!(!e.is_empty()),
        Ok((x, _)) => assert!(x.len() < 8_000, "{}", x.len()),
    }
    let empty = tmp.path().join("empty.ogg");
    std::fs::write(&empty, b"").unwrap();
    assert!(audio_decode::probe(&empty, b"").is_err());
    assert!(audio_decode::decode_to_vec(&empty, usize::MAX).is_err());
}

#[test]
fn log_mel_matches_the_numpy_reference() {
    let golden: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/mel_golden.json"),
        )
        .unwrap(),
    )
    .unwrap();
    // The signal scripts/mel-reference.py describes.
    let x: Vec<f32> = (0..32_000)
        .map(|n| {
            let t = n as f64 / 16_000.0;
            let tau = 2.0 * std::f64::consts::PI;
            let s = 0.3 * (tau * 440.0 * t).sin()
                + 0.2 * (tau * 2500.0 * t + 0.5).sin()
                + 0.1 * (tau * (100.0 * t + 1500.0 * t * t)).sin();
            (s * (0.5 + 0.5 * (tau * 1.5 * t).sin())) as f32
        })
        .collect();
    let mel = LogMel::new(FrontEndConfig::new(1.0, 0.5, false));
    let mut frames = Vec::new();
    mel.frames(&x, &mut frames);
    assert_eq!(
        frames.len() / 64,
        golden["num_frames"].as_u64().unwrap() as usize
    );
    for (i, reference) in golden["frames"].as_object().unwrap() {
        let i: usize = i.parse().unwrap();
        let ours = &frames[i * 64..(i + 1) * 64];
        for (b, (a, r)) in ours.iter().zip(reference.as_array().unwrap()).enumerate() {
            let r = r.as_f64().unwrap() as f32;
            // f32 FFT vs float64: tight where there is energy, looser near the log floor.
            let tol = if r > -5.0 { 2e-3 } else { 2e-2 };
            assert!((a - r).abs() <= tol, "frame {i} band {b}: {a} vs numpy {r}");
        }
    }
}
