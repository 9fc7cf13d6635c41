//! Object-detection annotations: a folder of images plus one JSON file, in Create ML's format
//! (`[{"image": "a.jpg", "annotations": [{"label": "cat", "coordinates": {"x", "y", "width",
//! "height"}}]}]`, centre-based pixel coordinates) or COCO (`images` / `annotations` /
//! `categories`, `bbox` = top-left x, y, width, height). Parsing checks every entry: images that
//! do not exist are skipped with a warning, boxes that leave the image are clipped with a
//! warning, boxes of zero or negative size are dropped with a warning, labels that are not
//! strings and image paths that leave the dataset folder are errors. Each message names the
//! entry (`entry 3 ("a.jpg")`). The two formats are parsed in `annotation_formats`.

use crate::data::annotation_formats::{RawImage, parse_coco, parse_create_ml};
use crate::data::image_decode;
use crate::data::{HealthIssue, Severity};
use crate::error::{Error, Result};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Component, Path, PathBuf};

/// File name Lathe looks for in a detection dataset folder.
pub const ANNOTATIONS_FILE: &str = "annotations.json";

/// Most issues of one kind kept one by one (the rest are counted in a last issue).
const MAX_ISSUES_PER_CODE: usize = 20;

/// An axis-aligned box in pixels: top-left corner, width and height.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Rect {
    pub x: f32,
    pub y: f32,
    pub width: f32,
    pub height: f32,
}

impl Rect {
    /// A box from its centre and size (Create ML's convention).
    pub fn from_center(cx: f32, cy: f32, width: f32, height: f32) -> Self {
        Self {
            x: cx - width / 2.0,
            y: cy - height / 2.0,
            width,
            height,
        }
    }

    pub fn right(&self) -> f32 {
        self.x + self.width
    }

    pub fn bottom(&self) -> f32 {
        self.y + self.height
    }

    pub fn area(&self) -> f32 {
        self.width.max(0.0) * self.height.max(0.0)
    }

    pub fn center(&self) -> (f32, f32) {
        (self.x + self.width / 2.0, self.y + self.height / 2.0)
    }

    /// The part of the box inside `[0, w] × [0, h]` (possibly empty).
    pub fn clip(&self, w: f32, h: f32) -> Self {
        let x0 = self.x.clamp(0.0, w);
        let y0 = self.y.clamp(0.0, h);
        let x1 = self.right().clamp(0.0, w);
        let y1 = self.bottom().clamp(0.0, h);
        Self {
            x: x0,
            y: y0,
            width: x1 - x0,
            height: y1 - y0,
        }
    }

    /// The box scaled by `sx`, `sy` (e.g. from image pixels to model input pixels).
    pub fn scale(&self, sx: f32, sy: f32) -> Self {
        Self {
            x: self.x * sx,
            y: self.y * sy,
            width: self.width * sx,
            height: self.height * sy,
        }
    }
}

/// One labelled box; `label` indexes [`Annotations::labels`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ObjectBox {
    pub label: usize,
    pub rect: Rect,
}

/// One image with its boxes (possibly none: a negative example).
#[derive(Clone, Debug, PartialEq)]
pub struct AnnotatedImage {
    pub path: PathBuf,
    pub width: u32,
    pub height: u32,
    pub objects: Vec<ObjectBox>,
}

/// Which annotation format a file was in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    CreateMl,
    Coco,
}

/// A parsed and checked detection dataset.
#[derive(Clone, Debug)]
pub struct Annotations {
    /// The JSON file that was read.
    pub file: PathBuf,
    pub format: Format,
    /// Sorted class labels.
    pub labels: Vec<String>,
    pub images: Vec<AnnotatedImage>,
    /// Warnings and errors, each naming its entry.
    pub issues: Vec<HealthIssue>,
    /// BLAKE3 of the annotation file (for manifests).
    pub blake3: String,
}

impl Annotations {
    /// Boxes per label (in [`Self::labels`] order).
    pub fn counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.labels.len()];
        for o in self.images.iter().flat_map(|i| &i.objects) {
            if let Some(c) = counts.get_mut(o.label) {
                *c += 1;
            }
        }
        counts
    }

    pub fn has_errors(&self) -> bool {
        self.issues.iter().any(|i| i.severity == Severity::Error)
    }
}

