//! What turns one window of raw 16 kHz samples into the feature vector a sound head learns from:
//! CREPE-tiny embeddings pooled over time (`transfer`), Google's speech embedding pooled over time
//! (`speech`: words and phrases, built in), Whisper tiny.en's encoder rows pooled over time
//! (`whisper`: speech, languages, speakers), or the classic statistics of the log-mel
//! spectrogram — per band the mean, the standard deviation and the standard deviation of the
//! frame-to-frame change (`statistics`: no weights, seconds to train, and strong on small sets
//! of clean recordings). Frames of exact digital silence (zero padding of a clip shorter than a
//! window) are left out of the statistics, so a 0.3 s clip is described by its 0.3 s.

use crate::data::audio_frontend::{FrontEndConfig, LogMel};
use crate::error::Result;
use crate::nets::crepe::Crepe;
use crate::nets::speech_embedding::{self, SpeechEmbedding};
use crate::nets::whisper_encoder::{self, WhisperEncoder};
use crate::templates::sound::transfer as sound_transfer;
use candle_core::{Device, Tensor};

/// A window encoder.
pub enum Encoder {
    Crepe(Box<Crepe>),
    LogMelStats(Box<LogMel>),
    Whisper(Box<WhisperEncoder>),
    Speech(Box<SpeechEmbedding>),
}

/// Statistics per log-mel band: mean, standard deviation, standard deviation of the delta.
pub const STATS_PER_BAND: usize = 3;

impl Encoder {
    /// The log-mel statistics encoder on the sound front end `cfg`.
    pub fn statistics(cfg: &FrontEndConfig) -> Self {
        Self::LogMelStats(Box::new(LogMel::new(cfg.clone())))
    }

    /// The id written to `config.json` (`encoder`).
    pub fn id(&self) -> &'static str {
        match self {
            Self::Crepe(_) => "crepe_tiny",
            Self::LogMelStats(_) => "logmel_stats",
            Self::Whisper(_) => "whisper_tiny_en",
            Self::Speech(_) => "speech_embedding",
        }
    }

    /// The candidate's name in the report and the `algorithm` parameter.
    pub fn algorithm(&self) -> &'static str {
        match self {
            Self::Crepe(_) => "transfer",
            Self::LogMelStats(_) => "statistics",
            Self::Whisper(_) => "whisper",
            Self::Speech(_) => "speech",
        }
    }

    pub fn feature_dim(&self) -> usize {
        match self {
            Self::Crepe(_) => sound_transfer::FEATURE_DIM,
            Self::LogMelStats(m) => STATS_PER_BAND * m.cfg.n_mels,
            Self::Whisper(w) => 2 * w.dim,
            Self::Speech(_) => 2 * speech_embedding::EMBED_DIM,
        }
    }

    /// A stable string that changes whenever the features of windows of `window` samples
    /// every `hop` would (part of the cache key; CREPE's is the one earlier versions used).
    pub fn signature(&self, window: usize, hop: usize) -> String {
        match self {
            Self::Crepe(c) => format!(
                "crepe_tiny/{}/win{window}/hop{hop}/frame_hop{}/std2pass",
                c.weights_hash,
                sound_transfer::FRAME_HOP
            ),
            Self::LogMelStats(m) => format!(
                "logmel_stats/v1/win{window}/hop{hop}/{}",
                serde_json::to_string(&m.cfg).unwrap_or_default()
            ),
            Self::Whisper(w) => format!(
                "whisper_tiny_en/{}/win{window}/hop{hop}/trimmed-mean-std",
                w.weights_hash
            ),
            Self::Speech(s) => format!(
                "speech_embedding/{}/win{window}/hop{hop}/trimmed-mean-std",
                s.weights_hash
            ),
        }
    }

    /// Weights to store with the model (`encoder.*`), if any.
    pub fn tensors(&self) -> Vec<(String, Tensor)> {
        match self {
            Self::Crepe(c) => c
                .tensors
                .iter()
                .map(|(k, v)| (format!("encoder.{k}"), v.clone()))
                .collect(),
            Self::Speech(s) => s
                .tensors
                .iter()
                .map(|(k, v)| (format!("encoder.{k}"), v.clone()))
                .collect(),
            Self::Whisper(w) => w
                .tensors
                .iter()
                .map(|(k, v)| (format!("encoder.{k}"), v.clone()))
                .collect(),
            Self::LogMelStats(_) => Vec::new(),
        }
    }

    /// Features of each window.
    pub fn window_features(&self, windows: &[Vec<f32>], device: &Device) -> Result<Vec<Vec<f32>>> {
        match self {
            Self::Crepe(c) => sound_transfer::window_features(c, windows, device),
            Self::LogMelStats(m) => Ok(windows.iter().map(|w| log_mel_stats(m, w)).collect()),
            Self::Whisper(w) => windows
                .iter()
                .map(|x| w.embed_pooled(trim_padding(x, whisper_encoder::MIN_SAMPLES)))
                .collect(),
            Self::Speech(s) => windows
                .iter()
                .map(|x| {
                    let rows = s.embed(trim_padding(x, speech_embedding::MIN_SAMPLES))?;
                    mean_and_std_over_rows(&rows)
                })
                .collect(),
        }
    }
}

