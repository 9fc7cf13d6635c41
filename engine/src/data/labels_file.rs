//! Labels files for multi-label data: a CSV (`image,labels` with labels separated by `;` or `|`)
//! or JSON (`{"a.jpg": ["cat", "dog"]}` or `[{"image": "a.jpg", "labels": [..]}]`) that maps
//! image paths, relative to the data folder, to their labels. Errors name the file and line.

use crate::error::{Error, Result};
use std::path::{Component, Path, PathBuf};

/// One entry: an image (relative path) and its labels (possibly none: a negative example).
#[derive(Clone, Debug, PartialEq)]
pub struct LabelEntry {
    pub image: PathBuf,
    pub labels: Vec<String>,
    /// 1-based line (CSV) or entry number (JSON), for messages.
    pub line: usize,
}

/// Reads a labels file (CSV or JSON by extension).
pub fn read(path: &Path) -> Result<Vec<LabelEntry>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io("reading labels file", path, e))?;
    // Files saved by spreadsheets are often not UTF-8: decode as the text datasets do.
    let (text, _) = crate::data::text_data::decode(&bytes);
    let is_json = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    let entries = if is_json {
        parse_json(&text, path)?
    } else {
        parse_csv(&text, path)?
    };
    for e in &entries {
        if !is_inside(&e.image) {
            return Err(Error::data(
                format!(
                    "entry {} names \"{}\", which is outside the data folder; use paths relative to the folder",
                    e.line,
                    e.image.display()
                ),
                path,
            ));
        }
    }
    Ok(entries)
}

/// True when a relative path stays inside its folder (no `..`, no absolute or drive prefix).
pub fn is_inside(p: &Path) -> bool {
    !p.as_os_str().is_empty()
        && p.components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
}

fn split_labels(field: &str) -> Vec<String> {
    let mut out: Vec<String> = field
        .split([';', '|'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Splits one CSV line into fields, honouring double quotes (`""` is a quote inside quotes).
fn csv_fields(line: &str) -> std::result::Result<Vec<String>, &'static str> {
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', true) => quoted = false,
            ('"', false) if cur.is_empty() => quoted = true,
            (',', false) => fields.push(std::mem::take(&mut cur)),
            (c, _) => cur.push(c),
        }
    }
    if quoted {
        return Err("a quote is left open");
    }
    fields.push(cur);
    Ok(fields)
}

fn parse_csv(text: &str, path: &Path) -> Result<Vec<LabelEntry>> {
    let mut out = Vec::new();
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let Some((_, header)) = lines.next() else {
        return Err(Error::data(
            "labels file is empty; write a header `image,labels` and one line per image",
            path,
        ));
    };
    let header = csv_fields(header.trim_start_matches('\u{feff}'))
        .map_err(|e| Error::data(format!("line 1: {e}"), path))?;
    let col = |names: &[&str]| {
        header
            .iter()
            .position(|h| names.contains(&h.trim().to_lowercase().as_str()))
    };
    let (Some(image), Some(labels)) = (
        col(&["image", "file", "filename", "path"]),
        col(&["labels", "label", "tags"]),
    ) else {
        return Err(Error::data(
            "labels file needs a header with `image` and `labels` columns",
            path,
        ));
    };
    for (i, line) in lines {
        let fields =
            csv_fields(line).map_err(|e| Error::data(format!("line {}: {e}", i + 1), path))?;
        let (Some(img), Some(lab)) = (fields.get(image), fields.get(labels)) else {
            return Err(Error::data(
                format!(
                    "line {} has {} fields, expected at least {}",
                    i + 1,
                    fields.len(),
                    image.max(labels) + 1
                ),
                path,
            ));
        };
        out.push(LabelEntry {
            image: PathBuf::from(img.trim()),
            labels: split_labels(lab),
            line: i + 1,
        });
    }
    Ok(out)
}

