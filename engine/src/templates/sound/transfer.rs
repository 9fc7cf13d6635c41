//! Transfer learning for the sound classifier: each window of raw 16 kHz audio becomes the mean
//! and standard deviation over time of CREPE-tiny embeddings (1024-sample frames every 40 ms,
//! 256 values each → 512 features); a logistic or MLP head (`train::fit`) learns the classes.
//! Features are cached by file content, window and encoder, so a second run skips the encoder.
//!
//! Why CREPE tiny: it is the only pretrained audio encoder available offline here with a license
//! that allows embedding (MIT) and a size that does (1 MB in float16); its filters were learned on
//! real recordings of voices and instruments, so its embeddings describe harmonic structure and
//! timbre — what instrument families differ by. Larger encoders (Whisper, AST) need a download.

use crate::error::Result;
use crate::nets::crepe::{self, Crepe};
use candle_core::{Device, Tensor};

/// Samples between CREPE frames inside a window (40 ms).
pub const FRAME_HOP: usize = 640;
/// Features per window: mean and std of the 256-value embeddings.
pub const FEATURE_DIM: usize = 2 * crepe::EMBED_DIM;
/// Frames per encoder batch.
const FRAME_BATCH: usize = 256;

/// Cuts a stream of samples into windows of `win` samples every `hop` samples, with the same
/// rules as the log-mel windows: a clip shorter than a window is zero-padded to one, and a tail
/// longer than a quarter window after the last full window gets a final window ending at the end.
pub struct SampleWindower {
    win: usize,
    hop: usize,
    buf: Vec<f32>,
    next: usize,
    count: usize,
}

impl SampleWindower {
    pub fn new(win: usize, hop: usize) -> Self {
        Self {
            win: win.max(1),
            hop: hop.clamp(1, win.max(1)),
            buf: Vec::new(),
            next: 0,
            count: 0,
        }
    }

    pub fn push(&mut self, chunk: &[f32], emit: &mut dyn FnMut(&[f32])) {
        self.buf.extend_from_slice(chunk);
        while self.next + self.win <= self.buf.len() {
            emit(&self.buf[self.next..self.next + self.win]);
            self.next += self.hop;
            self.count += 1;
        }
        // Keep the last window (for the tail rule) and what follows it.
        let last_start = if self.count > 0 {
            self.next - self.hop
        } else {
            0
        };
        self.buf.drain(..last_start);
        self.next -= last_start;
    }

    pub fn finish(mut self, emit: &mut dyn FnMut(&[f32])) -> usize {
        if self.count == 0 {
            self.buf.resize(self.win, 0.0);
            emit(&self.buf);
            return 1;
        }
        let last_end = self.next - self.hop + self.win;
        if self.buf.len() > last_end && self.buf.len() - last_end > self.win / 4 {
            emit(&self.buf[self.buf.len() - self.win..]);
            self.count += 1;
        }
        self.count
    }
}

/// All sample windows of an in-memory clip.
pub fn sample_windows(x: &[f32], win: usize, hop: usize) -> Vec<Vec<f32>> {
    let mut out = Vec::new();
    let mut w = SampleWindower::new(win, hop);
    w.push(x, &mut |s| out.push(s.to_vec()));
    w.finish(&mut |s| out.push(s.to_vec()));
    out
}

