//! Error analysis (fastai's "top losses"): the misclassified samples of an evaluation, most
//! confident first, each shown as what it is — an image, a text excerpt, a table row, a sound
//! file's length — and, for folder datasets (one subfolder per class), fixing a sample's label by
//! moving its file into another class folder. A move never overwrites (a taken name gets a free
//! one) and never deletes; it can be undone. Table rows are not relabelled from here.
//!
//! Everything that touches files runs on job threads; [`mistakes`] and [`class_root`] only look at
//! the report and the paths.

use crate::preview_data::PreviewKind;
use lathe_engine::eval::{ClassificationReport, SampleResult};
use std::path::{Component, Path, PathBuf};

/// Characters of a text excerpt or a row's values.
const EXCERPT_CHARS: usize = 240;

/// The misclassified samples of `report`, most confident first.
pub fn mistakes(report: &ClassificationReport) -> Vec<&SampleResult> {
    let mut wrong: Vec<&SampleResult> = report
        .samples
        .iter()
        .filter(|s| s.label != s.predicted)
        .collect();
    wrong.sort_by(|a, b| b.confidence.total_cmp(&a.confidence));
    wrong
}

/// What a sample is, for showing it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SampleKind {
    Image,
    Sound,
    /// A text file (text folders).
    Text,
    /// A row of a table: `file.csv:LINE` (the file as the report names it, a path or a name).
    TableRow {
        file: PathBuf,
        line: u64,
    },
    /// Anything else (a recording session, …): shown by name.
    Other,
}

impl SampleKind {
    /// What `input` is, by its name (no file access); `kind` is the project's preview kind.
    pub fn of(input: &Path, kind: PreviewKind) -> Self {
        if let Some((file, line)) = table_row(input) {
            return Self::TableRow { file, line };
        }
        let ext = input
            .extension()
            .map(|e| e.to_string_lossy().to_lowercase())
            .unwrap_or_default();
        if lathe_engine::data::image_decode::IMAGE_EXTENSIONS.contains(&ext.as_str()) {
            Self::Image
        } else if lathe_engine::data::audio_decode::AUDIO_EXTENSIONS.contains(&ext.as_str()) {
            Self::Sound
        } else if kind == PreviewKind::Text {
            Self::Text
        } else {
            Self::Other
        }
    }

    /// Whether showing it needs a file read ([`details`]): text, rows and sound lengths.
    pub fn needs_details(&self) -> bool {
        matches!(self, Self::Text | Self::TableRow { .. } | Self::Sound)
    }
}

/// `file.csv:5` → (`file.csv`, 5), for table files only.
fn table_row(input: &Path) -> Option<(PathBuf, u64)> {
    let text = input.to_str()?;
    let (file, line) = text.rsplit_once(':')?;
    let line: u64 = line.parse().ok()?;
    let ext = Path::new(file)
        .extension()
        .map(|e| e.to_string_lossy().to_lowercase())?;
    lathe_engine::data::text_data::TABLE_EXTENSIONS
        .contains(&ext.as_str())
        .then(|| (PathBuf::from(file), line))
}

/// What a mistake shows besides its name: a text's first characters, a row's values, a sound's
/// length. Reads files: call it on a job thread. `tables` are the project's table files, where a
/// row named by file name only (`file.csv:5`) is looked for.
pub fn details(input: &Path, kind: &SampleKind, tables: &[PathBuf]) -> Result<String, String> {
    match kind {
        SampleKind::Text => {
            let bytes = std::fs::read(input).map_err(|e| format!("cannot read it ({e})"))?;
            let (text, _) = lathe_engine::data::text_data::decode(&bytes);
            Ok(excerpt(&text))
        }
        SampleKind::Sound => {
            let info = lathe_engine::data::audio_facts::info(input)?;
            Ok(match info.secs {
                Some(s) => format!("{s:.2} s"),
                None => "length unknown".into(),
            })
        }
        SampleKind::TableRow { file, line } => {
            let path = if file.is_file() {
                file.clone()
            } else {
                tables
                    .iter()
                    .find(|t| t.file_name() == file.file_name() && t.is_file())
                    .cloned()
                    .ok_or_else(|| {
                        format!("{} is not among the project's tables", file.display())
                    })?
            };
            let table = lathe_engine::data::table::read(&path).map_err(|e| e.to_string())?;
            let row = table
                .lines
                .iter()
                .position(|l| l == line)
                .ok_or_else(|| format!("no row at line {line} of {}", path.display()))?;
            let cells: Vec<(&str, &str)> = table
                .columns
                .iter()
                .zip(&table.cells)
                .map(|(c, cells)| (c.as_str(), cells.get(row).unwrap_or("")))
                .collect();
            Ok(row_text(&cells))
        }
        SampleKind::Image | SampleKind::Other => Ok(String::new()),
    }
}

