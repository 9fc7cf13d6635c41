//! File dialogs that always work: the system's dialog (rfd, through the XDG desktop portal on
//! Linux) where one answers, else Lathe's own file browser (drawn by `ui::file_dialog`).
//!
//! A [`DialogRequest`] says what is asked for (a folder, one file, several files, a file to save)
//! and what the answer is for ([`DialogPurpose`]); the answer becomes a [`Command`]. The native
//! dialog runs on a job thread; where it returns without having shown anything (no portal and no
//! zenity: rfd then logs an error and answers "cancelled" within milliseconds) the app opens the
//! built-in browser instead, and keeps using it for the rest of the session. The listing, the
//! typed-path checks and every other file access of the built-in browser run on job threads too.

use crate::command::{Command, DataSlot};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The table files the app reads.
pub const TABLE_EXTENSIONS: [&str; 5] = ["csv", "tsv", "json", "jsonl", "ndjson"];

/// A native dialog that answers "cancelled" faster than this never showed itself: nobody closes
/// a dialog within a quarter of a second.
const NO_DIALOG_WITHIN: Duration = Duration::from_millis(250);

/// What the answer of a dialog is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DialogPurpose {
    /// A data slot of the project.
    Data(DataSlot),
    OpenProject,
    /// A run folder to open.
    OpenRun,
    SaveProject,
    /// Labelled data to evaluate the model on.
    Evaluate,
    /// Files to try the model on.
    Preview,
    /// A run folder to compare the current run with.
    CompareRun,
    /// The folder exports go to.
    ExportFolder,
}

/// What the user picks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DialogMode {
    Folder,
    /// A folder, or one file with one of the request's extensions (text data: a folder of class
    /// folders or a table).
    FolderOrFile,
    File,
    Files,
    /// A file name to write (it may not exist yet).
    Save,
}

impl DialogMode {
    pub fn picks_files(self) -> bool {
        !matches!(self, Self::Folder)
    }

    pub fn picks_folders(self) -> bool {
        matches!(self, Self::Folder | Self::FolderOrFile)
    }
}

/// A dialog to show.
#[derive(Clone, Debug, PartialEq)]
pub struct DialogRequest {
    pub purpose: DialogPurpose,
    pub mode: DialogMode,
    pub title: String,
    /// Extensions (lowercase, no dot) of the files offered; empty: every file.
    pub extensions: Vec<String>,
    /// The file name proposed when saving.
    pub file_name: Option<String>,
    /// The folder it opens in (the nearest existing folder above it, else the home folder).
    pub start: Option<PathBuf>,
}

impl DialogRequest {
    pub fn new(purpose: DialogPurpose, mode: DialogMode, title: impl Into<String>) -> Self {
        Self {
            purpose,
            mode,
            title: title.into(),
            extensions: Vec::new(),
            file_name: None,
            start: None,
        }
    }

    pub fn extensions(mut self, extensions: &[&str]) -> Self {
        self.extensions = extensions.iter().map(|e| e.to_string()).collect();
        self
    }

    pub fn file_name(mut self, name: &str) -> Self {
        self.file_name = Some(name.to_string());
        self
    }

    pub fn start(mut self, dir: Option<PathBuf>) -> Self {
        self.start = dir;
        self
    }

    /// Whether a file is offered (its extension is one of the request's).
    pub fn accepts_file(&self, path: &Path) -> bool {
        self.extensions.is_empty()
            || path.extension().is_some_and(|e| {
                let e = e.to_string_lossy().to_lowercase();
                self.extensions.contains(&e)
            })
    }

    /// The command the chosen paths ask for; `None` when nothing was chosen.
    pub fn answer(&self, mut paths: Vec<PathBuf>) -> Option<Command> {
        if paths.is_empty() {
            return None;
        }
        Some(match self.purpose {
            DialogPurpose::Data(slot) => Command::SetData(slot, Some(paths.swap_remove(0))),
            DialogPurpose::OpenProject => Command::OpenProject(paths.swap_remove(0)),
            DialogPurpose::OpenRun => Command::OpenRun(paths.swap_remove(0)),
            DialogPurpose::SaveProject => Command::SaveProjectTo(paths.swap_remove(0)),
            DialogPurpose::Evaluate => Command::EvaluateFolder(paths.swap_remove(0)),
            DialogPurpose::Preview => Command::Predict(paths),
            DialogPurpose::CompareRun => Command::CompareWith(paths.swap_remove(0)),
            DialogPurpose::ExportFolder => Command::SetExportFolder(paths.swap_remove(0)),
        })
    }
}

