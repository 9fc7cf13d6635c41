//! The sound front end: 16 kHz samples → log-mel frames (25 ms Hann window, 10 ms hop, 512-point
//! `realfft`, 64 HTK-mel triangles over 125–7500 Hz, natural log of power + 1e-6) → optional
//! silence trimming → fixed windows of ~1 s with overlap. Everything streams: samples go in by
//! chunks and windows come out as soon as they are complete.

use realfft::{RealFftPlanner, RealToComplex};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::sync::Arc;

/// Front-end settings; written to `feature_extractor_config.json` with the model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FrontEndConfig {
    pub sample_rate: u32,
    /// Analysis window in samples (400 = 25 ms).
    pub win_length: usize,
    /// Hop between frames in samples (160 = 10 ms).
    pub hop_length: usize,
    pub n_fft: usize,
    pub n_mels: usize,
    pub fmin_hz: f32,
    pub fmax_hz: f32,
    /// Added to mel power before the log.
    pub log_offset: f32,
    /// Frames per classification window (100 = 1 s).
    pub window_frames: usize,
    /// Frames between window starts.
    pub window_hop_frames: usize,
    /// Drop leading and trailing frames quieter than `silence_threshold_db`.
    pub trim_silence: bool,
    /// Frame RMS, dBFS, below which a frame counts as silence.
    pub silence_threshold_db: f32,
}

impl FrontEndConfig {
    /// The standard front end with windows of `window_secs` overlapping by `overlap` (0–0.9).
    pub fn new(window_secs: f64, overlap: f64, trim_silence: bool) -> Self {
        let window_frames = ((window_secs * 100.0).round() as usize).max(8);
        let hop = ((window_frames as f64 * (1.0 - overlap.clamp(0.0, 0.95))).round() as usize)
            .clamp(1, window_frames);
        Self {
            sample_rate: 16_000,
            win_length: 400,
            hop_length: 160,
            n_fft: 512,
            n_mels: 64,
            fmin_hz: 125.0,
            fmax_hz: 7500.0,
            log_offset: 1e-6,
            window_frames,
            window_hop_frames: hop,
            trim_silence,
            silence_threshold_db: -50.0,
        }
    }

    /// Values per window (`window_frames × n_mels`, time-major).
    pub fn window_len(&self) -> usize {
        self.window_frames * self.n_mels
    }
}

fn hz_to_mel(f: f64) -> f64 {
    2595.0 * (1.0 + f / 700.0).log10()
}

fn mel_to_hz(m: f64) -> f64 {
    700.0 * (10f64.powf(m / 2595.0) - 1.0)
}

/// Triangular HTK-mel filters: for each band, the first FFT bin and the weights from there.
pub fn mel_filters(cfg: &FrontEndConfig) -> Vec<(usize, Vec<f32>)> {
    let bins = cfg.n_fft / 2 + 1;
    let (lo, hi) = (hz_to_mel(cfg.fmin_hz as f64), hz_to_mel(cfg.fmax_hz as f64));
    let points: Vec<f64> = (0..cfg.n_mels + 2)
        .map(|i| mel_to_hz(lo + (hi - lo) * i as f64 / (cfg.n_mels + 1) as f64))
        .collect();
    let bin_hz = cfg.sample_rate as f64 / cfg.n_fft as f64;
    (0..cfg.n_mels)
        .map(|m| {
            let (left, center, right) = (points[m], points[m + 1], points[m + 2]);
            let weights: Vec<(usize, f32)> = (0..bins)
                .filter_map(|k| {
                    let f = k as f64 * bin_hz;
                    let w = ((f - left) / (center - left)).min((right - f) / (right - center));
                    (w > 0.0).then_some((k, w as f32))
                })
                .collect();
            let first = weights.first().map_or(0, |w| w.0);
            (first, weights.into_iter().map(|w| w.1).collect())
        })
        .collect()
}

/// Log-mel analysis of single frames (shareable across threads; scratch is per call).
pub struct LogMel {
    pub cfg: FrontEndConfig,
    window: Vec<f32>,
    filters: Vec<(usize, Vec<f32>)>,
    fft: Arc<dyn RealToComplex<f32>>,
}

impl LogMel {
    pub fn new(cfg: FrontEndConfig) -> Self {
        let window = (0..cfg.win_length)
            .map(|n| {
                0.5 - 0.5
                    * (2.0 * std::f64::consts::PI * n as f64 / cfg.win_length as f64).cos() as f32
            })
            .collect();
        let filters = mel_filters(&cfg);
        let fft = RealFftPlanner::<f32>::new().plan_fft_forward(cfg.n_fft);
        Self {
            cfg,
            window,
            filters,
            fft,
        }
    }

    /// Log-mel of every full frame of `samples` (no centering: frame i starts at i × hop),
    /// appended to `out` time-major.
    pub fn frames(&self, samples: &[f32], out: &mut Vec<f32>) {
        let mut scratch = Scratch::new(self);
        let (win, hop) = (self.cfg.win_length, self.cfg.hop_length);
        let mut start = 0;
        while start + win <= samples.len() {
            self.frame(&samples[start..start + win], &mut scratch, out);
            start += hop;
        }
    }