/// Window features (`FEATURE_DIM` each) of raw sample windows.
pub fn window_features(
    encoder: &Crepe,
    windows: &[Vec<f32>],
    device: &Device,
) -> Result<Vec<Vec<f32>>> {
    // Frames of every window, and how many each window has.
    let mut frames: Vec<f32> = Vec::new();
    let mut counts = Vec::with_capacity(windows.len());
    for w in windows {
        let mut n = 0;
        let mut start = 0;
        loop {
            let end = start + crepe::FRAME;
            if end <= w.len() {
                frames.extend_from_slice(&w[start..end]);
            } else if n == 0 {
                frames.extend_from_slice(&w[start..]);
                frames.resize(frames.len() + end - w.len(), 0.0);
            } else {
                break;
            }
            n += 1;
            start += FRAME_HOP;
        }
        counts.push(n);
    }
    let total = frames.len() / crepe::FRAME;
    let mut embeddings: Vec<Vec<f32>> = Vec::with_capacity(total);
    for start in (0..total).step_by(FRAME_BATCH) {
        let end = (start + FRAME_BATCH).min(total);
        let x = Tensor::from_slice(
            &frames[start * crepe::FRAME..end * crepe::FRAME],
            (end - start, crepe::FRAME),
            device,
        )?;
        embeddings.extend(encoder.embed(&x)?.to_vec2::<f32>()?);
    }
    let mut out = Vec::with_capacity(windows.len());
    let mut at = 0;
    for n in counts {
        let rows = embeddings.get(at..at + n).unwrap_or(&[]);
        at += n;
        let d = crepe::EMBED_DIM;
        let k = rows.len().max(1) as f32;
        let mut mean = vec![0f32; d];
        for r in rows {
            for (m, v) in mean.iter_mut().zip(r) {
                *m += v;
            }
        }
        for m in &mut mean {
            *m /= k;
        }
        // Two passes: E[(x − mean)²], not E[x²] − mean², which loses the variance of nearly
        // constant embeddings (a steady tone) to f32 cancellation.
        let mut var = vec![0f32; d];
        for r in rows {
            for ((s, m), v) in var.iter_mut().zip(&mean).zip(r) {
                *s += (v - m) * (v - m);
            }
        }
        let mut f = Vec::with_capacity(FEATURE_DIM);
        f.extend_from_slice(&mean);
        f.extend(var.iter().map(|s| (s / k).sqrt()));
        out.push(f);
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn sample_windows_follow_the_mel_rules() {
        let x: Vec<f32> = (0..48_000).map(|i| i as f32).collect();
        let w = sample_windows(&x, 16_000, 8_000);
        // starts 0, 8000, 16000, 24000, 32000 (ends at 48000): no tail needed.
        assert_eq!(w.len(), 5);
        assert_eq!(w[4][15_999], 47_999.0);
        let w = sample_windows(&x[..30_000], 16_000, 8_000);
        // 0, 8000 and a tail window ending at 30000 (6000 > 4000 samples left).
        assert_eq!(w.len(), 3);
        assert_eq!(w[2][0], 14_000.0);
        let w = sample_windows(&x[..5_000], 16_000, 8_000);
        assert_eq!(w.len(), 1);
        assert_eq!(w[0][4_999], 4_999.0);
        assert_eq!(w[0][5_000], 0.0);
        let mut s = SampleWindower::new(16_000, 8_000);
        let mut chunked = Vec::new();
        for c in x[..30_000].chunks(999) {
            s.push(c, &mut |v| chunked.push(v.to_vec()));
        }
        s.finish(&mut |v| chunked.push(v.to_vec()));
        assert_eq!(chunked, sample_windows(&x[..30_000], 16_000, 8_000));
    }

    #[test]
    fn crepe_hears_440_hz_and_embeds_windows() {
        let enc = Crepe::load(None, &Device::Cpu).unwrap();
        let tone = |f: f32| -> Vec<f32> {
            (0..16_000)
                .map(|i| (2.0 * std::f32::consts::PI * f * i as f32 / 16_000.0).sin() * 0.5)
                .collect()
        };
        // Golden: CREPE's own pitch classifier reads the tone's pitch (20-cent bins).
        let x = tone(440.0);
        let frames = Tensor::from_slice(&x[..4096], (4, 1024), &Device::Cpu).unwrap();
        let hz = enc.pitch_hz(&frames).unwrap().unwrap();
        for h in hz {
            assert!((h / 440.0 - 1.0).abs() < 0.02, "{h} Hz");
        }
        let f = window_features(&enc, &[x, tone(1000.0)], &Device::Cpu).unwrap();
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].len(), FEATURE_DIM);
        let diff: f32 = f[0].iter().zip(&f[1]).map(|(a, b)| (a - b).abs()).sum();
        assert!(diff > 1.0, "{diff}");
    }
}
