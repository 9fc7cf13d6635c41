//! How a run that goes wrong says so: a loss that became NaN or infinite stops training with one
//! message (the epoch, the parameter to lower, where the best checkpoint is), and a device that
//! ran out of memory gets a message suggesting a smaller batch instead of the driver's text.
//! Every training loop (head fitting, fine-tuning, the sound CNN, the detector, logistic GLMs)
//! goes through [`check_loss`].

use crate::error::{Error, Result};
use std::path::Path;

/// `Ok` while `loss` is finite; otherwise [`Error::Diverged`] naming the epoch, the
/// learning-rate parameter to lower (`knob`, with its value now and a suggestion), and the
/// checkpoint folder when it holds a checkpoint from an earlier epoch.
pub fn check_loss(
    loss: f64,
    epoch: usize,
    knob: &str,
    learning_rate: f64,
    checkpoints: Option<&Path>,
) -> Result<()> {
    if loss.is_finite() {
        return Ok(());
    }
    let kept = match checkpoints.map(|dir| (dir, kept_checkpoints(dir))) {
        Some((dir, Kept::Best)) => {
            format!("; the best checkpoint so far is kept in {}", dir.display())
        }
        Some((dir, Kept::Last)) => {
            format!("; the last good checkpoint is kept in {}", dir.display())
        }
        _ => String::new(),
    };
    Err(Error::Diverged(format!(
        "training diverged: the loss became {} at epoch {epoch}; lower {knob} (now {}, try {}) and train again{kept}",
        if loss.is_nan() {
            "NaN".to_string()
        } else {
            loss.to_string()
        },
        rate(learning_rate),
        suggest(learning_rate),
    )))
}

/// A learning rate as people write it: `0.001`, `0.5`, or `1e30` for extreme values.
fn rate(learning_rate: f64) -> String {
    if learning_rate != 0.0 && !(1e-4..1e4).contains(&learning_rate.abs()) {
        format!("{learning_rate:e}")
    } else {
        learning_rate.to_string()
    }
}

/// A tenth of the learning rate, rounded to one significant digit.
fn suggest(learning_rate: f64) -> String {
    let lower = learning_rate / 10.0;
    if !(lower.is_finite() && lower > 0.0) {
        return "1e-3".into();
    }
    format!("{:.0e}", lower)
}

enum Kept {
    None,
    Last,
    Best,
}

/// What a checkpoint folder holds: a best-weights checkpoint, another one, or nothing.
fn kept_checkpoints(dir: &Path) -> Kept {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Kept::None;
    };
    let mut kept = Kept::None;
    for path in entries.flatten().map(|e| e.path()) {
        if path.extension().is_some_and(|x| x == "safetensors") {
            if path
                .file_stem()
                .is_some_and(|s| s.to_string_lossy().contains("best"))
            {
                return Kept::Best;
            }
            kept = Kept::Last;
        }
    }
    kept
}

/// True when a tensor error is a device running out of memory (CUDA, Metal or the allocator).
pub fn is_out_of_memory(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("out_of_memory")
        || m.contains("out of memory")
        || m.contains("outofmemory")
        || m.contains("memory allocation of")
        || m.contains("failed to allocate")
}

/// The message a failed run reports: the error itself, except that running out of device memory
/// says what to do about it (`batch_size` is the run's batch size, when the task has one).
pub fn failure_message(error: &Error, device: &str, batch_size: Option<i64>) -> String {
    let text = error.to_string();
    if !is_out_of_memory(&text) {
        return text;
    }
    let batch = match batch_size {
        Some(b) if b > 1 => format!(
            "lower batch_size (now {b}, try {}) with --param batch_size=N",
            (b / 2).max(1)
        ),
        _ => "use smaller inputs (e.g. a lower image_size)".to_string(),
    };
    format!(
        "the device ({device}) ran out of memory; {batch}, or train on the CPU with --device cpu ({})",
        text.lines().next().unwrap_or_default()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finite_losses_pass_and_nan_names_epoch_and_knob() {
        assert!(check_loss(0.7, 1, "learning_rate", 1e-3, None).is_ok());
        let e = check_loss(f64::NAN, 3, "learning_rate", 0.5, None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("NaN at epoch 3"), "{e}");
        assert!(e.contains("lower learning_rate (now 0.5, try 5e-2)"), "{e}");
        let e = check_loss(f64::INFINITY, 2, "fine_tune_learning_rate", 1e-4, None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("inf at epoch 2") && e.contains("fine_tune_learning_rate"),
            "{e}"
        );
    }

    #[test]
    fn the_checkpoint_folder_is_named_only_when_it_holds_one() {
        let dir = tempfile::tempdir().unwrap();
        let e = check_loss(f64::NAN, 2, "learning_rate", 1.0, Some(dir.path()))
            .unwrap_err()
            .to_string();
        assert!(!e.contains("checkpoint"), "{e}");
        std::fs::write(dir.path().join("last.safetensors"), b"x").unwrap();
        let e = check_loss(f64::NAN, 2, "learning_rate", 1.0, Some(dir.path()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("the last good checkpoint is kept in"), "{e}");
        std::fs::write(dir.path().join("best.safetensors"), b"x").unwrap();
        let e = check_loss(f64::NAN, 2, "learning_rate", 1.0, Some(dir.path()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("best checkpoint so far is kept in"), "{e}");
    }

    #[test]
    fn cuda_out_of_memory_suggests_a_smaller_batch() {
        let e = Error::Tensor(candle_core::Error::Msg(
            "DriverError(CUDA_ERROR_OUT_OF_MEMORY, \"out of memory\")".into(),
        ));
        let m = failure_message(&e, "cuda:0", Some(64));
        assert!(
            m.starts_with("the device (cuda:0) ran out of memory"),
            "{m}"
        );
        assert!(m.contains("lower batch_size (now 64, try 32)"), "{m}");
        let other = Error::Diverged("x".into());
        assert_eq!(failure_message(&other, "cpu", Some(64)), "x");
    }
}