/// The mean over rows of `[rows, dim]`, then the standard deviation (population) over rows.
fn mean_and_std_over_rows(rows: &Tensor) -> Result<Vec<f32>> {
    let rows = rows.to_dtype(candle_core::DType::F32)?;
    let mean = rows.mean_keepdim(0)?;
    let std = rows.broadcast_sub(&mean)?.sqr()?.mean(0)?.sqrt()?;
    Ok(Tensor::cat(&[mean.squeeze(0)?, std], 0)?.to_vec1()?)
}

/// `window` without the digital silence that pads a clip shorter than a window (trailing exact
/// zeros), keeping at least `min` samples: an encoder that pools over time then describes the
/// clip's sound rather than the padding.
pub fn trim_padding(window: &[f32], min: usize) -> &[f32] {
    let end = window
        .iter()
        .rposition(|&v| v != 0.0)
        .map_or(0, |i| i + 1)
        .max(min)
        .min(window.len());
    &window[..end]
}

/// Mean, standard deviation and delta standard deviation of each band over the window's
/// non-silent frames.
pub fn log_mel_stats(mel: &LogMel, window: &[f32]) -> Vec<f32> {
    let bands = mel.cfg.n_mels.max(1);
    let mut frames = Vec::new();
    mel.frames(window, &mut frames);
    let floor = mel.cfg.log_offset.ln() + 1e-3;
    let all: Vec<&[f32]> = frames.chunks_exact(bands).collect();
    let sounding: Vec<&[f32]> = all
        .iter()
        .copied()
        .filter(|f| f.iter().any(|&v| v > floor))
        .collect();
    let rows = if sounding.is_empty() { all } else { sounding };
    let n = rows.len().max(1) as f64;
    let mut out = vec![0f32; STATS_PER_BAND * bands];
    for b in 0..bands {
        let mean = rows.iter().map(|r| r[b] as f64).sum::<f64>() / n;
        let var = rows
            .iter()
            .map(|r| (r[b] as f64 - mean).powi(2))
            .sum::<f64>()
            / n;
        let deltas: Vec<f64> = rows
            .windows(2)
            .map(|p| (p[1][b] - p[0][b]) as f64)
            .collect();
        let dn = deltas.len().max(1) as f64;
        let dmean = deltas.iter().sum::<f64>() / dn;
        let dvar = deltas.iter().map(|d| (d - dmean).powi(2)).sum::<f64>() / dn;
        out[b] = mean as f32;
        out[bands + b] = var.sqrt() as f32;
        out[2 * bands + b] = dvar.sqrt() as f32;
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn statistics_ignore_padding_and_tell_tones_apart() {
        let cfg = FrontEndConfig::new(1.0, 0.5, false);
        let enc = Encoder::statistics(&cfg);
        let tone = |f: f32, len: usize, padded: usize| -> Vec<f32> {
            let mut x: Vec<f32> = (0..len)
                .map(|i| (2.0 * std::f32::consts::PI * f * i as f32 / 16_000.0).sin() * 0.3)
                .collect();
            x.resize(padded, 0.0);
            x
        };
        // A quarter-second clip padded to one window or to half a window: the padding is left
        // out, so both describe the same sound exactly.
        let f = enc
            .window_features(
                &[
                    tone(440.0, 4_000, 16_000),
                    tone(440.0, 4_000, 8_000),
                    tone(2_000.0, 4_000, 16_000),
                ],
                &Device::Cpu,
            )
            .unwrap();
        assert_eq!(f[0].len(), enc.feature_dim());
        let dist = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum::<f32>();
        assert!(dist(&f[0], &f[1]) < 1e-3, "{}", dist(&f[0], &f[1]));
        assert!(dist(&f[0], &f[2]) > 10.0, "{}", dist(&f[0], &f[2]));
    }
}
