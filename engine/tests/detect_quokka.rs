//! Parsing golden on a real photo: imgaug's quokka (`assets/detection/quokka`) with its own box
//! annotation, written as Create ML JSON (centre-based) and as COCO JSON (top-left based) next to
//! a copy of the photo. Both must load to the annotated corners, with the photo's real size, and
//! `lathe check` must accept the Create ML folder and name the class.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use lathe_engine::data::annotations::{self, Format};
use serde_json::json;
use std::path::{Path, PathBuf};

fn quokka() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/detection/quokka")
}

/// imgaug's box: (x1, y1, x2, y2) and its label.
fn golden_box() -> ([f64; 4], String) {
    let text = std::fs::read_to_string(quokka().join("quokka_annotations.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let b = &v["bounding_boxes"][0];
    let corner = |k: &str| b[k].as_f64().unwrap();
    (
        [corner("x1"), corner("y1"), corner("x2"), corner("y2")],
        b["label"].as_str().unwrap().to_string(),
    )
}

fn folder_with(dir: &Path, annotations: &serde_json::Value) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::copy(quokka().join("quokka.jpg"), dir.join("quokka.jpg")).unwrap();
    std::fs::write(
        dir.join("annotations.json"),
        serde_json::to_string_pretty(annotations).unwrap(),
    )
    .unwrap();
}

#[test]
fn create_ml_and_coco_annotations_of_the_quokka_load_to_the_same_box() {
    let ([x1, y1, x2, y2], label) = golden_box();
    let (w, h) = (x2 - x1, y2 - y1);
    let tmp = tempfile::tempdir().unwrap();
    let create_ml = tmp.path().join("createml");
    folder_with(
        &create_ml,
        &json!([{ "image": "quokka.jpg", "annotations": [{ "label": label,
            "coordinates": { "x": x1 + w / 2.0, "y": y1 + h / 2.0, "width": w, "height": h } }] }]),
    );
    let coco = tmp.path().join("coco");
    folder_with(
        &coco,
        &json!({ "images": [{ "id": 7, "file_name": "quokka.jpg", "width": 960, "height": 643 }],
            "annotations": [{ "id": 1, "image_id": 7, "category_id": 3, "bbox": [x1, y1, w, h] }],
            "categories": [{ "id": 3, "name": label }] }),
    );
    for (dir, format) in [(&create_ml, Format::CreateMl), (&coco, Format::Coco)] {
        let a = annotations::load(dir, None).unwrap();
        assert_eq!(a.format, format, "{}", dir.display());
        assert!(!a.has_errors(), "{:?}", a.issues);
        assert_eq!(a.labels, vec![label.clone()]);
        assert_eq!(a.images.len(), 1);
        let img = &a.images[0];
        assert_eq!((img.width, img.height), (960, 643), "the photo's real size");
        assert_eq!(img.objects.len(), 1);
        let r = img.objects[0].rect;
        for (got, want) in [(r.x, x1), (r.y, y1), (r.right(), x2), (r.bottom(), y2)] {
            assert!(
                (f64::from(got) - want).abs() < 1e-3,
                "{format:?}: {r:?} vs ({x1}, {y1}, {x2}, {y2})"
            );
        }
    }
    let out = run(lathe(&tmp.path().join("cache"))
        .args(["check", "--template", "object-detector"])
        .arg(&create_ml));
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(text.contains(&label), "{text}");
    assert!(!text.contains("panicked"), "{text}");
}
