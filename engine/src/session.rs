//! `Session`: one training run on a named background thread. It checks the project up front
//! (template, parameters, device, run folder), then streams [`Event`]s over a bounded channel
//! while the caller steers it through a [`Control`].

use crate::error::{Error, Result};
use crate::params::{ParamValue, ResolvedParams};
use crate::project::Project;
use crate::task::Task;
use crate::template::Template;
use crate::templates;
use crate::train::context::{Emitter, RunContext, RunOptions, Waker};
use crate::train::control::Control;
use crate::train::event::{Event, Outcome};
use crate::train::run_dir::RunDir;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, sync_channel};
use std::thread::JoinHandle;
use std::time::Instant;

/// Capacity of the event channel; a slow reader slows training rather than growing memory.
const CHANNEL_CAPACITY: usize = 1024;

/// How to start a session, beyond the project file.
#[derive(Clone, Default)]
pub struct SessionOptions {
    /// Run folder (default: `runs/<template>-<time>` next to the project file).
    pub run_dir: Option<PathBuf>,
    /// Parameter overrides (highest priority), e.g. from `--epochs` or the app's form.
    pub overrides: BTreeMap<String, ParamValue>,
    /// Device override (`--device`).
    pub device: Option<String>,
    /// Called after every event (the app's repaint).
    pub waker: Option<Waker>,
    pub run: RunOptions,
    /// Continue an interrupted run in `run_dir` from its checkpoints.
    pub resume: bool,
    /// Start the head from this finished run's weights (`lathe train --continue`); the new run
    /// records it in `continued_from.json`.
    pub continue_from: Option<PathBuf>,
    /// Run training at background priority ([`crate::train::priority`]), so an interactive
    /// window stays smooth; the app sets it, the CLI does not.
    pub background: bool,
}

/// A running (or finished) training.
pub struct Session {
    events: Receiver<Event>,
    control: Control,
    run_dir: PathBuf,
    handle: Option<JoinHandle<()>>,
}

/// Everything checked before a run starts.
pub struct Prepared {
    pub template: Template,
    pub task: Box<dyn Task>,
    pub params: ResolvedParams,
}

/// Resolves a project's template, task and parameters (no IO beyond the embedded templates).
pub fn prepare(project: &Project, overrides: &BTreeMap<String, ParamValue>) -> Result<Prepared> {
    let template = Template::get(&project.template)?;
    let task = templates::by_id(&template.task)?;
    let template_layer = template.param_layer()?;
    let project_layer = crate::params::layer_from_toml(&project.params)
        .map_err(|e| with_file(e, project.file.as_deref()))?;
    let params = ResolvedParams::resolve(
        &task.param_specs(),
        &[&template_layer, &project_layer, overrides],
    )
    .map_err(|e| with_file(e, project.file.as_deref()))?;
    Ok(Prepared {
        template,
        task,
        params,
    })
}

fn with_file(e: Error, file: Option<&Path>) -> Error {
    match e {
        Error::Project {
            message,
            path: None,
        } => Error::Project {
            message,
            path: file.map(Path::to_path_buf),
        },
        other => other,
    }
}

impl Session {
    /// Checks everything that can be checked quickly, creates the run folder and starts training
    /// on a thread named `lathe-train`.
    pub fn start(project: Project, options: SessionOptions) -> Result<Session> {
        let Prepared {
            template,
            task,
            params,
        } = prepare(&project, &options.overrides)?;
        let device_name = options
            .device
            .clone()
            .unwrap_or_else(|| project.device.clone());
        let device = crate::device::open(&device_name)?;
        let base = match project.file.as_ref().and_then(|f| f.parent()) {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => {
                std::env::current_dir().map_err(|e| Error::io("finding current folder", ".", e))?
            }
        };
        let parent = match &options.continue_from {
            Some(from) => {
                crate::train::extend::supported(&project.template, &params)
                    .map_err(|why| Error::project(why, Some(from)))?;
                Some(crate::train::extend::inspect(from)?)
            }
            None => None,
        };
        let root = options.run_dir.clone().unwrap_or_else(|| match &parent {
            Some(p) => crate::train::extend::default_root(&p.run_dir),
            None => RunDir::default_root(&base, &template.id),
        });
        let run_dir = if options.resume {
            RunDir::open_for_resume(&root)?
        } else {
            let dir = RunDir::create(&root)?;
            write_lock_file(&dir, &project, &params, &device_name)?;
            if let Some(parent) = &parent {
                crate::train::extend::record(&dir, parent)?;
            }
            dir
        };
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(run_dir.events())
            .map_err(|e| Error::io("creating", run_dir.events(), e))?;
        let (tx, rx) = sync_channel(CHANNEL_CAPACITY);
        let emitter = Emitter::new(Some(log), Some(tx), options.waker.clone());
        let control = Control::new();
        let ctx = RunContext {
            project,
            params,
            run_dir: run_dir.clone(),
            device,
            control: control.clone(),
            emitter,
            options: options.run.clone(),
            started: Instant::now(),
            resume: options.resume,
        };
        let background = options.background;
        let handle = std::thread::Builder::new()
            .name("lathe-train".into())
            .spawn(move || {
                if background {
                    crate::train::priority::lower_this_thread();
                }
                run(task, ctx)
            })
            .map_err(|e| Error::io("starting training thread", &run_dir.root, e))?;
        Ok(Session {
            events: rx,
            control,
            run_dir: run_dir.root,
            handle: Some(handle),
        })
    }

