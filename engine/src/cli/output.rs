//! How the CLI shows a run: JSON lines (`--json`), progress bars with ETA on a terminal, or plain
//! log lines when piped. Warnings and errors go to stderr.

use crate::train::event::{Event, Outcome, Phase};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::time::Duration;

/// Prints an error as one line on stderr.
pub fn error_line(e: &dyn std::fmt::Display) {
    eprintln!("error: {e}");
}

/// Output mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Json,
    Terminal,
    Plain,
}

impl Mode {
    pub fn detect(json: bool) -> Self {
        if json {
            Self::Json
        } else if std::io::stderr().is_terminal() {
            Self::Terminal
        } else {
            Self::Plain
        }
    }
}

/// Renders a stream of events.
pub struct Reporter {
    mode: Mode,
    bar: Option<(Phase, ProgressBar)>,
    warnings: usize,
    last_plain_phase: Option<(Phase, u64)>,
}

/// Warnings printed in full; the rest are counted.
const MAX_WARNINGS_SHOWN: usize = 20;

impl Reporter {
    pub fn new(mode: Mode) -> Self {
        Self {
            mode,
            bar: None,
            warnings: 0,
            last_plain_phase: None,
        }
    }

    fn println(&self, line: String) {
        match &self.bar {
            Some((_, bar)) => bar.println(line),
            None => eprintln!("{line}"),
        }
    }

    /// A progress bar (terminal) or nothing, for one-off tasks like `evaluate`.
    pub fn progress(&mut self, phase: Phase, done: u64, total: u64) {
        self.handle(&Event::Phase {
            phase,
            done,
            total,
            elapsed_secs: 0.0,
        });
    }

    pub fn finish_bar(&mut self) {
        if let Some((_, bar)) = self.bar.take() {
            bar.finish_and_clear();
        }
    }

    pub fn handle(&mut self, event: &Event) {
        if self.mode == Mode::Json {
            println!("{}", event.to_json());
            return;
        }
        match event {
            Event::Started {
                run_dir, device, ..
            } => {
                eprintln!("Training in {} on {device}", run_dir.display());
            }
            Event::Data {
                num_train,
                num_validation,
                num_test,
                labels,
            } => {
                eprintln!(
                    "Data: {num_train} training, {num_validation} validation, {num_test} test examples; {} classes: {}",
                    labels.len(),
                    preview(labels)
                );
            }
            Event::Phase {
                phase, done, total, ..
            } => self.phase(*phase, *done, *total),
            Event::Step { .. } => {}
            Event::EpochEnd(m) => {
                let mut line = format!(
                    "epoch {:>3}/{}  loss {:.4}",
                    m.epoch, m.epochs, m.train_loss
                );
                if let Some(a) = m.train_accuracy {
                    line += &format!("  acc {:.1}%", a * 100.0);
                }
                if let Some(v) = m.validation_loss {
                    line += &format!("  val loss {v:.4}");
                }
                if let Some(a) = m.validation_accuracy {
                    line += &format!("  val acc {:.1}%", a * 100.0);
                }
                if self.mode == Mode::Terminal {
                    if let Some((_, bar)) = &self.bar {
                        bar.set_message(line);
                    }
                } else if m.epoch == 1 || m.epoch % 10 == 0 || m.epoch == m.epochs {
                    eprintln!("{line}");
                }
            }
            Event::Warning { message, path } => {
                self.warnings += 1;
                if self.warnings <= MAX_WARNINGS_SHOWN {
                    let at = path
                        .as_ref()
                        .map(|p| format!(": {}", p.display()))
                        .unwrap_or_default();
                    self.println(format!("warning: {message}{at}"));
                }
            }
            Event::Cache { reused, total, .. } => {
                self.println(format!(
                    "Reusing cached features for {reused} of {total} images"
                ));
            }
            Event::Checkpoint { .. } => {}
            Event::Restored { epoch, checkpoint } => self.println(format!(
                "Resuming after epoch {epoch} from {}",
                checkpoint.display()
            )),
            Event::Paused => self.println("Paused".into()),
            Event::Resumed => self.println("Resumed".into()),
            Event::Evaluated {
                split,
                num_examples,
                metric,
                value,
            } => {
                self.finish_bar();
                eprintln!(
                    "{split}: {metric} {:.2}% on {num_examples} examples",
                    value * 100.0
                );
            }
            Event::Exported { format, path } => {
                self.finish_bar();
                eprintln!("Exported {format}: {}", path.display());
            }
            Event::Finished {
                outcome,
                elapsed_secs,
            } => {
                self.finish_bar();
                if self.warnings > MAX_WARNINGS_SHOWN {
                    eprintln!(
                        "… and {} more warnings (all are in events.jsonl)",
                        self.warnings - MAX_WARNINGS_SHOWN
                    );
                }
                match outcome {
                    Outcome::Completed { model_dir } => eprintln!(
                        "Finished in {}: model in {}",
                        duration(*elapsed_secs),
                        model_dir.display()
                    ),
                    Outcome::Cancelled { checkpoint } => match checkpoint {
                        Some(c) => eprintln!(
                            "Cancelled after {}; last checkpoint kept: {}",
                            duration(*elapsed_secs),
                            c.display()
                        ),
                        None => eprintln!("Cancelled after {}", duration(*elapsed_secs)),
                    },
                    Outcome::Failed { message } => eprintln!("error: {message}"),
                }
            }
        }
    }