/// Finds the annotation file of a dataset given as a folder (its `annotations.json`, else its
/// only `.json` file) or as the JSON file itself.
pub fn find_file(data: &Path) -> Result<PathBuf> {
    if data.is_file() {
        return Ok(data.to_path_buf());
    }
    if !data.is_dir() {
        return Err(Error::data(
            "no such folder; give a folder of images with an annotations.json",
            data,
        ));
    }
    let named = data.join(ANNOTATIONS_FILE);
    if named.is_file() {
        return Ok(named);
    }
    let jsons: Vec<PathBuf> = crate::fsutil::sorted_entries(data)?
        .into_iter()
        .filter(|p| {
            p.is_file()
                && p.extension()
                    .is_some_and(|e| e.eq_ignore_ascii_case("json"))
        })
        .collect();
    match jsons.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(Error::data(
            "no annotations.json here; add one in Create ML's format (or COCO JSON)",
            data,
        )),
        _ => Err(Error::data(
            "several .json files and no annotations.json; name the annotation file annotations.json",
            data,
        )),
    }
}

/// Collects issues, keeping at most [`MAX_ISSUES_PER_CODE`] of each code.
#[derive(Default)]
struct Issues {
    list: Vec<HealthIssue>,
    counts: BTreeMap<String, (usize, Severity)>,
}

impl Issues {
    fn push(&mut self, severity: Severity, code: &str, message: String, path: &Path) {
        let entry = self.counts.entry(code.to_string()).or_insert((0, severity));
        entry.0 += 1;
        if entry.0 <= MAX_ISSUES_PER_CODE {
            self.list.push(HealthIssue {
                severity,
                code: code.into(),
                message,
                paths: vec![path.to_path_buf()],
            });
        }
    }

    fn finish(mut self, file: &Path) -> Vec<HealthIssue> {
        for (code, (n, severity)) in self.counts {
            if n > MAX_ISSUES_PER_CODE {
                self.list.push(HealthIssue {
                    severity,
                    code: code.clone(),
                    message: format!(
                        "{} more entries with the same problem ({code})",
                        n - MAX_ISSUES_PER_CODE
                    ),
                    paths: vec![file.to_path_buf()],
                });
            }
        }
        self.list
    }
}

/// Reads and checks the dataset at `data` (a folder or its JSON file). With `fixed_labels` (a
/// model's labels, for evaluation) boxes of other labels are skipped with a warning; otherwise
/// the labels are those found, sorted.
pub fn load(data: &Path, fixed_labels: Option<&[String]>) -> Result<Annotations> {
    let file = find_file(data)?;
    let bytes = std::fs::read(&file).map_err(|e| Error::io("reading", &file, e))?;
    let root = file.parent().unwrap_or(Path::new(".")).to_path_buf();
    let (format, raw) = parse(&bytes, &file)?;
    let mut issues = Issues::default();
    let labels: Vec<String> = match fixed_labels {
        Some(l) => l.to_vec(),
        None => raw
            .iter()
            .flat_map(|r| r.boxes.iter().map(|b| b.label.clone()))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect(),
    };
    let index: HashMap<&str, usize> = labels
        .iter()
        .enumerate()
        .map(|(i, l)| (l.as_str(), i))
        .collect();
    let mut images = Vec::with_capacity(raw.len());
    let mut seen: HashMap<PathBuf, String> = HashMap::new();
    for entry in raw {
        let Some((path, width, height)) = image_of(&entry, &root, &file, &mut seen, &mut issues)
        else {
            continue;
        };
        let objects = checked_boxes(entry, &path, (width, height), &index, &mut issues);
        images.push(AnnotatedImage {
            path,
            width,
            height,
            objects,
        });
    }
    if images.is_empty() {
        issues.push(
            Severity::Error,
            "no_images",
            "no usable image in the annotation file; check the image names against the folder"
                .into(),
            &file,
        );
    } else if images.iter().all(|i| i.objects.is_empty()) {
        issues.push(
            Severity::Error,
            "no_boxes",
            "no usable box in the annotation file; annotate at least one object".into(),
            &file,
        );
    }
    Ok(Annotations {
        issues: issues.finish(&file),
        file,
        format,
        labels,
        images,
        blake3: blake3::hash(&bytes).to_hex().to_string(),
    })
}