/// What a native dialog answered.
#[derive(Clone, Debug, PartialEq)]
pub enum NativeAnswer {
    Chosen(Vec<PathBuf>),
    Cancelled,
    /// No dialog was shown (why, in words).
    Unavailable(String),
}

/// Shows a native dialog and waits for its answer (on a job thread).
pub type NativeDialog = Arc<dyn Fn(&DialogRequest) -> NativeAnswer + Send + Sync>;

/// The system's dialog through rfd.
pub fn rfd_dialog(request: &DialogRequest) -> NativeAnswer {
    let mut dialog = rfd::AsyncFileDialog::new().set_title(&request.title);
    if !request.extensions.is_empty() {
        let what = match request.purpose {
            DialogPurpose::OpenProject | DialogPurpose::SaveProject => "Lathe project",
            _ => "Tables",
        };
        dialog = dialog.add_filter(what, &request.extensions);
    }
    if let Some(dir) = &request.start {
        dialog = dialog.set_directory(dir);
    }
    if let Some(name) = &request.file_name {
        dialog = dialog.set_file_name(name);
    }
    let started = Instant::now();
    let one = |f: Option<rfd::FileHandle>| f.map(|f| vec![f.path().to_path_buf()]);
    let chosen = match request.mode {
        DialogMode::Folder | DialogMode::FolderOrFile => {
            one(pollster::block_on(dialog.pick_folder()))
        }
        DialogMode::File => one(pollster::block_on(dialog.pick_file())),
        DialogMode::Files => pollster::block_on(dialog.pick_files())
            .map(|fs| fs.iter().map(|f| f.path().to_path_buf()).collect()),
        DialogMode::Save => one(pollster::block_on(dialog.save_file())),
    };
    classify(chosen, started.elapsed())
}

/// A native dialog's result: chosen paths, a cancel, or — when it answered nothing faster than a
/// person can close a dialog — no dialog at all.
pub fn classify(chosen: Option<Vec<PathBuf>>, took: Duration) -> NativeAnswer {
    match chosen {
        Some(paths) if !paths.is_empty() => NativeAnswer::Chosen(paths),
        _ if took < NO_DIALOG_WITHIN => NativeAnswer::Unavailable(
            "the system file dialog did not open (no XDG desktop portal or zenity answered)".into(),
        ),
        _ => NativeAnswer::Cancelled,
    }
}

/// The home folder (`HOME`, or `USERPROFILE` on Windows).
pub fn home_dir() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .or_else(|| std::env::var_os("USERPROFILE"))
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
}

/// `~` and `~/…` expanded to the home folder (`~name/…` is left alone). No file access.
pub fn expand_home(path: PathBuf) -> PathBuf {
    match (path.strip_prefix("~"), home_dir()) {
        (Ok(rest), Some(home)) => home.join(rest),
        _ => path,
    }
}

/// A typed path: trimmed, `~` expanded ([`expand_home`]), relative paths taken from `base` when
/// given. No file access.
pub fn typed_path(text: &str, base: Option<&Path>) -> PathBuf {
    let expanded = expand_home(PathBuf::from(text.trim()));
    match base {
        Some(base) if expanded.is_relative() => normalize(&base.join(expanded)),
        _ => expanded,
    }
}

/// Removes `.` and resolves `..` lexically (no file access).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    out
}

/// One entry of a listed folder.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub name: String,
    pub path: PathBuf,
    pub is_dir: bool,
    /// Bytes (files).
    pub size: u64,
    /// The request takes it (folders always: they can be opened).
    pub offered: bool,
}

/// A listed folder: its subfolders first, then its files, each by name.
#[derive(Clone, Debug, PartialEq)]
pub struct Listing {
    pub dir: PathBuf,
    pub entries: Vec<Entry>,
}

/// Lists `dir` (or, when it is gone, the nearest existing folder above it) for `request`;
/// hidden entries (a leading dot) only when asked.
pub fn list(dir: &Path, request: &DialogRequest, show_hidden: bool) -> Result<Listing, String> {
    let dir = existing_folder(dir).ok_or_else(|| format!("no folder at {}", dir.display()))?;
    let read =
        std::fs::read_dir(&dir).map_err(|e| format!("cannot list {} ({e})", dir.display()))?;
    let mut entries: Vec<Entry> = read
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            if !show_hidden && name.starts_with('.') {
                return None;
            }
            let path = e.path();
            // Follows links, so a linked folder opens like a folder.
            let meta = std::fs::metadata(&path).ok()?;
            let is_dir = meta.is_dir();
            let offered = is_dir || (request.mode.picks_files() && request.accepts_file(&path));
            Some(Entry {
                name,
                path,
                is_dir,
                size: if is_dir { 0 } else { meta.len() },
                offered,
            })
        })
        .collect();
    entries.sort_by(|a, b| {
        b.is_dir
            .cmp(&a.is_dir)
            .then_with(|| a.name.to_lowercase().cmp(&b.name.to_lowercase()))
            .then_with(|| a.name.cmp(&b.name))
    });
    Ok(Listing { dir, entries })
}

