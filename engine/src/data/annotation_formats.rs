//! The two annotation file formats as written, before any check: Create ML's list of images
//! with centre-based boxes and COCO's images / annotations / categories, each parsed into raw
//! entries (image file name, labelled boxes) with errors naming the entry of the wrong shape.

use crate::data::annotations::Rect;
use crate::error::{Error, Result};
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;

/// A box as written in the file, before checks.
pub(super) struct RawBox {
    pub(super) label: String,
    pub(super) rect: Rect,
}

/// An image entry as written in the file, before checks.
pub(super) struct RawImage {
    /// How messages name the entry: `entry 3 ("a.jpg")`.
    pub(super) name: String,
    pub(super) file_name: String,
    pub(super) boxes: Vec<RawBox>,
}

/// The number at `key` of a box's coordinates; an error naming the box otherwise.
fn number(v: &Value, key: &str, what: &str, file: &Path) -> Result<f32> {
    match v.get(key) {
        Some(Value::Number(n)) => n.as_f64().map(|x| x as f32).ok_or_else(|| {
            Error::data(
                format!("{what}: \"{key}\" is not a number; fix the entry"),
                file,
            )
        }),
        Some(other) => Err(Error::data(
            format!("{what}: \"{key}\" must be a number, found {other}; fix the entry"),
            file,
        )),
        None => Err(Error::data(
            format!("{what}: \"{key}\" is missing; every box needs x, y, width and height"),
            file,
        )),
    }
}

/// The entries of a Create ML file (a list of `{"image", "annotations"}`), centre coordinates
/// turned into top-left boxes; an entry of the wrong shape is an error naming it.
pub(super) fn parse_create_ml(entries: &[Value], file: &Path) -> Result<Vec<RawImage>> {
    let mut out = Vec::with_capacity(entries.len());
    for (i, e) in entries.iter().enumerate() {
        let Some(image) = e.get("image").and_then(Value::as_str) else {
            return Err(Error::data(
                format!(
                    "entry {i}: \"image\" must be the image's file name (a string); fix the entry"
                ),
                file,
            ));
        };
        let name = format!("entry {i} (\"{image}\")");
        let boxes = match e.get("annotations") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) => a.as_slice().to_vec(),
            Some(_) => {
                return Err(Error::data(
                    format!("{name}: \"annotations\" must be a list of boxes; fix the entry"),
                    file,
                ));
            }
        };
        let mut raw_boxes = Vec::with_capacity(boxes.len());
        for (k, b) in boxes.iter().enumerate() {
            let what = format!("{name}, box {k}");
            let label = match b.get("label") {
                Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
                Some(other) => {
                    return Err(Error::data(
                        format!(
                            "{what}: \"label\" must be a non-empty string, found {other}; quote the label"
                        ),
                        file,
                    ));
                }
                None => {
                    return Err(Error::data(
                        format!("{what}: \"label\" is missing; every box needs a label"),
                        file,
                    ));
                }
            };
            let Some(c) = b.get("coordinates") else {
                return Err(Error::data(
                    format!("{what}: \"coordinates\" is missing; give {{x, y, width, height}}"),
                    file,
                ));
            };
            let rect = Rect::from_center(
                number(c, "x", &what, file)?,
                number(c, "y", &what, file)?,
                number(c, "width", &what, file)?,
                number(c, "height", &what, file)?,
            );
            raw_boxes.push(RawBox { label, rect });
        }
        out.push(RawImage {
            name,
            file_name: image.to_string(),
            boxes: raw_boxes,
        });
    }
    Ok(out)
}

/// The images of a COCO file with their boxes (`bbox` is top-left x, y, width, height; crowd
/// annotations skipped); an entry of the wrong shape is an error naming it.
pub(super) fn parse_coco(json: &Value, file: &Path) -> Result<Vec<RawImage>> {
    let list = |key: &str| -> Result<&Vec<Value>> {
        json.get(key).and_then(Value::as_array).ok_or_else(|| {
            Error::data(
                format!("COCO file: \"{key}\" must be a list; fix the file"),
                file,
            )
        })
    };
    let id_of = |v: &Value, what: &str| -> Result<i64> {
        v.get("id").and_then(Value::as_i64).ok_or_else(|| {
            Error::data(
                format!("COCO file: {what} has no integer \"id\"; fix the file"),
                file,
            )
        })
    };
    let mut categories = HashMap::new();
    for (i, c) in list("categories")?.iter().enumerate() {
        let what = format!("category {i}");
        let id = id_of(c, &what)?;
        let name = match c.get("name") {
            Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
            other => {
                return Err(Error::data(
                    format!(
                        "COCO file: {what}: \"name\" must be a non-empty string, found {}; quote the label",
                        other
                            .map(Value::to_string)
                            .unwrap_or_else(|| "nothing".into())
                    ),
                    file,
                ));
            }
        };
        categories.insert(id, name);
    }
    let mut out = Vec::new();
    let mut by_id = HashMap::new();
    for (i, im) in list("images")?.iter().enumerate() {
        let id = id_of(im, &format!("image {i}"))?;
        let Some(name) = im.get("file_name").and_then(Value::as_str) else {
            return Err(Error::data(
                format!("COCO file: image {i}: \"file_name\" must be a string; fix the entry"),
                file,
            ));
        };
        by_id.insert(id, out.len());
        out.push(RawImage {
            name: format!("image {i} (\"{name}\")"),
            file_name: name.to_string(),
            boxes: Vec::new(),
        });
    }
    for (i, a) in list("annotations")?.iter().enumerate() {
        let what = format!("COCO annotation {i}");
        if a.get("iscrowd").and_then(Value::as_i64) == Some(1) {
            continue;
        }
        let Some(image_id) = a.get("image_id").and_then(Value::as_i64) else {
            return Err(Error::data(
                format!("{what}: \"image_id\" must be an integer; fix the entry"),
                file,
            ));
        };
        let Some(&slot) = by_id.get(&image_id) else {
            return Err(Error::data(
                format!("{what}: image_id {image_id} is not in \"images\"; fix the entry"),
                file,
            ));
        };
        let label = match a.get("category_id") {
            Some(Value::Number(n)) => match n.as_i64().and_then(|id| categories.get(&id)) {
                Some(l) => l.clone(),
                None => {
                    return Err(Error::data(
                        format!("{what}: category_id {n} is not in \"categories\"; fix the entry"),
                        file,
                    ));
                }
            },
            other => {
                return Err(Error::data(
                    format!(
                        "{what}: \"category_id\" must be an integer, found {}; fix the entry",
                        other
                            .map(Value::to_string)
                            .unwrap_or_else(|| "nothing".into())
                    ),
                    file,
                ));
            }
        };
        let bbox: Vec<f32> = match a.get("bbox").and_then(Value::as_array) {
            Some(v) if v.len() == 4 && v.iter().all(Value::is_number) => v
                .iter()
                .map(|x| x.as_f64().unwrap_or(f64::NAN) as f32)
                .collect(),
            _ => {
                return Err(Error::data(
                    format!(
                        "{what}: \"bbox\" must be [x, y, width, height] numbers; fix the entry"
                    ),
                    file,
                ));
            }
        };
        let (Some(&x), Some(&y), Some(&w), Some(&h)) =
            (bbox.first(), bbox.get(1), bbox.get(2), bbox.get(3))
        else {
            continue;
        };
        if let Some(entry) = out.get_mut(slot) {
            entry.boxes.push(RawBox {
                label,
                rect: Rect {
                    x,
                    y,
                    width: w,
                    height: h,
                },
            });
        }
    }
    Ok(out)
}