/// The annotation file's format and its entries as written.
fn parse(bytes: &[u8], file: &Path) -> Result<(Format, Vec<RawImage>)> {
    let json: Value = serde_json::from_slice(bytes).map_err(|e| {
        Error::data(
            format!("annotation file is not valid JSON ({e}); fix the file"),
            file,
        )
    })?;
    Ok(match &json {
        Value::Array(entries) => (Format::CreateMl, parse_create_ml(entries, file)?),
        Value::Object(o) if o.contains_key("images") && o.contains_key("annotations") => {
            (Format::Coco, parse_coco(&json, file)?)
        }
        _ => {
            return Err(Error::data(
                "annotation file is neither Create ML JSON (a list of {\"image\", \"annotations\"}) nor COCO JSON (\"images\", \"annotations\", \"categories\")",
                file,
            ));
        }
    })
}

/// The image of `entry`: its path inside `root` and its size; `None` (with an issue) when the
/// path leaves the folder, the image is listed again (`seen`) or cannot be read.
fn image_of(
    entry: &RawImage,
    root: &Path,
    file: &Path,
    seen: &mut HashMap<PathBuf, String>,
    issues: &mut Issues,
) -> Option<(PathBuf, u32, u32)> {
    let Some(path) = safe_join(root, &entry.file_name) else {
        issues.push(
            Severity::Error,
            "path_outside_dataset",
            format!(
                "{}: the image path leaves the dataset folder, which Lathe refuses; use a path inside the folder",
                entry.name
            ),
            file,
        );
        return None;
    };
    if let Some(first) = seen.get(&path) {
        issues.push(
            Severity::Warning,
            "duplicate_entry",
            format!(
                "{}: the image is listed again (first as {first}); only the first entry is used",
                entry.name
            ),
            &path,
        );
        return None;
    }
    seen.insert(path.clone(), entry.name.clone());
    let size = std::fs::read(&path)
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                "the image does not exist".to_string()
            } else {
                format!("cannot read the image ({e})")
            }
        })
        .and_then(|b| image_decode::probe(&b));
    match size {
        Ok((width, height)) => Some((path, width, height)),
        Err(reason) => {
            issues.push(
                Severity::Warning,
                "unknown_image",
                format!("{}: {reason}; the entry was skipped", entry.name),
                &path,
            );
            None
        }
    }
}

/// The boxes of `entry` that pass the checks, clipped to the `width`×`height` image: boxes of
/// no size, outside the image or of a label not in `index` are dropped with a warning.
fn checked_boxes(
    entry: RawImage,
    path: &Path,
    (width, height): (u32, u32),
    index: &HashMap<&str, usize>,
    issues: &mut Issues,
) -> Vec<ObjectBox> {
    let mut objects = Vec::with_capacity(entry.boxes.len());
    for (k, b) in entry.boxes.into_iter().enumerate() {
        let what = format!("{}, box {k} (\"{}\")", entry.name, b.label);
        let r = b.rect;
        let finite = [r.x, r.y, r.width, r.height].iter().all(|v| v.is_finite());
        if !finite || r.width <= 0.0 || r.height <= 0.0 {
            issues.push(
                Severity::Warning,
                "empty_box",
                format!(
                    "{what}: width {} and height {} must be positive; the box was dropped",
                    r.width, r.height
                ),
                path,
            );
            continue;
        }
        let clipped = r.clip(width as f32, height as f32);
        if clipped.width <= 0.0 || clipped.height <= 0.0 {
            issues.push(
                Severity::Warning,
                "box_outside_image",
                format!(
                    "{what}: the box lies outside the {width}×{height} image; the box was dropped"
                ),
                path,
            );
            continue;
        }
        if clipped != r {
            issues.push(
                Severity::Warning,
                "box_clipped",
                format!(
                    "{what}: the box reaches outside the {width}×{height} image; it was clipped to the image"
                ),
                path,
            );
        }
        let Some(&label) = index.get(b.label.as_str()) else {
            issues.push(
                Severity::Warning,
                "unknown_label",
                format!(
                    "{what}: the model has no label \"{}\"; the box was skipped",
                    b.label
                ),
                path,
            );
            continue;
        };
        objects.push(ObjectBox {
            label,
            rect: clipped,
        });
    }
    objects
}

