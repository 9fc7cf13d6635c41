//! Pause / resume / cancel handles (like burn's `Interrupter`). The app and the CLI hold a
//! [`Control`]; training code calls [`Control::checkpoint`] between batches and between items.

use crate::error::{Error, Result};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};

#[derive(Default)]
struct Inner {
    cancelled: AtomicBool,
    paused: Mutex<bool>,
    wake: Condvar,
}

/// A cloneable handle to steer a running session.
#[derive(Clone, Default)]
pub struct Control {
    inner: Arc<Inner>,
}

impl Control {
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks the run to stop at the next checkpoint (also wakes a paused run).
    pub fn cancel(&self) {
        self.inner.cancelled.store(true, Ordering::SeqCst);
        self.inner.wake.notify_all();
    }

    pub fn pause(&self) {
        if let Ok(mut p) = self.inner.paused.lock() {
            *p = true;
        }
    }

    pub fn resume(&self) {
        if let Ok(mut p) = self.inner.paused.lock() {
            *p = false;
        }
        self.inner.wake.notify_all();
    }

    pub fn is_cancelled(&self) -> bool {
        self.inner.cancelled.load(Ordering::SeqCst)
    }

    /// `Err(Error::Cancelled)` once cancelled: the check scans call between files.
    pub fn check_cancelled(&self) -> crate::error::Result<()> {
        if self.is_cancelled() {
            Err(crate::error::Error::Cancelled)
        } else {
            Ok(())
        }
    }

    pub fn is_paused(&self) -> bool {
        self.inner.paused.lock().map(|p| *p).unwrap_or(false)
    }

    /// Returns `Err(Cancelled)` if cancelled; if paused, calls `on_pause`, blocks until resumed
    /// or cancelled, then calls `on_resume`.
    pub fn checkpoint_with(&self, on_pause: &dyn Fn(), on_resume: &dyn Fn()) -> Result<()> {
        if self.is_cancelled() {
            return Err(Error::Cancelled);
        }
        let Ok(mut paused) = self.inner.paused.lock() else {
            return Ok(());
        };
        if !*paused {
            return Ok(());
        }
        on_pause();
        while *paused && !self.is_cancelled() {
            paused = match self.inner.wake.wait(paused) {
                Ok(p) => p,
                Err(_) => return Ok(()),
            };
        }
        drop(paused);
        if self.is_cancelled() {
            return Err(Error::Cancelled);
        }
        on_resume();
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn pause_blocks_until_resume_and_cancel_wakes() {
        let c = Control::new();
        assert!(c.checkpoint_with(&|| {}, &|| {}).is_ok());
        c.pause();
        let c2 = c.clone();
        let t = std::thread::spawn(move || c2.checkpoint_with(&|| {}, &|| {}));
        std::thread::sleep(Duration::from_millis(50));
        assert!(!t.is_finished(), "checkpoint returned while paused");
        c.resume();
        assert!(t.join().unwrap().is_ok());
        c.pause();
        let c3 = c.clone();
        let t = std::thread::spawn(move || c3.checkpoint_with(&|| {}, &|| {}));
        std::thread::sleep(Duration::from_millis(20));
        c.cancel();
        assert!(matches!(t.join().unwrap(), Err(Error::Cancelled)));
    }
}
