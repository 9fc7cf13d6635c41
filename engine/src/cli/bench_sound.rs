//! `lathe bench --sound`: how many one-second clips per second each of the sound classifier's
//! encoders turns into features on this machine — the step that dominates a sound run's first
//! training (later runs read the feature cache). Encoders whose weights are not installed are
//! listed with the script that installs them, not measured.

use crate::data::audio_decode::{self, AUDIO_EXTENSIONS, SAMPLE_RATE};
use crate::data::audio_frontend::FrontEndConfig;
use crate::nets::crepe::Crepe;
use crate::nets::speech_embedding::SpeechEmbedding;
use crate::nets::weights;
use crate::nets::whisper_encoder::{self, WhisperEncoder};
use crate::nets::yamnet::{self, Yamnet};
use crate::templates::sound::encoder::Encoder;
use anyhow::{Result, bail};
use candle_core::Device;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

/// Samples in one benchmark clip (the sound classifier's default window).
const CLIP: usize = SAMPLE_RATE as usize;

/// Windows handed to an encoder at once (as training hands them).
const CHUNK: usize = 64;

fn collect_clips(dir: &Path, limit: usize, out: &mut Vec<PathBuf>) {
    let Ok(entries) = crate::fsutil::sorted_entries(dir) else {
        return;
    };
    for e in entries {
        if out.len() >= limit {
            return;
        }
        if e.is_dir() {
            collect_clips(&e, limit, out);
        } else if e.extension().is_some_and(|x| {
            AUDIO_EXTENSIONS.contains(&x.to_string_lossy().to_lowercase().as_str())
        }) {
            out.push(e);
        }
    }
}

/// `count` one-second clips: the first second of each sound file under `dir` (padded with
/// silence when shorter), or generated ones (a gliding tone with harmonics over noise).
fn clips(dir: Option<&Path>, count: usize) -> Result<(String, Vec<Vec<f32>>)> {
    let Some(dir) = dir else {
        let mut seed = 0x9e37_79b9_u32;
        let generated = (0..count)
            .map(|i| {
                let f0 = 110.0 + 40.0 * (i % 11) as f32;
                (0..CLIP)
                    .map(|t| {
                        seed ^= seed << 13;
                        seed ^= seed >> 17;
                        seed ^= seed << 5;
                        let noise = (seed as f32 / u32::MAX as f32 - 0.5) * 0.02;
                        let s = t as f32 / SAMPLE_RATE as f32;
                        let f = f0 * (1.0 + 0.5 * s);
                        let phase = std::f32::consts::TAU * f * s;
                        0.3 * phase.sin() + 0.1 * (2.0 * phase).sin() + noise
                    })
                    .collect()
            })
            .collect();
        return Ok(("generated 1 s tones over noise".into(), generated));
    };
    let mut paths = Vec::new();
    collect_clips(dir, count, &mut paths);
    if paths.is_empty() {
        bail!(
            "no sound files ({}) found under {}",
            AUDIO_EXTENSIONS.join(", "),
            dir.display()
        );
    }
    let mut out = Vec::with_capacity(paths.len());
    for p in &paths {
        let (mut x, _) = audio_decode::decode_to_vec(p, CLIP)
            .map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
        x.resize(CLIP, 0.0);
        out.push(x);
    }
    Ok((dir.display().to_string(), out))
}

/// The encoders of `algorithm = auto`, each loaded or the reason it cannot be.
fn encoders(device: &Device) -> Vec<(&'static str, std::result::Result<Encoder, String>)> {
    let missing = |script: &str| {
        let folder = weights::weights_dir()
            .map(|d| d.display().to_string())
            .unwrap_or_else(|| "$LATHE_WEIGHTS_DIR".into());
        format!("not installed: {script} puts its weights in the weights folder ({folder})")
    };
    let installed = |spec: &weights::WeightsSpec| weights::available(spec).is_some();
    let err = |e: crate::error::Error| e.to_string();
    let frontend = FrontEndConfig::new(1.0, 0.0, false);
    vec![
        ("statistics", Ok(Encoder::statistics(&frontend))),
        (
            "speech",
            SpeechEmbedding::load(None, device)
                .map(|m| Encoder::Speech(Box::new(m)))
                .map_err(err),
        ),
        (
            "transfer",
            Crepe::load(None, device)
                .map(|m| Encoder::Crepe(Box::new(m)))
                .map_err(err),
        ),
        (
            "yamnet",
            if installed(&yamnet::weights_spec()) {
                Yamnet::load(None, device)
                    .map(|m| Encoder::Yamnet(Box::new(m)))
                    .map_err(err)
            } else {
                Err(missing("scripts/fetch-yamnet.sh"))
            },
        ),
        (
            "whisper",
            if installed(&whisper_encoder::weights_spec()) {
                WhisperEncoder::load(None, device)
                    .map(|m| Encoder::Whisper(Box::new(m)))
                    .map_err(err)
            } else {
                Err(missing("scripts/fetch-whisper-tiny.sh"))
            },
        ),
    ]
}

/// Clips per second of `encoder` over `clips`, after one warm-up chunk.
fn measure(encoder: &Encoder, clips: &[Vec<f32>], device: &Device) -> Result<(f64, f64)> {
    let warm = &clips[..CHUNK.min(clips.len())];
    encoder.window_features(warm, device)?;
    let t = Instant::now();
    for chunk in clips.chunks(CHUNK) {
        encoder.window_features(chunk, device)?;
    }
    let secs = t.elapsed().as_secs_f64();
    Ok((clips.len() as f64 / secs, secs))
}

pub fn run(dir: Option<&Path>, count: usize, device: &str, as_json: bool) -> Result<ExitCode> {
    let device = crate::device::open(device)?;
    let (source, clips) = clips(dir, count.max(1))?;
    let threads = rayon::current_num_threads();
    let label = crate::device::label(&device);
    if !as_json {
        println!(
            "Sound encoders ({source}, {} clips of 1 s, {label}, {threads} threads):",
            clips.len()
        );
    }
    let mut rows: Vec<Value> = Vec::new();
    for (algorithm, encoder) in encoders(&device) {
        let row = match encoder {
            Ok(encoder) => {
                let (rate, secs) = measure(&encoder, &clips, &device)?;
                if !as_json {
                    println!(
                        "  {algorithm:<11} {:<18} {rate:9.1} clips/s  ({} features)",
                        encoder.id(),
                        encoder.feature_dim()
                    );
                }
                json!({ "algorithm": algorithm, "encoder": encoder.id(), "features": encoder.feature_dim(),
                        "clips": clips.len(), "seconds": secs, "clips_per_sec": rate })
            }
            Err(why) => {
                if !as_json {
                    println!("  {algorithm:<11} {why}");
                }
                json!({ "algorithm": algorithm, "skipped": why })
            }
        };
        rows.push(row);
    }
    if as_json {
        println!(
            "{}",
            json!({
                "machine": { "threads": threads, "device": label, "os": std::env::consts::OS, "arch": std::env::consts::ARCH },
                "sound_encoders": { "source": source, "clip_secs": 1.0, "encoders": rows },
            })
        );
    }
    Ok(ExitCode::SUCCESS)
}