/// `path` if it is a folder, else the nearest folder above it; the home folder when none is.
fn existing_folder(path: &Path) -> Option<PathBuf> {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    absolute
        .ancestors()
        .find(|p| p.is_dir())
        .map(Path::to_path_buf)
        .or_else(|| home_dir().filter(|h| h.is_dir()))
}

/// What a path typed into the built-in browser means.
#[derive(Clone, Debug, PartialEq)]
pub enum Typed {
    /// A folder to show.
    Browse(PathBuf),
    /// The answer.
    Choose(Vec<PathBuf>),
    /// A file that saving would replace (asked about first).
    Replace(PathBuf),
}

/// Checks a path typed into the built-in browser showing `current` (relative paths are taken from
/// it): a folder is shown (or chosen, in a folder mode, when it is the folder already shown); a
/// file is chosen when the request takes it (saving over one asks first); a new file's name is
/// chosen when saving into an existing folder.
pub fn check_typed(text: &str, current: &Path, request: &DialogRequest) -> Result<Typed, String> {
    if text.trim().is_empty() {
        return Err("type a path".into());
    }
    let path = typed_path(text, Some(current));
    if path.is_dir() {
        let same = std::path::absolute(&path).ok() == std::path::absolute(current).ok();
        return Ok(if same && request.mode.picks_folders() {
            Typed::Choose(vec![path])
        } else {
            Typed::Browse(path)
        });
    }
    if path.is_file() {
        return match request.mode {
            DialogMode::Folder => Err(format!("{} is a file; choose a folder", path.display())),
            _ if !request.accepts_file(&path) => Err(format!(
                "{} is not a {} file",
                path.display(),
                request.extensions.join(" / ")
            )),
            DialogMode::Save => Ok(Typed::Replace(path)),
            _ => Ok(Typed::Choose(vec![path])),
        };
    }
    match (request.mode, path.parent()) {
        (DialogMode::Save, Some(parent)) if parent.is_dir() => Ok(Typed::Choose(vec![path])),
        _ => Err(format!("nothing at {}", path.display())),
    }
}

/// The file a save dialog writes: `name` in `dir`, with the request's first extension added when
/// the name has none of them.
pub fn save_target(dir: &Path, name: &str, request: &DialogRequest) -> Option<PathBuf> {
    let name = name.trim();
    if name.is_empty() {
        return None;
    }
    let mut path = typed_path(name, Some(dir));
    if let Some(ext) = request.extensions.first()
        && !request.accepts_file(&path)
    {
        let mut file = path.file_name()?.to_os_string();
        file.push(format!(".{ext}"));
        path.set_file_name(file);
    }
    Some(path)
}

