//! Frame-time measurement: how long each frame's logic + drawing took on the UI thread (and,
//! under eframe, the whole frame's CPU time including tessellation and painting), split into
//! frames drawn while a training ran and the rest. `--frame-stats FILE` writes the percentiles
//! as JSON when the app closes (see docs/benchmarks.md, `## App`).

use serde::Serialize;
use std::time::Duration;

/// Samples kept per kind (older ones are dropped).
const CAPACITY: usize = 100_000;

/// Recorded frame times (milliseconds).
#[derive(Default)]
pub struct FrameStats {
    training: Vec<f32>,
    idle: Vec<f32>,
    full_training: Vec<f32>,
    full_idle: Vec<f32>,
}

/// Percentiles of one kind of frame, in milliseconds.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Percentiles {
    pub frames: usize,
    pub p50_ms: f32,
    pub p90_ms: f32,
    pub p99_ms: f32,
    pub max_ms: f32,
}

/// Both kinds.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Summary {
    /// The app's logic + UI code per frame, while training.
    pub while_training: Option<Percentiles>,
    pub otherwise: Option<Percentiles>,
    /// eframe's CPU time of whole frames (UI + tessellation + painting), while training.
    pub full_frame_while_training: Option<Percentiles>,
    pub full_frame_otherwise: Option<Percentiles>,
}

impl FrameStats {
    /// Records the app's own time for one frame.
    pub fn record(&mut self, took: Duration, training: bool) {
        let v = if training {
            &mut self.training
        } else {
            &mut self.idle
        };
        push(v, took.as_secs_f32() * 1000.0);
    }

    /// Records eframe's CPU time of a whole frame.
    pub fn record_full(&mut self, secs: f32, training: bool) {
        let v = if training {
            &mut self.full_training
        } else {
            &mut self.full_idle
        };
        push(v, secs * 1000.0);
    }

    pub fn summary(&self) -> Summary {
        Summary {
            while_training: percentiles(&self.training),
            otherwise: percentiles(&self.idle),
            full_frame_while_training: percentiles(&self.full_training),
            full_frame_otherwise: percentiles(&self.full_idle),
        }
    }
}

fn push(v: &mut Vec<f32>, ms: f32) {
    if v.len() >= CAPACITY {
        v.drain(..CAPACITY / 2);
    }
    v.push(ms);
}

fn percentiles(samples: &[f32]) -> Option<Percentiles> {
    if samples.is_empty() {
        return None;
    }
    let mut s = samples.to_vec();
    s.sort_by(f32::total_cmp);
    let at = |q: f32| {
        let i = ((s.len() - 1) as f32 * q).round() as usize;
        s.get(i).copied().unwrap_or(0.0)
    };
    Some(Percentiles {
        frames: s.len(),
        p50_ms: at(0.5),
        p90_ms: at(0.9),
        p99_ms: at(0.99),
        max_ms: at(1.0),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_known_samples() {
        let mut f = FrameStats::default();
        for ms in 1..=100 {
            f.record(Duration::from_millis(ms), true);
        }
        let p = f.summary().while_training.unwrap();
        assert_eq!(p.frames, 100);
        assert!((p.p50_ms - 50.0).abs() < 1.01, "{p:?}");
        assert!((p.p99_ms - 99.0).abs() < 1.01, "{p:?}");
        assert!((p.max_ms - 100.0).abs() < 0.01);
        assert!(f.summary().otherwise.is_none());
    }
}
