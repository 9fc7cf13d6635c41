//! The Export screen's form (Create ML's Output tab): the model's name and where it goes, its
//! metadata (author, license, description, version) and fp16, turned into one
//! [`ExportRequest`] per format; and the job side: measuring what each format would weigh (a
//! trial export into a scratch folder) and exporting without ever replacing a file silently.
//! The writes themselves are the engine's (`templates::export::export_with`): a temporary file
//! renamed over the target, a safetensors folder staged and swapped in.

use lathe_engine::templates::export::{ExportOptions, export_with};
use std::path::{Path, PathBuf};

/// The formats the engine writes, with the button and what it is for.
pub const FORMATS: [(&str, &str, &str); 3] = [
    (
        "safetensors",
        "Export safetensors",
        "A folder for PyTorch and Hugging Face (model.safetensors, config.json, preprocessor_config.json)",
    ),
    ("coreml", "Export Core ML", "For Apple apps (iOS, macOS)"),
    (
        "onnx",
        "Export ONNX",
        "For ONNX Runtime: Windows, Linux, Android, the web",
    ),
];

/// A format's name in sentences ("Core ML").
pub fn format_title(format: &str) -> &str {
    match format {
        "safetensors" => "safetensors",
        "coreml" => "Core ML",
        "onnx" => "ONNX",
        other => other,
    }
}

/// What the form holds, as typed (UI state). Empty metadata fields keep each format's default.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ExportForm {
    /// The model whose defaults fill the name and folder (see [`ExportForm::fill_defaults`]).
    pub filled_for: Option<PathBuf>,
    /// The name and folder proposed then.
    pub proposed: (String, String),
    pub name: String,
    /// The output folder, as typed (`~` is the home folder; relative paths start there).
    pub folder: String,
    pub author: String,
    pub license: String,
    pub description: String,
    pub version: String,
    pub fp16: bool,
}

/// One export asked for.
#[derive(Clone, Debug, PartialEq)]
pub struct ExportRequest {
    pub format: String,
    /// The file (Core ML, ONNX) or folder (safetensors) to write.
    pub target: PathBuf,
    pub options: ExportOptions,
    /// The user said an existing target may be replaced.
    pub replace: bool,
}

/// A finished export.
#[derive(Clone, Debug, PartialEq)]
pub struct ExportedFile {
    pub format: String,
    pub path: PathBuf,
    pub bytes: u64,
}

/// Why an export did not happen.
#[derive(Clone, Debug, PartialEq)]
pub enum ExportProblem {
    /// The target exists and replacing it was not asked for: ask first.
    Exists(PathBuf),
    Failed(String),
}

/// The model name proposed: the project's name without spaces or punctuation
/// ("Image Classifier" → "ImageClassifier"), else "Model".
pub fn default_name(project_name: Option<&str>) -> String {
    let name: String = project_name
        .unwrap_or_default()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    if name.is_empty() {
        "Model".into()
    } else {
        name
    }
}

/// The folder proposed: the run's `exports` folder.
pub fn default_folder(source: &Path) -> PathBuf {
    source.join("exports")
}

/// A usable model name (file names are made from it), or why not.
pub fn check_name(name: &str) -> Result<String, String> {
    let name = name.trim();
    if name.is_empty() {
        return Err("Give the model a name".into());
    }
    if name.starts_with('.')
        || name
            .chars()
            .any(|c| matches!(c, '/' | '\\' | ':') || c.is_control())
    {
        return Err(
            "A model name cannot start with a dot or contain / \\ or : (it names the file)".into(),
        );
    }
    Ok(name.to_string())
}

/// The file (or folder) a format writes for a model named `name`.
pub fn file_name(format: &str, name: &str) -> String {
    match format {
        "coreml" => format!("{name}.mlmodel"),
        "onnx" => format!("{name}.onnx"),
        _ => name.to_string(),
    }
}

impl ExportForm {
    /// Proposes `name` and `folder` for the model from `source` the first time the form shows it:
    /// fields still holding the earlier model's proposal (or empty) take the new one; what the
    /// user typed stays.
    pub fn fill_defaults(&mut self, source: &Path, name: &str, folder: &Path) {
        if self.filled_for.as_deref() == Some(source) {
            return;
        }
        let folder = folder.display().to_string();
        if self.name.is_empty() || self.name == self.proposed.0 {
            self.name = name.to_string();
        }
        if self.folder.is_empty() || self.folder == self.proposed.1 {
            self.folder = folder.clone();
        }
        self.proposed = (name.to_string(), folder);
        self.filled_for = Some(source.to_path_buf());
    }

    /// The name used: the typed one, else `default`.
    pub fn name_or(&self, default: &str) -> Result<String, String> {
        if self.name.trim().is_empty() {
            check_name(default)
        } else {
            check_name(&self.name)
        }
    }

    /// The folder used: the typed one (`~` expanded, relative to the home folder), else
    /// `default`. No file access.
    pub fn folder_or(&self, default: &Path) -> PathBuf {
        if self.folder.trim().is_empty() {
            return default.to_path_buf();
        }
        let home = crate::file_dialog::home_dir();
        crate::file_dialog::typed_path(&self.folder, home.as_deref())
    }

    /// The metadata and precision for `format` (fp16 only where it applies: Core ML and ONNX).
    pub fn options(&self, format: &str) -> ExportOptions {
        let given = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
        ExportOptions {
            fp16: self.fp16 && format != "safetensors",
            author: given(&self.author),
            license: given(&self.license),
            description: given(&self.description),
            version: given(&self.version),
        }
    }

