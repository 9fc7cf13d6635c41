//! `project.toml`: the one file the app saves and `lathe train` runs headless — template, data
//! folders, parameters, seed, device and export formats. Paths inside are relative to the file.

use crate::error::{Error, Result};
use crate::fsutil::atomic_write;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The project-file format this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;

/// A Lathe project.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Project {
    /// Format of this file; a newer one than [`FORMAT_VERSION`] is refused.
    pub format_version: u32,
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// Template id (`lathe templates`).
    pub template: String,
    /// Seed for splits, augmentation and initialization: the same seed gives the same model.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// `cpu`, `auto`, `cuda`, `cuda:N` or `metal`.
    #[serde(default = "default_device")]
    pub device: String,
    pub data: DataPaths,
    /// Parameters of the template's task; missing ones take the template's defaults.
    #[serde(default)]
    pub params: toml::Table,
    #[serde(default)]
    pub export: ExportSettings,
    /// Where this project was loaded from (relative data paths resolve against its folder).
    #[serde(skip)]
    pub file: Option<PathBuf>,
}

/// The data a project trains and tests on.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataPaths {
    /// Training data (a folder or a file, depending on the template).
    pub train: PathBuf,
    /// Validation data; when absent a stratified, seeded split of `train` is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation: Option<PathBuf>,
    /// Test data, evaluated once after training.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<PathBuf>,
}

/// What to write into the run's `model/` folder after training.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportSettings {
    /// `safetensors` (always written), `coreml` and/or `onnx`.
    #[serde(default = "default_formats")]
    pub formats: Vec<String>,
}

impl Default for ExportSettings {
    fn default() -> Self {
        Self {
            formats: default_formats(),
        }
    }
}

fn default_seed() -> u64 {
    42
}

fn default_device() -> String {
    "cpu".into()
}

fn default_formats() -> Vec<String> {
    vec!["safetensors".into()]
}

impl Project {
    /// A new project for `template` training on `train`.
    pub fn new(template: &str, train: PathBuf) -> Self {
        Self {
            format_version: FORMAT_VERSION,
            name: String::new(),
            template: template.into(),
            seed: default_seed(),
            device: default_device(),
            data: DataPaths {
                train,
                validation: None,
                test: None,
            },
            params: toml::Table::new(),
            export: ExportSettings::default(),
            file: None,
        }
    }

    /// Reads and checks a project file. Errors name the file and the offending key.
    pub fn load(path: &Path) -> Result<Self> {
        let text =
            std::fs::read_to_string(path).map_err(|e| Error::io("reading project", path, e))?;
        Self::parse(&text, Some(path))
    }

    /// Parses project TOML; `file` is used for error messages and relative paths.
    pub fn parse(text: &str, file: Option<&Path>) -> Result<Self> {
        // Look at the version first, so a file from a newer Lathe gets a useful message rather
        // than a complaint about keys this build does not know.
        let raw: toml::Table = toml::from_str(text).map_err(|e| {
            Error::project(
                format!("not valid TOML ({})", one_line(&e.to_string())),
                file,
            )
        })?;
        match raw.get("format_version") {
            Some(toml::Value::Integer(v)) if *v > FORMAT_VERSION as i64 => {
                return Err(Error::project(
                    format!(
                        "project format_version {v} is newer than this Lathe understands ({FORMAT_VERSION}); update Lathe"
                    ),
                    file,
                ));
            }
            Some(toml::Value::Integer(v)) if *v < 1 => {
                return Err(Error::project(
                    format!("project format_version {v} is not valid; use {FORMAT_VERSION}"),
                    file,
                ));
            }
            Some(toml::Value::Integer(_)) => {}
            Some(_) => {
                return Err(Error::project(
                    "format_version must be a whole number",
                    file,
                ));
            }
            None => {
                return Err(Error::project(
                    format!("missing `format_version = {FORMAT_VERSION}`"),
                    file,
                ));
            }
        }
        let mut project: Project = toml::from_str(text).map_err(|e| {
            Error::project(
                format!("invalid project ({})", one_line(&e.to_string())),
                file,
            )
        })?;
        project.file = file.map(Path::to_path_buf);
        for format in &project.export.formats {
            if !["safetensors", "coreml", "onnx"].contains(&format.as_str()) {
                return Err(Error::project(
                    format!(
                        "unknown export format \"{format}\" in [export] formats; use safetensors, coreml or onnx"
                    ),
                    file,
                ));
            }
        }
        Ok(project)
    }

