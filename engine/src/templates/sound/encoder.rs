//! What turns one window of raw 16 kHz samples into the feature vector a sound head learns from:
//! CREPE-tiny embeddings pooled over time (`transfer`), Google's speech embedding pooled over time
//! (`speech`: words and phrases, built in), Whisper tiny.en's encoder rows pooled over time
//! (`whisper`: speech, languages, speakers), YAMNet's AudioSet embedding of the window's 0.96 s
//! patches, averaged (`yamnet`: sound events, instruments, environments; a 1 s window is one
//! patch), or the classic statistics of the log-mel
//! spectrogram (`statistics`: no weights, seconds to train, and strong on small sets of clean
//! recordings). The statistics (`logmel_mfcc_stats`) are, in this order: per band the mean, the
//! standard deviation and the standard deviation of the frame-to-frame change (`3 × n_mels`),
//! then the standard deviation of each of 20 MFCCs and of their frame-to-frame change (`2 × 20`).
//! The MFCCs are the log-mel rows times the DCT-II matrix `cos(π / n_mels · (m + ½) · k)`,
//! `k = 0..20` (no scaling; the head standardizes its inputs). Models saved before the MFCC parts
//! name `logmel_stats` and keep their `3 × n_mels` layout. Frames of exact digital silence (zero
//! padding of a clip shorter than a window) are left out of the statistics, so a 0.3 s clip is
//! described by its 0.3 s; standard deviations are population ones (divided by the count, the
//! deltas' count at least 1), deltas are between consecutive kept frames.

use crate::data::audio_frontend::{FrontEndConfig, LogMel};
use crate::error::Result;
use crate::nets::crepe::Crepe;
use crate::nets::speech_embedding::{self, SpeechEmbedding};
use crate::nets::whisper_encoder::{self, WhisperEncoder};
use crate::nets::yamnet::{self, Yamnet};
use crate::templates::sound::transfer as sound_transfer;
use candle_core::{Device, Tensor};

/// A window encoder.
pub enum Encoder {
    Crepe(Box<Crepe>),
    LogMelStats(Box<StatsEncoder>),
    Whisper(Box<WhisperEncoder>),
    Speech(Box<SpeechEmbedding>),
    Yamnet(Box<Yamnet>),
}

/// The log-mel statistics encoder: its front end and its feature layout.
pub struct StatsEncoder {
    pub mel: LogMel,
    /// Whether the MFCC standard deviations follow the per-band statistics
    /// (`logmel_mfcc_stats`); without them, the layout of models saved as `logmel_stats`.
    pub mfcc: bool,
}

/// Statistics per log-mel band: mean, standard deviation, standard deviation of the delta.
pub const STATS_PER_BAND: usize = 3;

/// MFCCs whose standard deviation and delta standard deviation the statistics add.
pub const N_MFCC: usize = 20;

/// The encoder id of the statistics with the MFCC parts (what training writes now).
pub const MFCC_STATS_ID: &str = "logmel_mfcc_stats";

/// The encoder id of the per-band statistics alone (models saved before the MFCC parts).
pub const STATS_ID: &str = "logmel_stats";

/// The encoder id of YAMNet's embedding (`config.json`'s `encoder`).
pub const YAMNET_ID: &str = "yamnet";

impl Encoder {
    /// The log-mel statistics encoder on the sound front end `cfg`, with the MFCC parts.
    pub fn statistics(cfg: &FrontEndConfig) -> Self {
        Self::statistics_layout(cfg, true)
    }

    /// The log-mel statistics encoder on `cfg`; `mfcc` false gives the `logmel_stats` layout.
    pub fn statistics_layout(cfg: &FrontEndConfig, mfcc: bool) -> Self {
        Self::LogMelStats(Box::new(StatsEncoder {
            mel: LogMel::new(cfg.clone()),
            mfcc,
        }))
    }