/// A row's values as "column: value · …" (a missing value as a dash); a row with one long cell (text data) shows that cell.
fn row_text(cells: &[(&str, &str)]) -> String {
    let longest = cells
        .iter()
        .map(|(_, v)| v.chars().count())
        .max()
        .unwrap_or(0);
    if longest > 60 {
        let (_, text) = cells
            .iter()
            .max_by_key(|(_, v)| v.chars().count())
            .copied()
            .unwrap_or_default();
        return excerpt(text);
    }
    excerpt(
        &cells
            .iter()
            .map(|(c, v)| format!("{c}: {}", if v.is_empty() { "\u{2014}" } else { v }))
            .collect::<Vec<_>>()
            .join(" \u{b7} "),
    )
}

/// The first [`EXCERPT_CHARS`] characters, whitespace runs as one space.
fn excerpt(text: &str) -> String {
    let words = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if words.chars().count() > EXCERPT_CHARS {
        let cut: String = words.chars().take(EXCERPT_CHARS).collect();
        format!("{cut}…")
    } else {
        words
    }
}

/// The data folder `input` belongs to when it sits in a class folder named `label` right under
/// one of `roots` (`root/label/…/file`): the folder whose class folders a fix moves it between.
/// No file access.
pub fn class_root(input: &Path, label: &str, roots: &[PathBuf]) -> Option<PathBuf> {
    roots.iter().find_map(|root| {
        let rest = input.strip_prefix(root).ok()?;
        let mut parts = rest.components();
        match (parts.next(), parts.next()) {
            (Some(Component::Normal(class)), Some(_)) if class == label => Some(root.clone()),
            _ => None,
        }
    })
}

/// A sample moved into another class folder, to move back.
#[derive(Clone, Debug, PartialEq)]
pub struct LabelFix {
    /// Where it was (the path the report names).
    pub from: PathBuf,
    /// Where it is now.
    pub to: PathBuf,
    pub old_label: String,
    pub new_label: String,
}

/// Moves `input` (in `root/<its label>/…`) into `root/<class>/`, keeping its name unless that is
/// taken (then `name-1.ext`, `name-2.ext`, …). Never overwrites, never deletes.
pub fn move_to_class(input: &Path, root: &Path, class: &str) -> Result<PathBuf, String> {
    let one_name = matches!(
        Path::new(class).components().collect::<Vec<_>>()[..],
        [Component::Normal(_)]
    );
    if !one_name || class.contains(['/', '\\']) {
        return Err(format!("\"{class}\" is not a class folder name"));
    }
    let dir = root.join(class);
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {} ({e})", dir.display()))?;
    let name = input
        .file_name()
        .ok_or_else(|| format!("{} has no file name", input.display()))?;
    move_into(input, &dir, name)
}

/// Moves a fixed sample back where it was (or beside it, under a free name, if that was taken
/// since). Returns where it is now.
pub fn undo(fix: &LabelFix) -> Result<PathBuf, String> {
    let dir = fix
        .from
        .parent()
        .ok_or_else(|| format!("{} has no folder", fix.from.display()))?;
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {} ({e})", dir.display()))?;
    let name = fix
        .from
        .file_name()
        .ok_or_else(|| format!("{} has no file name", fix.from.display()))?;
    move_into(&fix.to, dir, name)
}