    /// Log-mel of one frame of `win_length` samples, appended to `out`; returns its RMS in dBFS.
    fn frame(&self, frame: &[f32], s: &mut Scratch, out: &mut Vec<f32>) -> f32 {
        let mut energy = 0f32;
        for ((dst, &x), &w) in s.input.iter_mut().zip(frame).zip(&self.window) {
            *dst = x * w;
            energy += x * x;
        }
        for dst in s.input.iter_mut().skip(frame.len()) {
            *dst = 0.0;
        }
        // Lengths are fixed by the plan, so this cannot fail.
        let _ = self
            .fft
            .process_with_scratch(&mut s.input, &mut s.spectrum, &mut s.fft_scratch);
        for (p, c) in s.power.iter_mut().zip(&s.spectrum) {
            *p = c.re * c.re + c.im * c.im;
        }
        for (first, weights) in &self.filters {
            let bins = s.power.get(*first..).unwrap_or(&[]);
            let e: f32 = bins.iter().zip(weights).map(|(p, w)| p * w).sum();
            out.push((e + self.cfg.log_offset).ln());
        }
        10.0 * (energy / frame.len().max(1) as f32 + 1e-12).log10()
    }
}

struct Scratch {
    input: Vec<f32>,
    spectrum: Vec<realfft::num_complex::Complex<f32>>,
    fft_scratch: Vec<realfft::num_complex::Complex<f32>>,
    power: Vec<f32>,
}

impl Scratch {
    fn new(m: &LogMel) -> Self {
        Self {
            input: m.fft.make_input_vec(),
            spectrum: m.fft.make_output_vec(),
            fft_scratch: m.fft.make_scratch_vec(),
            power: vec![0.0; m.cfg.n_fft / 2 + 1],
        }
    }
}

/// Streams samples into windows: push chunks of 16 kHz samples, get `window_frames × n_mels`
/// windows (time-major) through the callback; `finish` emits the tail.
pub struct WindowStream<'a> {
    mel: &'a LogMel,
    scratch: Scratch,
    samples: Vec<f32>,
    frame_buf: Vec<f32>,
    /// The last `window_frames` frames.
    frames: VecDeque<Vec<f32>>,
    /// Trailing quiet frames held back until a loud one arrives (silence trimming).
    quiet: Vec<Vec<f32>>,
    seen_sound: bool,
    since_window: usize,
    frames_in: usize,
    windows_out: usize,
}

impl<'a> WindowStream<'a> {
    pub fn new(mel: &'a LogMel) -> Self {
        Self {
            mel,
            scratch: Scratch::new(mel),
            samples: Vec::new(),
            frame_buf: Vec::with_capacity(mel.cfg.n_mels),
            frames: VecDeque::new(),
            quiet: Vec::new(),
            seen_sound: false,
            since_window: 0,
            frames_in: 0,
            windows_out: 0,
        }
    }

    /// Feeds samples; calls `emit` with each finished window.
    pub fn push(&mut self, chunk: &[f32], emit: &mut dyn FnMut(&[f32])) {
        self.samples.extend_from_slice(chunk);
        let (win, hop) = (self.mel.cfg.win_length, self.mel.cfg.hop_length);
        let mut start = 0;
        while start + win <= self.samples.len() {
            self.frame_buf.clear();
            let db = self.mel.frame(
                &self.samples[start..start + win],
                &mut self.scratch,
                &mut self.frame_buf,
            );
            let frame = std::mem::take(&mut self.frame_buf);
            self.frame_buf = Vec::with_capacity(self.mel.cfg.n_mels);
            self.accept(frame, db, emit);
            start += hop;
        }
        self.samples.drain(..start.min(self.samples.len()));
    }

    fn accept(&mut self, frame: Vec<f32>, db: f32, emit: &mut dyn FnMut(&[f32])) {
        if self.mel.cfg.trim_silence {
            let loud = db >= self.mel.cfg.silence_threshold_db;
            if !loud {
                if self.seen_sound {
                    self.quiet.push(frame);
                }
                return;
            }
            self.seen_sound = true;
            for q in std::mem::take(&mut self.quiet) {
                self.add_frame(q, emit);
            }
        }
        self.add_frame(frame, emit);
    }

    fn add_frame(&mut self, frame: Vec<f32>, emit: &mut dyn FnMut(&[f32])) {
        let w = self.mel.cfg.window_frames;
        self.frames.push_back(frame);
        if self.frames.len() > w {
            self.frames.pop_front();
        }
        self.frames_in += 1;
        self.since_window += 1;
        let first = self.windows_out == 0 && self.frames_in == w;
        if first || (self.windows_out > 0 && self.since_window >= self.mel.cfg.window_hop_frames) {
            self.emit_window(emit);
        }
    }