    /// The request for `format`, with `default_name` and `default_folder` for empty fields.
    pub fn request(
        &self,
        format: &str,
        default_name: &str,
        default_folder: &Path,
    ) -> Result<ExportRequest, String> {
        let name = self.name_or(default_name)?;
        Ok(ExportRequest {
            format: format.to_string(),
            target: self
                .folder_or(default_folder)
                .join(file_name(format, &name)),
            options: self.options(format),
            replace: false,
        })
    }
}

/// Bytes of a file, or of every file under a folder.
pub fn size_of(path: &Path) -> u64 {
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => std::fs::read_dir(path)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .map(|e| size_of(&e.path()))
                    .sum()
            })
            .unwrap_or(0),
        Ok(m) => m.len(),
        Err(_) => 0,
    }
}

/// Exports as asked (on a job): never over an existing file or folder unless `replace` says so,
/// never a folder where a file goes or the other way round.
pub fn export(source: &Path, request: &ExportRequest) -> Result<ExportedFile, ExportProblem> {
    let target = &request.target;
    let folder_format = request.format == "safetensors";
    if let Ok(m) = std::fs::symlink_metadata(target) {
        if m.is_dir() != folder_format {
            return Err(ExportProblem::Failed(format!(
                "{} is a {}, and a {} export writes a {}: choose another name or folder",
                target.display(),
                if m.is_dir() { "folder" } else { "file" },
                format_title(&request.format),
                if folder_format { "folder" } else { "file" }
            )));
        }
        if !request.replace {
            return Err(ExportProblem::Exists(target.clone()));
        }
    }
    let path = export_with(source, &request.format, Some(target), &request.options)
        .map_err(|e| ExportProblem::Failed(e.to_string()))?;
    Ok(ExportedFile {
        format: request.format.clone(),
        bytes: size_of(&path),
        path,
    })
}

/// What `format` would weigh (on a job): the model folder's files for safetensors; for Core ML
/// and ONNX a trial export into `scratch`, removed afterwards. An error says why the model cannot
/// be exported in that format.
pub fn measure(source: &Path, format: &str, fp16: bool, scratch: &Path) -> Result<u64, String> {
    if format == "safetensors" {
        let model = lathe_engine::templates::model_dir(source).map_err(|e| e.to_string())?;
        return Ok(size_of(&model));
    }
    let form = ExportForm {
        fp16,
        ..Default::default()
    };
    let target = scratch.join(file_name(format, "trial"));
    let result = export_with(source, format, Some(&target), &form.options(format))
        .map(|p| size_of(&p))
        .map_err(|e| e.to_string());
    let _ = std::fs::remove_dir_all(scratch);
    result
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_form_makes_one_request_per_format() {
        assert_eq!(default_name(Some("Image Classifier")), "ImageClassifier");
        assert_eq!(default_name(Some("!!")), "Model");
        assert!(check_name("../x").is_err());
        assert!(check_name(".hidden").is_err());
        let mut form = ExportForm {
            author: " Ada ".into(),
            fp16: true,
            ..Default::default()
        };
        let request = form
            .request("onnx", "Penguins", Path::new("/runs/r/exports"))
            .unwrap();
        assert_eq!(request.target, Path::new("/runs/r/exports/Penguins.onnx"));
        assert_eq!(request.options.author.as_deref(), Some("Ada"));
        assert_eq!(request.options.license, None);
        assert!(request.options.fp16);
        // The defaults fill the form once per model; what was typed stays.
        form.fill_defaults(
            Path::new("/runs/r"),
            "Penguins",
            Path::new("/runs/r/exports"),
        );
        assert_eq!(
            (form.name.as_str(), form.folder.as_str()),
            ("Penguins", "/runs/r/exports")
        );
        form.name = "Mine".into();
        form.fill_defaults(
            Path::new("/runs/s"),
            "Penguins",
            Path::new("/runs/s/exports"),
        );
        assert_eq!(
            (form.name.as_str(), form.folder.as_str()),
            ("Mine", "/runs/s/exports")
        );
        form.name.clear();
        form.folder.clear();
        // fp16 does not apply to a safetensors folder.
        let folder = form
            .request("safetensors", "Penguins", Path::new("/out"))
            .unwrap();
        assert_eq!(folder.target, Path::new("/out/Penguins"));
        assert!(!folder.options.fp16);
        // A typed folder: `~` is the home folder, and so is the start of a relative path.
        if let Some(home) = crate::file_dialog::home_dir() {
            form.folder = "~/models".into();
            form.name = "Birds".into();
            let r = form.request("coreml", "x", Path::new("/out")).unwrap();
            assert_eq!(r.target, home.join("models/Birds.mlmodel"));
            form.folder = "models".into();
            assert_eq!(form.folder_or(Path::new("/out")), home.join("models"));
        }
    }

    #[test]
    fn an_existing_target_is_never_replaced_without_asking() {
        let tmp = tempfile::tempdir().unwrap();
        let existing = tmp.path().join("Model.onnx");
        std::fs::write(&existing, b"keep me").unwrap();
        let request = ExportRequest {
            format: "onnx".into(),
            target: existing.clone(),
            options: ExportOptions::default(),
            replace: false,
        };
        assert_eq!(
            export(tmp.path(), &request),
            Err(ExportProblem::Exists(existing.clone()))
        );
        assert_eq!(std::fs::read(&existing).unwrap(), b"keep me");
        // A folder where the file goes is refused even when replacing.
        let folder = tmp.path().join("Folder.onnx");
        std::fs::create_dir_all(&folder).unwrap();
        let request = ExportRequest {
            target: folder,
            replace: true,
            ..request
        };
        assert!(matches!(
            export(tmp.path(), &request),
            Err(ExportProblem::Failed(e)) if e.contains("is a folder")
        ));
    }
}