/// Moves `file` into `dir` as `name` or, when that is taken, the first free `name-N.ext`, never
/// replacing a file: a hard link claims the name (it fails when the name exists), then the old
/// name goes.
fn move_into(file: &Path, dir: &Path, name: &std::ffi::OsStr) -> Result<PathBuf, String> {
    if !file.is_file() {
        return Err(format!("{} is no longer there", file.display()));
    }
    let stem = Path::new(name)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let ext = Path::new(name)
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    for n in 0..10_000 {
        let candidate = if n == 0 {
            dir.join(name)
        } else {
            dir.join(format!("{stem}-{n}{ext}"))
        };
        if candidate == file {
            return Ok(candidate);
        }
        match std::fs::hard_link(file, &candidate) {
            Ok(()) => {
                if let Err(e) = std::fs::remove_file(file) {
                    // Leave things as they were: the new name was only a second link.
                    let _ = std::fs::remove_file(&candidate);
                    return Err(format!("cannot move {} ({e})", file.display()));
                }
                return Ok(candidate);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(_) if candidate.symlink_metadata().is_ok() => continue,
            // No hard links here (another file system, FAT): rename, the name checked free.
            Err(_) => {
                return std::fs::rename(file, &candidate)
                    .map(|_| candidate)
                    .map_err(|e| format!("cannot move {} ({e})", file.display()));
            }
        }
    }
    Err(format!(
        "no free name for {} in {}",
        name.to_string_lossy(),
        dir.display()
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn mistakes_come_most_confident_first() {
        let labels = vec!["a".to_string(), "b".to_string()];
        let r = ClassificationReport::compute(
            &labels,
            &[0, 0, 1, 1],
            &[
                vec![0.9, 0.1],
                vec![0.4, 0.6],
                vec![0.95, 0.05],
                vec![0.2, 0.8],
            ],
            &[
                "a1.png".into(),
                "a2.png".into(),
                "b1.png".into(),
                "b2.png".into(),
            ],
        );
        let wrong: Vec<&str> = mistakes(&r)
            .iter()
            .map(|s| s.input.to_str().unwrap())
            .collect();
        assert_eq!(wrong, ["b1.png", "a2.png"]);
    }

    #[test]
    fn samples_are_told_apart_by_name() {
        let kind = |s: &str, k| SampleKind::of(Path::new(s), k);
        assert_eq!(kind("/d/cat/1.JPG", PreviewKind::Image), SampleKind::Image);
        assert_eq!(kind("/d/hum/1.wav", PreviewKind::Sound), SampleKind::Sound);
        assert_eq!(kind("/d/spam/1.txt", PreviewKind::Text), SampleKind::Text);
        assert_eq!(
            kind("penguins.csv:5", PreviewKind::Table),
            SampleKind::TableRow {
                file: "penguins.csv".into(),
                line: 5
            }
        );
        assert_eq!(
            kind("/d/t.jsonl:12", PreviewKind::Text),
            SampleKind::TableRow {
                file: "/d/t.jsonl".into(),
                line: 12
            }
        );
        assert_eq!(
            kind("walk/session-3", PreviewKind::Table),
            SampleKind::Other
        );
    }

    #[test]
    fn details_read_text_rows_and_sound_lengths() {
        let tmp = tempfile::tempdir().unwrap();
        let text = tmp.path().join("note.txt");
        std::fs::write(&text, "  Win   a\nprize   now ").unwrap();
        assert_eq!(
            details(&text, &SampleKind::Text, &[]).unwrap(),
            "Win a prize now"
        );
        let table = tmp.path().join("data").join("birds.csv");
        std::fs::create_dir_all(table.parent().unwrap()).unwrap();
        std::fs::write(&table, "wing,mass,species\n1.5,30,finch\n2.5,,crow\n").unwrap();
        // Named by file name only, as table reports name rows: found among the project's tables.
        let row = SampleKind::of(Path::new("birds.csv:3"), PreviewKind::Table);
        assert_eq!(
            details(Path::new("birds.csv:3"), &row, std::slice::from_ref(&table)).unwrap(),
            "wing: 2.5 \u{b7} mass: \u{2014} \u{b7} species: crow"
        );
        let missing = SampleKind::of(Path::new("birds.csv:9"), PreviewKind::Table);
        assert!(details(Path::new("birds.csv:9"), &missing, &[table]).is_err());
        // A 16 kHz mono 16-bit WAV of 8000 samples: half a second.
        let wav = tmp.path().join("clip.wav");
        let samples = 8000u32;
        let mut bytes = Vec::new();
        bytes.extend_from_slice(b"RIFF");
        bytes.extend_from_slice(&(36 + samples * 2).to_le_bytes());
        bytes.extend_from_slice(b"WAVEfmt ");
        bytes.extend_from_slice(&16u32.to_le_bytes());
        bytes.extend_from_slice(&1u16.to_le_bytes());
        bytes.extend_from_slice(&1u16.to_le_bytes());
        bytes.extend_from_slice(&16000u32.to_le_bytes());
        bytes.extend_from_slice(&32000u32.to_le_bytes());
        bytes.extend_from_slice(&2u16.to_le_bytes());
        bytes.extend_from_slice(&16u16.to_le_bytes());
        bytes.extend_from_slice(b"data");
        bytes.extend_from_slice(&(samples * 2).to_le_bytes());
        bytes.resize(bytes.len() + samples as usize * 2, 0);
        std::fs::write(&wav, bytes).unwrap();
        assert_eq!(details(&wav, &SampleKind::Sound, &[]).unwrap(), "0.50 s");
    }

    #[test]
    fn a_fix_moves_into_the_class_folder_never_overwriting_and_undoes() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("train");
        for class in ["cat", "dog"] {
            std::fs::create_dir_all(root.join(class)).unwrap();
        }
        let wrong = root.join("cat").join("1.png");
        std::fs::write(&wrong, "really a dog").unwrap();
        // The dog folder already has a 1.png and a 1-1.png.
        std::fs::write(root.join("dog/1.png"), "a dog").unwrap();
        std::fs::write(root.join("dog/1-1.png"), "another dog").unwrap();
        let roots = vec![tmp.path().join("test"), root.clone()];
        assert_eq!(class_root(&wrong, "cat", &roots), Some(root.clone()));
        assert_eq!(class_root(&wrong, "dog", &roots), None);
        assert_eq!(class_root(&root.join("loose.png"), "cat", &roots), None);

        let moved = move_to_class(&wrong, &root, "dog").unwrap();
        assert_eq!(moved, root.join("dog/1-2.png"));
        assert_eq!(std::fs::read_to_string(&moved).unwrap(), "really a dog");
        assert!(!wrong.exists());
        assert_eq!(
            std::fs::read_to_string(root.join("dog/1.png")).unwrap(),
            "a dog"
        );
        assert_eq!(
            std::fs::read_to_string(root.join("dog/1-1.png")).unwrap(),
            "another dog"
        );
        // A class folder that does not exist yet is made.
        let fix = LabelFix {
            from: wrong.clone(),
            to: moved.clone(),
            old_label: "cat".into(),
            new_label: "dog".into(),
        };
        assert_eq!(undo(&fix).unwrap(), wrong);
        assert_eq!(std::fs::read_to_string(&wrong).unwrap(), "really a dog");
        assert!(!moved.exists());
        let bird = move_to_class(&wrong, &root, "bird").unwrap();
        assert_eq!(bird, root.join("bird/1.png"));
        assert!(move_to_class(&bird, &root, "../x").is_err());
        // Undo where the old name was taken since: beside it, under a free name.
        std::fs::write(&wrong, "a new cat").unwrap();
        let fix = LabelFix {
            from: wrong.clone(),
            to: bird.clone(),
            old_label: "cat".into(),
            new_label: "bird".into(),
        };
        assert_eq!(undo(&fix).unwrap(), root.join("cat/1-1.png"));
        assert_eq!(std::fs::read_to_string(&wrong).unwrap(), "a new cat");
    }
}