    fn emit_window(&mut self, emit: &mut dyn FnMut(&[f32])) {
        let cfg = &self.mel.cfg;
        let silence = cfg.log_offset.ln();
        let mut window = Vec::with_capacity(cfg.window_len());
        for f in &self.frames {
            window.extend_from_slice(f);
        }
        window.resize(cfg.window_len(), silence);
        emit(&window);
        self.windows_out += 1;
        self.since_window = 0;
    }

    /// Emits the last window: the padded clip when it was shorter than one window, or the final
    /// frames when more than a quarter window came in since the last one; a silent clip still
    /// gives one (silent) window. Returns the number of
    /// windows emitted in all.
    pub fn finish(mut self, emit: &mut dyn FnMut(&[f32])) -> usize {
        let w = self.mel.cfg.window_frames;
        if self.windows_out == 0 {
            // A clip shorter than one window (or all silence when trimming): pad with silence.
            if self.frames.is_empty() && !self.samples.is_empty() && !self.mel.cfg.trim_silence {
                let mut padded = std::mem::take(&mut self.samples);
                padded.resize(self.mel.cfg.win_length, 0.0);
                let mut f = Vec::new();
                self.mel.frame(&padded, &mut self.scratch, &mut f);
                self.frames.push_back(f);
            }
            self.emit_window(emit);
        } else if self.since_window > w / 4 {
            self.emit_window(emit);
        }
        self.windows_out
    }
}

/// All windows of an in-memory clip (each `window_len()` values).
pub fn windows(mel: &LogMel, samples: &[f32]) -> Vec<Vec<f32>> {
    let mut out = Vec::new();
    let mut s = WindowStream::new(mel);
    s.push(samples, &mut |w| out.push(w.to_vec()));
    s.finish(&mut |w| out.push(w.to_vec()));
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn tone(freq: f32, secs: f32) -> Vec<f32> {
        (0..(16_000.0 * secs) as usize)
            .map(|i| (2.0 * std::f32::consts::PI * freq * i as f32 / 16_000.0).sin() * 0.3)
            .collect()
    }

    #[test]
    fn filters_cover_the_band_and_peak_where_a_tone_is() {
        let cfg = FrontEndConfig::new(1.0, 0.5, false);
        let f = mel_filters(&cfg);
        assert_eq!(f.len(), 64);
        assert!(f.iter().all(|(_, w)| !w.is_empty()));
        let mel = LogMel::new(cfg);
        let mut out = Vec::new();
        mel.frames(&tone(1000.0, 0.1), &mut out);
        assert_eq!(out.len(), 8 * 64);
        let frame = &out[64..128];
        let peak = (0..64)
            .max_by(|&a, &b| frame[a].total_cmp(&frame[b]))
            .unwrap();
        // 1 kHz sits at mel 1000 → band (1000-mel(125))/(step) ≈ 19.
        let (lo, hi) = (hz_to_mel(125.0), hz_to_mel(7500.0));
        let expected = ((hz_to_mel(1000.0) - lo) / ((hi - lo) / 65.0)).round() as usize - 1;
        assert!(peak.abs_diff(expected) <= 1, "{peak} vs {expected}");
    }

    #[test]
    fn windows_overlap_pad_and_trim() {
        let mel = LogMel::new(FrontEndConfig::new(1.0, 0.5, false));
        // 3 s = 298 frames: windows at 0, 50, 100, 150 and the tail (ends at 298).
        assert_eq!(windows(&mel, &tone(440.0, 3.0)).len(), 5);
        // Short clip: one padded window whose tail is the silence value.
        let w = windows(&mel, &tone(440.0, 0.3));
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].len(), 6400);
        assert!((w[0][6399] - (1e-6f32).ln()).abs() < 1e-6);
        // Streaming in odd chunks gives the same windows as one push.
        let x = tone(300.0, 2.2);
        let whole = windows(&mel, &x);
        let mut s = WindowStream::new(&mel);
        let mut chunked = Vec::new();
        for c in x.chunks(777) {
            s.push(c, &mut |w| chunked.push(w.to_vec()));
        }
        s.finish(&mut |w| chunked.push(w.to_vec()));
        assert_eq!(whole, chunked);
        // Trimming: 1 s of silence + 0.5 s tone + 1 s silence → the tone's frames only.
        let trim = LogMel::new(FrontEndConfig::new(1.0, 0.5, true));
        let mut x = vec![0.0; 16_000];
        x.extend(tone(500.0, 0.5));
        x.extend(vec![0.0; 16_000]);
        let w = windows(&trim, &x);
        assert_eq!(w.len(), 1);
        let silence = (1e-6f32).ln();
        assert!(w[0][..64].iter().any(|&v| v > silence + 5.0));
        // Frames 0..~48 are the tone, then padding.
        assert!(w[0][60 * 64..].iter().all(|&v| v == silence));
        let silent = windows(&trim, &vec![0.0; 16_000]);
        assert_eq!(silent.len(), 1);
        assert!(silent[0].iter().all(|&v| v == silence));
    }
}
