//! How the CLI shows a run: JSON lines (`--json`), progress bars with ETA on a terminal, or plain
//! log lines when piped. Every event is folded into a [`RunState`] first — the fold the app draws —
//! and the lines that span events (the warning count, the closing summary) are read from it.
//! Warnings and errors go to stderr.

use crate::train::RunState;
use crate::train::event::{EpochMetrics, Event, Outcome, Phase};
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
    /// The run so far, folded from every event handled.
    state: RunState,
    bar: Option<(Phase, ProgressBar)>,
    last_plain_phase: Option<(Phase, u64)>,
}

/// Warnings printed in full; the rest are counted.
const MAX_WARNINGS_SHOWN: usize = 20;

impl Reporter {
    pub fn new(mode: Mode) -> Self {
        Self {
            mode,
            state: RunState::default(),
            bar: None,
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
        let warnings_before = self.state.warning_count();
        self.state.apply(event);
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
                let line = epoch_line(m);
                if self.mode == Mode::Terminal {
                    if let Some((_, bar)) = &self.bar {
                        bar.set_message(line);
                    }
                } else if m.epoch == 1 || m.epoch % 10 == 0 || m.epoch == m.epochs {
                    eprintln!("{line}");
                }
            }
            Event::Warning { message, path } => {
                // Printed when the fold counts it (a resumed run's repeats are not counted).
                let count = self.state.warning_count();
                if count > warnings_before && count <= MAX_WARNINGS_SHOWN {
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
            Event::Finished { outcome, .. } => {
                self.finish_bar();
                for line in summary_lines(&self.state, outcome) {
                    eprintln!("{line}");
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

/// One epoch's line: "epoch   3/20  loss 0.4321  acc 91.0%  val loss 0.5000  val acc 88.5%".
fn epoch_line(m: &EpochMetrics) -> String {
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
    line
}

/// The lines that close a run: how many warnings were not printed (counted by the fold, as the
/// app counts them), then how it ended.
fn summary_lines(state: &RunState, outcome: &Outcome) -> Vec<String> {
    let mut lines = Vec::new();
    let warnings = state.warning_count();
    if warnings > MAX_WARNINGS_SHOWN {
        lines.push(format!(
            "… and {} more warnings (all are in events.jsonl)",
            warnings - MAX_WARNINGS_SHOWN
        ));
    }
    let took = duration(state.elapsed_secs);
    lines.push(match outcome {
        Outcome::Completed { model_dir } => {
            format!("Finished in {took}: model in {}", model_dir.display())
        }
        Outcome::Cancelled {
            checkpoint: Some(c),
        } => format!(
            "Cancelled after {took}; last checkpoint kept: {}",
            c.display()
        ),
        Outcome::Cancelled { checkpoint: None } => format!("Cancelled after {took}"),
        Outcome::Failed { message } => format!("error: {message}"),
    });
    lines
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn started(resumed: bool) -> Event {
        Event::Started {
            run_dir: "runs/r".into(),
            template: "image-classifier".into(),
            device: "cpu".into(),
            seed: 1,
            lathe_version: "0".into(),
            resumed,
        }
    }

    fn warnings(range: std::ops::Range<usize>) -> Vec<Event> {
        range
            .map(|i| Event::Warning {
                message: format!("unreadable image {i}"),
                path: Some(format!("data/{i}.png").into()),
            })
            .collect()
    }

    #[test]
    fn the_summary_counts_warnings_as_the_app_does_after_a_resume() {
        // An interrupted run warned 15 times; `--resume` scans again, repeats those 15 and finds
        // 10 more: 25 warnings, not 40 ("warnings listed twice after Resume").
        let interrupted: Vec<Event> = [started(false)]
            .into_iter()
            .chain(warnings(0..15))
            .collect();
        let outcome = Outcome::Completed {
            model_dir: "runs/r/model".into(),
        };
        let finished = Event::Finished {
            outcome: outcome.clone(),
            elapsed_secs: 65.0,
        };
        let resumed: Vec<Event> = [started(true)]
            .into_iter()
            .chain(warnings(0..25))
            .chain([finished])
            .collect();

        // The app: the run folder's events.jsonl replayed, then the resumed session's events.
        let jsonl: String = interrupted.iter().map(|e| e.to_json() + "\n").collect();
        let mut app = RunState::replay(&jsonl);
        resumed.iter().for_each(|e| app.apply(e));
        assert_eq!(app.warning_count(), 25);

        // The CLI, on the same stream and on the resumed session's events alone
        // (what `lathe train --resume` sees).
        for stream in [
            interrupted.iter().chain(&resumed).collect::<Vec<_>>(),
            resumed.iter().collect(),
        ] {
            let mut cli = Reporter::new(Mode::Plain);
            stream.into_iter().for_each(|e| cli.handle(e));
            assert_eq!(cli.state.warning_count(), app.warning_count());
            assert_eq!(
                summary_lines(&cli.state, &outcome),
                [
                    "… and 5 more warnings (all are in events.jsonl)",
                    "Finished in 1m 05s: model in runs/r/model"
                ]
            );
        }
    }
}