    /// The id written to `config.json` (`encoder`).
    pub fn id(&self) -> &'static str {
        match self {
            Self::Crepe(_) => "crepe_tiny",
            Self::LogMelStats(s) if s.mfcc => MFCC_STATS_ID,
            Self::LogMelStats(_) => STATS_ID,
            Self::Whisper(_) => "whisper_tiny_en",
            Self::Speech(_) => "speech_embedding",
            Self::Yamnet(_) => YAMNET_ID,
        }
    }

    /// The candidate's name in the report and the `algorithm` parameter.
    pub fn algorithm(&self) -> &'static str {
        match self {
            Self::Crepe(_) => "transfer",
            Self::LogMelStats(_) => "statistics",
            Self::Whisper(_) => "whisper",
            Self::Speech(_) => "speech",
            Self::Yamnet(_) => "yamnet",
        }
    }

    pub fn feature_dim(&self) -> usize {
        match self {
            Self::Crepe(_) => sound_transfer::FEATURE_DIM,
            Self::LogMelStats(s) => stats_dim(s.mel.cfg.n_mels, s.mfcc),
            Self::Whisper(w) => 2 * w.dim,
            Self::Speech(_) => 2 * speech_embedding::EMBED_DIM,
            Self::Yamnet(_) => yamnet::EMBED_DIM,
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
            Self::LogMelStats(s) if s.mfcc => format!(
                "{MFCC_STATS_ID}/v1/mfcc{N_MFCC}/win{window}/hop{hop}/{}",
                serde_json::to_string(&s.mel.cfg).unwrap_or_default()
            ),
            Self::LogMelStats(s) => format!(
                "{STATS_ID}/v1/win{window}/hop{hop}/{}",
                serde_json::to_string(&s.mel.cfg).unwrap_or_default()
            ),
            Self::Whisper(w) => format!(
                "whisper_tiny_en/{}/win{window}/hop{hop}/trimmed-mean-std",
                w.weights_hash
            ),
            Self::Speech(s) => format!(
                "speech_embedding/{}/win{window}/hop{hop}/trimmed-mean-std",
                s.weights_hash
            ),
            Self::Yamnet(y) => format!(
                "{YAMNET_ID}/{}/win{window}/hop{hop}/trimmed-patch-mean",
                y.weights_hash
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
            Self::Yamnet(y) => y
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
            Self::LogMelStats(s) => Ok(windows
                .iter()
                .map(|w| log_mel_stats(&s.mel, w, s.mfcc))
                .collect()),
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
            Self::Yamnet(y) => {
                let trimmed: Vec<&[f32]> = windows
                    .iter()
                    .map(|x| trim_padding(x, yamnet::MIN_SAMPLES))
                    .collect();
                y.embed_windows(&trimmed)
            }
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

/// Features of the statistics layout on `n_mels` bands, with or without the MFCC parts.
pub fn stats_dim(n_mels: usize, mfcc: bool) -> usize {
    STATS_PER_BAND * n_mels + if mfcc { 2 * N_MFCC } else { 0 }
}

/// The DCT-II matrix `[N_MFCC][n_mels]`: `cos(π / n_mels · (m + ½) · k)` (no scaling).
pub fn dct_matrix(n_mels: usize) -> Vec<Vec<f64>> {
    (0..N_MFCC)
        .map(|k| {
            (0..n_mels)
                .map(|m| (std::f64::consts::PI / n_mels as f64 * (m as f64 + 0.5) * k as f64).cos())
                .collect()
        })
        .collect()
}

/// Population standard deviation of `v` (0 when empty).
fn std_of(v: &[f64]) -> f64 {
    let n = v.len().max(1) as f64;
    let mean = v.iter().sum::<f64>() / n;
    (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt()
}

/// Mean, standard deviation and delta standard deviation of each band over the window's
/// non-silent frames; with `mfcc`, then the standard deviation of each MFCC and of its delta
/// over the same frames (the layout of [`stats_dim`]).
pub fn log_mel_stats(mel: &LogMel, window: &[f32], mfcc: bool) -> Vec<f32> {
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
    let mut out = vec![0f32; stats_dim(bands, mfcc)];
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
    if mfcc {
        let base = STATS_PER_BAND * bands;
        for (k, basis) in dct_matrix(bands).iter().enumerate() {
            let coef: Vec<f64> = rows
                .iter()
                .map(|r| r.iter().zip(basis).map(|(&v, c)| v as f64 * c).sum())
                .collect();
            let deltas: Vec<f64> = coef.windows(2).map(|p| p[1] - p[0]).collect();
            out[base + k] = std_of(&coef) as f32;
            out[base + N_MFCC + k] = std_of(&deltas) as f32;
        }
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

    #[test]
    fn mfcc_parts_are_the_dct_of_the_kept_rows_and_ignore_padding() {
        let cfg = FrontEndConfig::new(1.0, 0.5, false);
        let enc = Encoder::statistics(&cfg);
        let legacy = Encoder::statistics_layout(&cfg, false);
        assert_eq!(enc.id(), "logmel_mfcc_stats");
        assert_eq!(legacy.id(), "logmel_stats");
        let bands = cfg.n_mels;
        assert_eq!(enc.feature_dim(), 3 * bands + 40);
        assert_eq!(legacy.feature_dim(), 3 * bands);
        assert_ne!(
            enc.signature(16_000, 8_000),
            legacy.signature(16_000, 8_000)
        );
        // A chirp with a tremolo over 0.4 s, zero-padded to one window.
        let sound: Vec<f32> = (0..6_400)
            .map(|i| {
                let t = i as f32 / 16_000.0;
                let f = 300.0 + 2_000.0 * t;
                (2.0 * std::f32::consts::PI * f * t).sin()
                    * (0.2 + 0.15 * (2.0 * std::f32::consts::PI * 7.0 * t).sin())
            })
            .collect();
        let mut padded = sound.clone();
        padded.resize(16_000, 0.0);
        let mut half = sound.clone();
        half.resize(8_000, 0.0);
        let f = enc
            .window_features(&[padded.clone(), half], &Device::Cpu)
            .unwrap();
        let old = legacy.window_features(&[padded], &Device::Cpu).unwrap();
        assert_eq!(f[0].len(), enc.feature_dim());
        // The per-band part is the old layout exactly.
        assert_eq!(&f[0][..3 * bands], &old[0][..]);
        // Padding is left out: the same features with a window's or half a window's zeros.
        let gap = f[0]
            .iter()
            .zip(&f[1])
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(gap < 1e-4, "{gap}");

        // Direct: the log-mel rows of the frames that hold some of the sound (those starting
        // before its end; the rest are all padding), the DCT of each row, and the population
        // standard deviations of the coefficients and their deltas.
        let mel = LogMel::new(cfg.clone());
        let mut frames = Vec::new();
        let mut padded = sound.clone();
        padded.resize(16_000, 0.0);
        mel.frames(&padded, &mut frames);
        let all: Vec<&[f32]> = frames.chunks_exact(bands).collect();
        let kept = sound.len().div_ceil(cfg.hop_length);
        let silent = cfg.log_offset.ln();
        assert!(
            all[kept..]
                .iter()
                .flat_map(|r| r.iter())
                .all(|&v| v == silent)
        );
        let rows = &all[..kept];
        let std = |v: &[f64]| {
            let m = v.iter().sum::<f64>() / v.len() as f64;
            (v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / v.len() as f64).sqrt()
        };
        for k in 0..20 {
            let c: Vec<f64> = rows
                .iter()
                .map(|r| {
                    (0..bands)
                        .map(|m| {
                            r[m] as f64
                                * (std::f64::consts::PI / bands as f64
                                    * (m as f64 + 0.5)
                                    * k as f64)
                                    .cos()
                        })
                        .sum()
                })
                .collect();
            let d: Vec<f64> = c.windows(2).map(|p| p[1] - p[0]).collect();
            let (want_std, want_dstd) = (std(&c), std(&d));
            let (got_std, got_dstd) = (f[0][3 * bands + k] as f64, f[0][3 * bands + 20 + k] as f64);
            assert!(
                (got_std - want_std).abs() <= 1e-5 * want_std.max(1.0),
                "mfcc {k}: {got_std} vs {want_std}"
            );
            assert!(
                (got_dstd - want_dstd).abs() <= 1e-5 * want_dstd.max(1.0),
                "mfcc delta {k}: {got_dstd} vs {want_dstd}"
            );
        }
        // Not all trivially zero.
        assert!(f[0][3 * bands..].iter().all(|&v| v > 0.0));
    }
}
