//! Generated motion recordings for the activity classifier's app tests: a folder per activity of
//! one CSV per session (`timestamp,acc_x,acc_y,acc_z` at 50 Hz). Walking is gravity plus a ~2 Hz
//! gait with harmonics; sitting is gravity tilted forward with a slow sway; both with noise,
//! seeded (a smaller cousin of the engine tests' gait model in engine/tests/activity.rs).

use std::fmt::Write as _;
use std::path::Path;

/// Samples per second of the generated recordings.
pub const RATE: f64 = 50.0;
/// The activities, in folder order.
pub const ACTIVITIES: [&str; 2] = ["sitting", "walking"];

/// splitmix64 in [0, 1).
fn unit(state: &mut u64) -> f64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
}

/// `n` rows `[acc_x, acc_y, acc_z]` of `activity` ("walking" or "sitting"), from sample `from`.
pub fn samples(activity: &str, n: usize, from: usize, seed: u64) -> Vec<[f64; 3]> {
    let mut s = seed.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ 0x5eed;
    let cadence = 1.7 + 0.4 * unit(&mut s);
    let phase = std::f64::consts::TAU * unit(&mut s);
    (from..from + n)
        .map(|i| {
            let t = i as f64 / RATE;
            let w = std::f64::consts::TAU * cadence * t + phase;
            let noise = 0.1 * (unit(&mut s) - 0.5);
            if activity == "walking" {
                let gait = 2.5 * (w.sin() + 0.35 * (2.0 * w).sin());
                [
                    0.6 * (0.5 * w).sin() + noise,
                    0.5 * gait + noise,
                    9.8 + gait + noise,
                ]
            } else {
                let sway = 0.05 * (0.3 * t + phase).sin();
                [8.5 + sway + noise, 0.3 + noise, 4.9 + sway + noise]
            }
        })
        .collect()
}

/// A CSV of `parts` (activity, samples) played one after the other.
pub fn recording_csv(parts: &[(&str, usize)], seed: u64) -> String {
    let mut out = String::from("timestamp,acc_x,acc_y,acc_z\n");
    let mut i = 0;
    for (activity, n) in parts {
        for r in samples(activity, *n, i, seed) {
            let _ = writeln!(
                out,
                "{:.3},{:.4},{:.4},{:.4}",
                i as f64 / RATE,
                r[0],
                r[1],
                r[2]
            );
            i += 1;
        }
    }
    out
}

/// `root/<activity>/NNN.csv`: `per_class` sessions of `n` samples for each activity.
pub fn activity_folders(root: &Path, per_class: usize, n: usize) {
    for (a, activity) in ACTIVITIES.iter().enumerate() {
        let dir = root.join(activity);
        std::fs::create_dir_all(&dir).unwrap();
        for k in 0..per_class {
            let seed = 1000 * a as u64 + k as u64;
            std::fs::write(
                dir.join(format!("{k:03}.csv")),
                recording_csv(&[(activity, n)], seed),
            )
            .unwrap();
        }
    }
}