fn parse_json(text: &str, path: &Path) -> Result<Vec<LabelEntry>> {
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| Error::data(format!("labels file is not valid JSON ({e})"), path))?;
    let labels_of = |v: &serde_json::Value, n: usize| -> Result<Vec<String>> {
        match v {
            serde_json::Value::String(s) => Ok(split_labels(s)),
            serde_json::Value::Array(a) => {
                let mut out = Vec::new();
                for x in a {
                    let Some(s) = x.as_str() else {
                        return Err(Error::data(
                            format!("entry {n}: labels must be text, got {x}"),
                            path,
                        ));
                    };
                    out.push(s.trim().to_string());
                }
                out.retain(|s| !s.is_empty());
                out.sort();
                out.dedup();
                Ok(out)
            }
            other => Err(Error::data(
                format!("entry {n}: labels must be a list of text, got {other}"),
                path,
            )),
        }
    };
    let mut out = Vec::new();
    match &value {
        serde_json::Value::Object(map) => {
            for (n, (img, labels)) in map.iter().enumerate() {
                out.push(LabelEntry {
                    image: PathBuf::from(img),
                    labels: labels_of(labels, n + 1)?,
                    line: n + 1,
                });
            }
        }
        serde_json::Value::Array(items) => {
            for (n, item) in items.iter().enumerate() {
                let Some(img) = item.get("image").and_then(|v| v.as_str()) else {
                    return Err(Error::data(
                        format!("entry {} has no \"image\" text", n + 1),
                        path,
                    ));
                };
                let labels = item
                    .get("labels")
                    .map(|l| labels_of(l, n + 1))
                    .transpose()?
                    .unwrap_or_default();
                out.push(LabelEntry {
                    image: PathBuf::from(img),
                    labels,
                    line: n + 1,
                });
            }
        }
        _ => {
            return Err(Error::data(
                "labels JSON must be an object {image: [labels]} or a list of {image, labels}",
                path,
            ));
        }
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn reads_csv_and_json_forms() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("labels.csv");
        std::fs::write(
            &csv,
            "image,labels\na.png,cat;dog\n\"b, c.png\",\"dog | cat\"\nc.png,\n",
        )
        .unwrap();
        let e = read(&csv).unwrap();
        assert_eq!(e.len(), 3);
        assert_eq!(e[0].labels, vec!["cat", "dog"]);
        assert_eq!(e[1].image, PathBuf::from("b, c.png"));
        assert_eq!(e[1].labels, vec!["cat", "dog"]);
        assert!(e[2].labels.is_empty());
        let json = dir.path().join("labels.json");
        std::fs::write(&json, r#"{"a.png": ["cat"], "sub/b.png": []}"#).unwrap();
        assert_eq!(read(&json).unwrap()[1].image, PathBuf::from("sub/b.png"));
        std::fs::write(&json, r#"[{"image": "a.png", "labels": ["x", "y"]}]"#).unwrap();
        assert_eq!(read(&json).unwrap()[0].labels, vec!["x", "y"]);
    }

    #[test]
    fn bad_files_name_the_line_and_refuse_escapes() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("labels.csv");
        std::fs::write(&f, "image,labels\n\"open.png,cat\n").unwrap();
        assert!(
            read(&f)
                .unwrap_err()
                .to_string()
                .contains("line 2: a quote is left open")
        );
        std::fs::write(&f, "name,kind\na,b\n").unwrap();
        assert!(
            read(&f)
                .unwrap_err()
                .to_string()
                .contains("`image` and `labels`")
        );
        std::fs::write(&f, "image,labels\n../secret.png,cat\n").unwrap();
        assert!(
            read(&f)
                .unwrap_err()
                .to_string()
                .contains("outside the data folder")
        );
        let j = dir.path().join("l.json");
        std::fs::write(&j, r#"{"a.png": [1, 2]}"#).unwrap();
        assert!(
            read(&j)
                .unwrap_err()
                .to_string()
                .contains("labels must be text")
        );
    }
}
