//! An activity project's recordings, job side: the sessions of its training data (listed after
//! each scan) and the one the Data screen draws (read when picked); a previewed recording with
//! the model's prediction per window. Nothing here runs on the UI thread.

use lathe_engine::Project;
use lathe_engine::params::ResolvedParams;
use lathe_engine::task::{Model, Prediction, ResolvedData};
use lathe_engine::templates::activity::params::{ActivityParams, param_specs};
use lathe_engine::templates::activity::recording::{self, Recording, RecordingRef};
use std::collections::BTreeMap;
use std::path::Path;

/// The Data screen's recordings of an activity project.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Recordings {
    /// Every training session, by activity then name (`None` while listing).
    pub sessions: Option<Result<Vec<RecordingRef>, String>>,
    pub selected: usize,
    /// The selected session, read (`None` while reading).
    pub shown: Option<Result<Recording, String>>,
}

/// One window's prediction along a previewed recording (samples `start..end`).
#[derive(Clone, Debug, PartialEq)]
pub struct WindowPrediction {
    pub start: usize,
    pub end: usize,
    pub label: String,
    pub confidence: f32,
}

/// A previewed recording: its samples, and the prediction of each of its windows.
#[derive(Clone, Debug, PartialEq)]
pub struct ActivityPreview {
    pub recording: Result<Recording, String>,
    pub windows: Vec<WindowPrediction>,
}

/// The parameters the project reads recordings with (the template's defaults without one).
pub fn params(project: Option<&Project>) -> ActivityParams {
    let resolved = project
        .and_then(|p| lathe_engine::session::prepare(p, &BTreeMap::new()).ok())
        .map(|p| p.params)
        .or_else(|| ResolvedParams::resolve(&param_specs(), &[]).ok())
        .unwrap_or_else(|| ResolvedParams(BTreeMap::new()));
    ActivityParams::from_resolved(&resolved)
}

/// Lists the training sessions of `project` and reads the first.
pub fn list_and_read(
    project: &Project,
) -> Result<(Vec<RecordingRef>, Result<Recording, String>), String> {
    let p = params(Some(project));
    let data = ResolvedData::of(project);
    let sessions = recording::list(&data.train, &p).map_err(|e| e.to_string())?;
    let first = match sessions.first() {
        Some(r) => recording::read(r, &p).map_err(|e| e.to_string()),
        None => Err("no recordings found".to_string()),
    };
    Ok((sessions, first))
}

/// Reads one listed session of `project`.
pub fn read(project: &Project, r: &RecordingRef) -> Result<Recording, String> {
    recording::read(r, &params(Some(project))).map_err(|e| e.to_string())
}

/// Predicts a dropped recording: the session's prediction (its first session, for a table of
/// sessions) and, for drawing, its samples and every window's prediction.
pub fn predict_file(
    model: &dyn Model,
    path: &Path,
    p: &ActivityParams,
) -> (Result<Prediction, String>, ActivityPreview) {
    let input = path.to_string_lossy().into_owned();
    let results = model.predict(std::slice::from_ref(&input), &mut |_, _| {});
    let mut windows = Vec::new();
    let mut session: Option<Result<Prediction, String>> = None;
    for r in results {
        match r {
            Ok(pred) => match window_span(&pred.input) {
                Some((name, start, end)) => {
                    if session.is_none() {
                        windows.push((name.to_string(), start, end, pred));
                    }
                }
                None => {
                    if session.is_none() {
                        session = Some(Ok(pred));
                    }
                }
            },
            Err(e) => {
                if session.is_none() {
                    session = Some(Err(e.to_string()));
                }
            }
        }
    }
    let session = session.unwrap_or_else(|| Err("no prediction".to_string()));
    let name = session
        .as_ref()
        .map(|s| s.input.clone())
        .unwrap_or_default();
    let windows = windows
        .into_iter()
        .filter(|w| w.0 == name)
        .map(|(_, start, end, pred)| WindowPrediction {
            start,
            end,
            confidence: pred.ranked.first().map(|r| r.1).unwrap_or(0.0),
            label: pred.label,
        })
        .collect();
    let recording = recording::read_file(path, p).map_err(|e| e.to_string());
    (session, ActivityPreview { recording, windows })
}

/// `name[start:end]` → (name, start, end): how the engine names a window's prediction.
fn window_span(input: &str) -> Option<(&str, usize, usize)> {
    let inner = input.strip_suffix(']')?;
    let open = inner.rfind('[')?;
    let (a, b) = inner.get(open + 1..)?.split_once(':')?;
    Some((inner.get(..open)?, a.parse().ok()?, b.parse().ok()?))
}