/// Bytes as people read them: "812 B", "14.2 KB", "3.1 MB".
pub fn size_text(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KB", "MB", "GB", "TB"];
    if bytes < 1000 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1000.0;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS.get(unit).copied().unwrap_or("TB"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn request(mode: DialogMode) -> DialogRequest {
        DialogRequest::new(DialogPurpose::Data(DataSlot::Train), mode, "Training data")
            .extensions(&TABLE_EXTENSIONS)
    }

    #[test]
    fn tilde_expands_to_home_and_relative_paths_join_the_base() {
        let Some(home) = home_dir() else {
            return;
        };
        assert_eq!(typed_path(" ~ ", None), home);
        assert_eq!(expand_home(PathBuf::from("~/d")), home.join("d"));
        assert_eq!(typed_path("~/data/x.csv", None), home.join("data/x.csv"));
        // `~name` (another user's home) is left alone.
        assert_eq!(typed_path("~bob/x", None), PathBuf::from("~bob/x"));
        assert_eq!(
            typed_path("/abs/p", Some(Path::new("/base"))),
            PathBuf::from("/abs/p")
        );
        assert_eq!(
            typed_path("a/../b", Some(Path::new("/base"))),
            PathBuf::from("/base/b")
        );
        assert_eq!(
            typed_path("..", Some(Path::new("/base/sub"))),
            PathBuf::from("/base")
        );
    }

    #[test]
    fn a_fast_empty_answer_means_no_dialog_a_slow_one_a_cancel() {
        let quick = Duration::from_millis(5);
        let slow = Duration::from_secs(2);
        assert!(matches!(
            classify(None, quick),
            NativeAnswer::Unavailable(_)
        ));
        assert_eq!(classify(None, slow), NativeAnswer::Cancelled);
        assert_eq!(classify(Some(vec![]), slow), NativeAnswer::Cancelled);
        let p = vec![PathBuf::from("/x")];
        assert_eq!(classify(Some(p.clone()), quick), NativeAnswer::Chosen(p));
    }

    #[test]
    fn listing_puts_folders_first_and_marks_what_the_request_takes() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir(tmp.path().join("zeta")).unwrap();
        std::fs::create_dir(tmp.path().join(".hidden")).unwrap();
        std::fs::write(tmp.path().join("a.csv"), "x\n1\n").unwrap();
        std::fs::write(tmp.path().join("B.txt"), "x").unwrap();
        let l = list(tmp.path(), &request(DialogMode::File), false).unwrap();
        let names: Vec<_> = l.entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["zeta", "a.csv", "B.txt"]);
        let offered: Vec<_> = l.entries.iter().map(|e| e.offered).collect();
        assert_eq!(offered, [true, true, false]);
        let l = list(tmp.path(), &request(DialogMode::Folder), true).unwrap();
        assert_eq!(l.entries.len(), 4);
        assert!(l.entries.iter().filter(|e| !e.is_dir).all(|e| !e.offered));
        // A folder that is gone lists the nearest one above it.
        let gone = tmp.path().join("zeta/gone/deeper");
        assert_eq!(
            list(&gone, &request(DialogMode::Folder), false)
                .unwrap()
                .dir,
            tmp.path().join("zeta")
        );
    }

    #[test]
    fn typed_paths_browse_folders_and_choose_files() {
        let tmp = tempfile::tempdir().unwrap();
        let sub = tmp.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        std::fs::write(sub.join("t.csv"), "x\n1\n").unwrap();
        let folder = request(DialogMode::Folder);
        assert_eq!(
            check_typed("sub", tmp.path(), &folder),
            Ok(Typed::Browse(sub.clone()))
        );
        // The folder shown, typed again: chosen.
        assert_eq!(
            check_typed(&sub.to_string_lossy(), &sub, &folder),
            Ok(Typed::Choose(vec![sub.clone()]))
        );
        assert!(check_typed("sub/t.csv", tmp.path(), &folder).is_err());
        let file = request(DialogMode::File);
        assert_eq!(
            check_typed("sub/t.csv", tmp.path(), &file),
            Ok(Typed::Choose(vec![sub.join("t.csv")]))
        );
        assert!(check_typed("sub/none.csv", tmp.path(), &file).is_err());
        let save = DialogRequest::new(DialogPurpose::SaveProject, DialogMode::Save, "Save")
            .extensions(&["toml"]);
        assert_eq!(
            check_typed("sub/new.toml", tmp.path(), &save),
            Ok(Typed::Choose(vec![sub.join("new.toml")]))
        );
        std::fs::write(sub.join("old.toml"), "").unwrap();
        assert_eq!(
            check_typed("sub/old.toml", tmp.path(), &save),
            Ok(Typed::Replace(sub.join("old.toml")))
        );
        assert!(check_typed("nowhere/new.toml", tmp.path(), &save).is_err());
        assert_eq!(save_target(&sub, "my", &save), Some(sub.join("my.toml")));
        assert_eq!(save_target(&sub, "p.toml", &save), Some(sub.join("p.toml")));
        assert_eq!(save_target(&sub, "  ", &save), None);
    }

    #[test]
    fn answers_become_commands() {
        let p = PathBuf::from("/d");
        assert_eq!(
            request(DialogMode::Folder).answer(vec![p.clone()]),
            Some(Command::SetData(DataSlot::Train, Some(p.clone())))
        );
        let preview = DialogRequest::new(DialogPurpose::Preview, DialogMode::Files, "Files");
        assert_eq!(
            preview.answer(vec![p.clone(), p.clone()]),
            Some(Command::Predict(vec![p.clone(), p]))
        );
        assert_eq!(preview.answer(vec![]), None);
        assert_eq!(size_text(812), "812 B");
        assert_eq!(size_text(14_200), "14.2 KB");
        assert_eq!(size_text(3_100_000), "3.1 MB");
    }
}