    fn phase(&mut self, phase: Phase, done: u64, total: u64) {
        match self.mode {
            Mode::Json => {}
            Mode::Terminal => {
                let same = matches!(&self.bar, Some((p, _)) if *p == phase);
                if !same {
                    self.finish_bar();
                    let bar =
                        ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
                    let style = ProgressStyle::with_template("{prefix:>20.cyan.bold} [{bar:30}] {human_pos}/{human_len} {unit} ({eta} left) {msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_bar())
                        .progress_chars("=> ");
                    bar.set_style(style.clone().with_key(
                        "unit",
                        move |_: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                            let _ = write!(w, "{}", phase.unit());
                        },
                    ));
                    bar.set_prefix(phase.title());
                    bar.enable_steady_tick(Duration::from_millis(200));
                    self.bar = Some((phase, bar));
                }
                if let Some((_, bar)) = &self.bar {
                    bar.set_length(total);
                    bar.set_position(done);
                }
            }
            Mode::Plain => {
                // One line at the start of a phase and at its end; no bar to redraw when piped.
                let key = (phase, done);
                if done == 0 && total > 0 && self.last_plain_phase != Some(key) {
                    eprintln!("{} ({total} {})…", phase.title(), phase.unit());
                } else if done == total
                    && total > 0
                    && self.last_plain_phase != Some(key)
                    && phase != Phase::Training
                {
                    eprintln!("{}: done ({total} {})", phase.title(), phase.unit());
                }
                self.last_plain_phase = Some(key);
            }
        }
    }
}

fn preview(labels: &[String]) -> String {
    let shown: Vec<&str> = labels.iter().take(8).map(String::as_str).collect();
    let more = if labels.len() > 8 {
        format!(", … ({} more)", labels.len() - 8)
    } else {
        String::new()
    };
    format!("{}{more}", shown.join(", "))
}

/// "1m 05s", "12.3s".
pub fn duration(secs: f64) -> String {
    if secs < 60.0 {
        format!("{secs:.1}s")
    } else if secs < 3600.0 {
        format!("{}m {:02}s", (secs / 60.0) as u64, (secs % 60.0) as u64)
    } else {
        format!(
            "{}h {:02}m",
            (secs / 3600.0) as u64,
            (secs % 3600.0 / 60.0) as u64
        )
    }
}