    /// The event stream; it ends (disconnects) when the run has finished.
    pub fn events(&self) -> &Receiver<Event> {
        &self.events
    }

    pub fn control(&self) -> &Control {
        &self.control
    }

    pub fn run_dir(&self) -> &Path {
        &self.run_dir
    }

    /// Waits for the training thread to end (drain [`Session::events`] first, or it may block).
    pub fn join(mut self) {
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }

    /// Runs to the end, handing every event to `on_event`, and returns the outcome.
    pub fn run_to_end(self, mut on_event: impl FnMut(&Event)) -> Outcome {
        let mut outcome = Outcome::Failed {
            message: "training ended without reporting an outcome".into(),
        };
        for event in self.events.iter() {
            if let Event::Finished { outcome: o, .. } = &event {
                outcome = o.clone();
            }
            on_event(&event);
        }
        self.join();
        outcome
    }
}

fn run(task: Box<dyn Task>, ctx: RunContext) {
    ctx.emit(Event::Started {
        run_dir: ctx.run_dir.root.clone(),
        template: ctx.project.template.clone(),
        device: crate::device::label(&ctx.device),
        seed: ctx.project.seed,
        lathe_version: env!("CARGO_PKG_VERSION").into(),
        resumed: ctx.resume,
    });
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| task.train(&ctx)));
    let outcome = match result {
        Ok(Ok(model_dir)) => {
            export_formats(&ctx, &model_dir);
            Outcome::Completed { model_dir }
        }
        Ok(Err(Error::Cancelled)) => {
            let last = ctx
                .run_dir
                .checkpoints()
                .join(crate::train::run_dir::LAST_CHECKPOINT);
            Outcome::Cancelled {
                checkpoint: last.exists().then_some(last),
            }
        }
        Ok(Err(e)) => Outcome::Failed {
            message: crate::fit::diverge::failure_message(
                &e,
                &crate::device::label(&ctx.device),
                match ctx.params.0.get("batch_size") {
                    Some(crate::params::ParamValue::Int(b)) => Some(*b),
                    _ => None,
                },
            ),
        },
        Err(panic) => {
            let what = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Outcome::Failed {
                message: format!("internal error (a bug in Lathe, please report it): {what}"),
            }
        }
    };
    ctx.emit(Event::Finished {
        outcome,
        elapsed_secs: ctx.started.elapsed().as_secs_f64(),
    });
}

/// Every export the project asks for besides the model folder itself (`[export] formats`),
/// after the task has written it. A failed export is a warning: the model folder is complete.
fn export_formats(ctx: &RunContext, model_dir: &Path) {
    if ctx.project.export.formats.iter().any(|f| f == "onnx") {
        crate::templates::export_onnx_run(ctx, model_dir);
    }
    if ctx.project.export.formats.iter().any(|f| f == "coreml") {
        crate::templates::export_coreml_run(ctx, model_dir);
    }
}

/// `project.lock.toml`: the project with every parameter resolved and absolute data paths.
fn write_lock_file(
    run_dir: &RunDir,
    project: &Project,
    params: &ResolvedParams,
    device: &str,
) -> Result<()> {
    let mut lock = project.clone();
    lock.data.train = project.resolve(&project.data.train);
    lock.data.validation = project.data.validation.as_ref().map(|p| project.resolve(p));
    lock.data.test = project.data.test.as_ref().map(|p| project.resolve(p));
    lock.device = device.to_string();
    lock.params = params
        .0
        .iter()
        .map(|(k, v)| (k.clone(), v.to_toml()))
        .collect();
    let body = toml::to_string_pretty(&lock)
        .map_err(|e| Error::project(format!("cannot write lock file ({e})"), None))?;
    let text = format!(
        "# Resolved by Lathe {} — every parameter as this run used it.\n{body}",
        env!("CARGO_PKG_VERSION")
    );
    crate::fsutil::atomic_write(&run_dir.lock_file(), text.as_bytes())
}
