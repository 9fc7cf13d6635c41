//! What a task's training code gets: the resolved project, the device, the run folder, and the
//! [`Emitter`] that logs every event to `events.jsonl` and sends it to the session's channel.

use crate::error::Result;
use crate::params::ResolvedParams;
use crate::project::Project;
use crate::train::control::Control;
use crate::train::event::{Event, Phase};
use crate::train::run_dir::RunDir;
use candle_core::Device;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Called after every event so a UI can repaint (the app passes `ctx.request_repaint`).
pub type Waker = Arc<dyn Fn() + Send + Sync>;

struct EmitterInner {
    log: Option<BufWriter<File>>,
    tx: Option<SyncSender<Event>>,
}

/// Sends events to the session's bounded channel and appends them to `events.jsonl`.
#[derive(Clone)]
pub struct Emitter {
    inner: Arc<Mutex<EmitterInner>>,
    waker: Option<Waker>,
}

impl Emitter {
    pub fn new(log: Option<File>, tx: Option<SyncSender<Event>>, waker: Option<Waker>) -> Self {
        Self {
            inner: Arc::new(Mutex::new(EmitterInner {
                log: log.map(BufWriter::new),
                tx,
            })),
            waker,
        }
    }

    /// An emitter that goes nowhere (for tools and tests that need none).
    pub fn null() -> Self {
        Self::new(None, None, None)
    }

    pub fn emit(&self, event: Event) {
        if let Ok(mut inner) = self.inner.lock() {
            if let Some(log) = inner.log.as_mut() {
                let ok = writeln!(log, "{}", event.to_json()).and_then(|_| log.flush());
                if ok.is_err() {
                    inner.log = None;
                }
            }
            if let Some(tx) = &inner.tx {
                // A dropped receiver (the UI went away) must not stop training.
                if tx.send(event).is_err() {
                    inner.tx = None;
                }
            }
        }
        if let Some(w) = &self.waker {
            w();
        }
    }
}

/// Options a caller can set on a run beyond the project file.
#[derive(Clone, Default)]
pub struct RunOptions {
    /// Feature cache folder (default: [`default_cache_dir`]).
    pub cache_dir: Option<PathBuf>,
    /// Explicit backbone weights file.
    pub weights: Option<PathBuf>,
}

/// Everything a task needs to run.
pub struct RunContext {
    pub project: Project,
    pub params: ResolvedParams,
    pub run_dir: RunDir,
    pub device: Device,
    pub control: Control,
    pub emitter: Emitter,
    pub options: RunOptions,
    pub started: Instant,
    /// Continue from the run folder's checkpoints (`lathe train --resume`).
    pub resume: bool,
}

impl RunContext {
    pub fn emit(&self, event: Event) {
        self.emitter.emit(event);
    }

    /// Reports a partial failure; training goes on.
    pub fn warn(&self, message: impl Into<String>, path: Option<&Path>) {
        self.emit(Event::Warning {
            message: message.into(),
            path: path.map(Path::to_path_buf),
        });
    }

    /// Cancellation / pause point: call between batches and between items.
    pub fn check(&self) -> Result<()> {
        self.control
            .checkpoint_with(&|| self.emit(Event::Paused), &|| self.emit(Event::Resumed))
    }

    /// Starts a phase with `total` units of work; report progress through the tracker.
    pub fn phase(&self, phase: Phase, total: u64) -> PhaseTracker<'_> {
        let t = PhaseTracker {
            ctx: self,
            phase,
            total,
            started: Instant::now(),
            last: None,
        };
        t.emit(0);
        t
    }

    /// The feature cache folder for this run.
    pub fn cache_dir(&self) -> PathBuf {
        self.options
            .cache_dir
            .clone()
            .unwrap_or_else(default_cache_dir)
    }
}

/// Reports `done / total` for a phase at most ten times a second (and always at the end).
pub struct PhaseTracker<'a> {
    ctx: &'a RunContext,
    phase: Phase,
    total: u64,
    started: Instant,
    last: Option<Instant>,
}

impl PhaseTracker<'_> {
    pub fn set(&mut self, done: u64) {
        let now = Instant::now();
        let due = self
            .last
            .is_none_or(|t| now.duration_since(t) >= Duration::from_millis(100));
        if due || done >= self.total {
            self.last = Some(now);
            self.emit(done);
        }
    }

    pub fn set_total(&mut self, total: u64) {
        self.total = total;
    }

    fn emit(&self, done: u64) {
        self.ctx.emit(Event::Phase {
            phase: self.phase,
            done,
            total: self.total,
            elapsed_secs: self.started.elapsed().as_secs_f64(),
        });
    }
}

/// `$LATHE_CACHE_DIR`, else the platform cache folder + `lathe`.
pub fn default_cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("LATHE_CACHE_DIR") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").map(PathBuf::from);
    if cfg!(target_os = "macos") {
        if let Some(h) = home {
            return h.join("Library/Caches/lathe");
        }
    } else if cfg!(windows) {
        if let Some(d) = std::env::var_os("LOCALAPPDATA") {
            return PathBuf::from(d).join("lathe");
        }
    } else if let Some(d) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(d).join("lathe");
    } else if let Some(h) = home {
        return h.join(".cache/lathe");
    }
    std::env::temp_dir().join("lathe-cache")
}