    /// Writes the project atomically. Data paths inside `dir` are stored relative to it.
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut copy = self.clone();
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let abs_base = std::path::absolute(&base).unwrap_or(base);
        copy.data.train = relative_to(&self.resolve(&self.data.train), &abs_base);
        copy.data.validation = self
            .data
            .validation
            .as_ref()
            .map(|p| relative_to(&self.resolve(p), &abs_base));
        copy.data.test = self
            .data
            .test
            .as_ref()
            .map(|p| relative_to(&self.resolve(p), &abs_base));
        let text = toml::to_string_pretty(&copy)
            .map_err(|e| Error::project(format!("cannot serialize project ({e})"), Some(path)))?;
        atomic_write(path, text.as_bytes())
    }

    /// The folder relative paths are resolved against.
    pub fn base_dir(&self) -> PathBuf {
        self.file
            .as_ref()
            .and_then(|f| f.parent().map(Path::to_path_buf))
            .unwrap_or_default()
    }

    /// Resolves a data path from this project to an absolute one.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        let joined = if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.base_dir().join(path)
        };
        std::path::absolute(&joined).unwrap_or(joined)
    }
}

fn relative_to(path: &Path, base: &Path) -> PathBuf {
    path.strip_prefix(base)
        .map(Path::to_path_buf)
        .unwrap_or_else(|_| path.to_path_buf())
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_with_relative_paths() {
        let dir = tempfile::tempdir().unwrap();
        let mut p = Project::new("image-classifier", dir.path().join("data/train"));
        p.data.test = Some(dir.path().join("data/test"));
        p.params.insert("epochs".into(), toml::Value::Integer(3));
        let file = dir.path().join("project.toml");
        p.save(&file).unwrap();
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(text.contains("train = \"data/train\""), "{text}");
        let back = Project::load(&file).unwrap();
        assert_eq!(
            back.resolve(&back.data.train),
            std::path::absolute(dir.path().join("data/train")).unwrap()
        );
        assert_eq!(back.params["epochs"], toml::Value::Integer(3));
    }

    #[test]
    fn bad_files_get_messages_that_say_what_to_do() {
        let f = Some(Path::new("p.toml"));
        let newer = "format_version = 99\ntemplate = \"x\"\n[data]\ntrain = \"t\"\n";
        assert!(
            Project::parse(newer, f)
                .unwrap_err()
                .to_string()
                .contains("update Lathe")
        );
        let unknown = "format_version = 1\ntemplate = \"x\"\ncolour = 1\n[data]\ntrain = \"t\"\n";
        let e = Project::parse(unknown, f).unwrap_err().to_string();
        assert!(e.contains("colour") && e.ends_with("p.toml"), "{e}");
        let wrong_type = "format_version = 1\ntemplate = 3\n[data]\ntrain = \"t\"\n";
        assert!(Project::parse(wrong_type, f).is_err());
        let missing = "template = \"x\"\n[data]\ntrain = \"t\"\n";
        assert!(
            Project::parse(missing, f)
                .unwrap_err()
                .to_string()
                .contains("format_version")
        );
        let format = "format_version = 1\ntemplate = \"x\"\n[data]\ntrain = \"t\"\n[export]\nformats = [\"tflite\"]\n";
        assert!(
            Project::parse(format, f)
                .unwrap_err()
                .to_string()
                .contains("tflite")
        );
    }
}