/// `root/name` if `name` is a relative path that stays inside `root` (no `..`, no absolute path).
pub fn safe_join(root: &Path, name: &str) -> Option<PathBuf> {
    let rel = Path::new(name);
    if name.is_empty() {
        return None;
    }
    for c in rel.components() {
        match c {
            Component::Normal(_) | Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(root.join(rel))
}

/// Writes `entries` (image file name, boxes with label names) as Create ML JSON.
pub fn create_ml_json(entries: &[(String, Vec<(String, Rect)>)]) -> Value {
    Value::Array(
        entries
            .iter()
            .map(|(image, boxes)| {
                serde_json::json!({
                    "image": image,
                    "annotations": boxes.iter().map(|(label, r)| {
                        let (cx, cy) = r.center();
                        serde_json::json!({
                            "label": label,
                            "coordinates": {"x": cx, "y": cy, "width": r.width, "height": r.height},
                        })
                    }).collect::<Vec<_>>(),
                })
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A folder with 40×30 images `a.png`, `b.png` and the given annotation JSON.
    fn dataset(json: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for name in ["a.png", "b.png"] {
            image::RgbImage::new(40, 30)
                .save(dir.path().join(name))
                .unwrap();
        }
        std::fs::write(dir.path().join(ANNOTATIONS_FILE), json).unwrap();
        dir
    }

    fn codes(a: &Annotations) -> Vec<&str> {
        a.issues.iter().map(|i| i.code.as_str()).collect()
    }

    #[test]
    fn create_ml_centre_coordinates_become_top_left_boxes() {
        let d = dataset(
            r#"[{"image": "a.png", "annotations": [
                {"label": "cat", "coordinates": {"x": 20, "y": 15, "width": 10, "height": 6}},
                {"label": "bird", "coordinates": {"x": 5.5, "y": 4, "width": 3, "height": 2}}]},
               {"image": "b.png", "annotations": []}]"#,
        );
        let a = load(d.path(), None).unwrap();
        assert_eq!(a.format, Format::CreateMl);
        assert_eq!(a.labels, vec!["bird", "cat"]);
        assert!(a.issues.is_empty(), "{:?}", a.issues);
        assert_eq!(a.images.len(), 2);
        assert_eq!((a.images[0].width, a.images[0].height), (40, 30));
        assert_eq!(
            a.images[0].objects[0],
            ObjectBox {
                label: 1,
                rect: Rect {
                    x: 15.0,
                    y: 12.0,
                    width: 10.0,
                    height: 6.0
                }
            }
        );
        assert_eq!(
            a.images[0].objects[1].rect,
            Rect {
                x: 4.0,
                y: 3.0,
                width: 3.0,
                height: 2.0
            }
        );
        assert!(a.images[1].objects.is_empty());
        assert_eq!(a.counts(), vec![1, 1]);
    }

    #[test]
    fn coco_bbox_is_top_left_and_categories_name_labels() {
        let dir = tempfile::tempdir().unwrap();
        image::RgbImage::new(40, 30)
            .save(dir.path().join("a.png"))
            .unwrap();
        std::fs::write(
            dir.path().join("instances.json"),
            r#"{"images": [{"id": 7, "file_name": "a.png", "width": 40, "height": 30}],
                "annotations": [{"id": 1, "image_id": 7, "category_id": 3, "bbox": [1, 2, 10, 5]},
                                {"id": 2, "image_id": 7, "category_id": 3, "bbox": [0, 0, 5, 5], "iscrowd": 1}],
                "categories": [{"id": 3, "name": "dog"}]}"#,
        )
        .unwrap();
        let a = load(dir.path(), None).unwrap();
        assert_eq!(a.format, Format::Coco);
        assert_eq!(a.labels, vec!["dog"]);
        assert_eq!(
            a.images[0].objects,
            vec![ObjectBox {
                label: 0,
                rect: Rect {
                    x: 1.0,
                    y: 2.0,
                    width: 10.0,
                    height: 5.0
                }
            }]
        );
    }

    #[test]
    fn bad_entries_are_named_warnings() {
        let d = dataset(
            r#"[{"image": "missing.png", "annotations": [{"label": "cat", "coordinates": {"x": 1, "y": 1, "width": 1, "height": 1}}]},
               {"image": "a.png", "annotations": [
                {"label": "cat", "coordinates": {"x": 38, "y": 15, "width": 10, "height": 10}},
                {"label": "cat", "coordinates": {"x": 10, "y": 10, "width": 0, "height": 5}},
                {"label": "cat", "coordinates": {"x": 10, "y": 10, "width": -4, "height": 5}},
                {"label": "cat", "coordinates": {"x": 100, "y": 100, "width": 4, "height": 5}}]}]"#,
        );
        let a = load(d.path(), None).unwrap();
        assert_eq!(
            codes(&a),
            vec![
                "unknown_image",
                "box_clipped",
                "empty_box",
                "empty_box",
                "box_outside_image"
            ]
        );
        assert!(a.issues.iter().all(|i| i.severity == Severity::Warning));
        assert!(
            a.issues[0].message.contains("entry 0 (\"missing.png\")"),
            "{}",
            a.issues[0].message
        );
        assert!(
            a.issues[1].message.contains("entry 1 (\"a.png\"), box 0"),
            "{}",
            a.issues[1].message
        );
        // Clipped to the image: x from 33 to 40.
        assert_eq!(
            a.images[0].objects,
            vec![ObjectBox {
                label: 0,
                rect: Rect {
                    x: 33.0,
                    y: 10.0,
                    width: 7.0,
                    height: 10.0
                }
            }]
        );
    }

    #[test]
    fn paths_leaving_the_folder_are_refused() {
        for name in ["../a.png", "/etc/passwd", "sub/../../a.png"] {
            let d = dataset(&format!(
                r#"[{{"image": "{name}", "annotations": []}}, {{"image": "a.png", "annotations": [{{"label": "x", "coordinates": {{"x": 5, "y": 5, "width": 4, "height": 4}}}}]}}]"#
            ));
            let a = load(d.path(), None).unwrap();
            assert!(a.has_errors(), "{name}");
            let e = &a.issues[0];
            assert_eq!(e.code, "path_outside_dataset");
            assert!(e.message.contains(name), "{}", e.message);
        }
        assert!(safe_join(Path::new("/data"), "sub/./a.png").is_some());
    }

    #[test]
    fn wrong_types_are_errors_naming_the_entry() {
        let d = dataset(
            r#"[{"image": "a.png", "annotations": [{"label": 3, "coordinates": {"x": 1, "y": 1, "width": 1, "height": 1}}]}]"#,
        );
        let e = load(d.path(), None).unwrap_err().to_string();
        assert!(
            e.contains("entry 0 (\"a.png\"), box 0: \"label\" must be a non-empty string, found 3"),
            "{e}"
        );
        let d = dataset(
            r#"[{"image": "a.png", "annotations": [{"label": "cat", "coordinates": {"x": "1", "y": 1, "width": 1, "height": 1}}]}]"#,
        );
        let e = load(d.path(), None).unwrap_err().to_string();
        assert!(e.contains("\"x\" must be a number"), "{e}");
        let d = dataset(r#"{"not": "either format"}"#);
        assert!(
            load(d.path(), None)
                .unwrap_err()
                .to_string()
                .contains("neither Create ML JSON")
        );
        let d = dataset("[{");
        assert!(
            load(d.path(), None)
                .unwrap_err()
                .to_string()
                .contains("not valid JSON")
        );
    }

    #[test]
    fn fixed_labels_skip_unknown_ones() {
        let d = dataset(
            r#"[{"image": "a.png", "annotations": [{"label": "cat", "coordinates": {"x": 5, "y": 5, "width": 4, "height": 4}}, {"label": "emu", "coordinates": {"x": 15, "y": 5, "width": 4, "height": 4}}]}]"#,
        );
        let labels = vec!["cat".to_string(), "dog".to_string()];
        let a = load(d.path(), Some(&labels)).unwrap();
        assert_eq!(codes(&a), vec!["unknown_label"]);
        assert_eq!(a.images[0].objects.len(), 1);
    }
}
