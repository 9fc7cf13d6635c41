//! Checkpoints part-way through an epoch: training loops whose epochs can run long (image
//! fine-tuning, the object detector on big data) also checkpoint every [`interval`], recording
//! how far into the epoch they got, so a killed run loses minutes, not a whole epoch. The
//! shuffle of an epoch derives from the seed and the epoch number, so a resumed run skips exactly
//! the steps already trained.

use std::collections::HashMap;
use std::time::Duration;

/// Seconds between part-way checkpoints.
pub const INTERVAL_SECS: u64 = 600;

/// How often a long epoch is checkpointed part-way: [`INTERVAL_SECS`], or
/// `LATHE_CHECKPOINT_SECS` from the environment (0: after every step).
pub fn interval() -> Duration {
    let secs = std::env::var("LATHE_CHECKPOINT_SECS")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(INTERVAL_SECS);
    Duration::from_secs(secs)
}

/// How far a checkpoint written part-way through an epoch had got into it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Part {
    /// Steps (batches) of the epoch already trained.
    pub steps: usize,
    /// The epoch's running loss sum, correct predictions and examples (or objects) so far.
    pub loss_sum: f64,
    pub correct: usize,
    pub seen: usize,
}

impl Part {
    /// Checkpoint metadata entries (`{}` prints an f64 that parses back to the same bits).
    pub fn meta(&self) -> Vec<(&'static str, String)> {
        vec![
            ("part_steps", self.steps.to_string()),
            ("part_loss_sum", self.loss_sum.to_string()),
            ("part_correct", self.correct.to_string()),
            ("part_seen", self.seen.to_string()),
        ]
    }

    /// Reads [`Part::meta`] back: `None` for a checkpoint written at the end of an epoch, `Err`
    /// naming the entry that does not parse.
    pub fn from_meta(meta: &HashMap<String, String>) -> Result<Option<Self>, &'static str> {
        if !meta.contains_key("part_steps") {
            return Ok(None);
        }
        fn get<T: std::str::FromStr>(
            meta: &HashMap<String, String>,
            key: &'static str,
        ) -> Result<T, &'static str> {
            meta.get(key).and_then(|v| v.parse().ok()).ok_or(key)
        }
        Ok(Some(Self {
            steps: get(meta, "part_steps")?,
            loss_sum: get(meta, "part_loss_sum")?,
            correct: get(meta, "part_correct").unwrap_or(0),
            seen: get(meta, "part_seen")?,
        }))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn part_round_trips_through_metadata_bit_for_bit() {
        let part = Part {
            steps: 7,
            loss_sum: 0.1 + 0.2,
            correct: 3,
            seen: 14,
        };
        let meta: HashMap<String, String> = part
            .meta()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        let back = Part::from_meta(&meta).unwrap().unwrap();
        assert_eq!(back.loss_sum.to_bits(), part.loss_sum.to_bits());
        assert_eq!(back, part);
        assert_eq!(Part::from_meta(&HashMap::new()), Ok(None));
        let mut broken = meta.clone();
        broken.insert("part_seen".into(), "x".into());
        assert_eq!(Part::from_meta(&broken), Err("part_seen"));
    }
}
