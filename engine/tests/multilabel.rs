//! Multi-label image classification end to end through the CLI: generated images that hold a
//! red disc, green stripes, both or neither, labelled by a CSV; train → evaluate → predict, and
//! the labels-file errors a user can make.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::{json_lines, lathe, run, stderr, stdout};
use image::{Rgb, RgbImage};
use std::path::Path;

/// An image with a red disc (`disc`) and/or green vertical stripes (`stripes`) on a dark
/// background, varied by `i`.
fn tagged_image(disc: bool, stripes: bool, i: usize) -> RgbImage {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(i as u64);
    let size = 48i32;
    let (cx, cy) = (rng.random_range(12..36), rng.random_range(12..36));
    RgbImage::from_fn(size as u32, size as u32, |x, y| {
        let (x, y) = (x as i32, y as i32);
        let n: u8 = rng.random_range(0..17);
        if disc && (x - cx).pow(2) + (y - cy).pow(2) < 64 {
            Rgb([230, 30 + n, 30])
        } else if stripes && (x / 3) % 3 == 0 {
            Rgb([30, 210 - n, 40])
        } else {
            Rgb([20 + n, 20, 30])
        }
    })
}

/// Writes `n` images cycling through {none, disc, stripes, both} and a `labels.csv`.
fn make_set(dir: &Path, n: usize, offset: usize) {
    std::fs::create_dir_all(dir).unwrap();
    let mut csv = String::from("image,labels\n");
    for i in 0..n {
        let (disc, stripes) = ((i % 4) & 1 == 1, (i % 4) & 2 == 2);
        let name = format!("img{:03}.png", i + offset);
        tagged_image(disc, stripes, i + offset)
            .save(dir.join(&name))
            .unwrap();
        let mut labels = Vec::new();
        if disc {
            labels.push("disc");
        }
        if stripes {
            labels.push("stripes");
        }
        csv += &format!("{name},{}\n", labels.join(";"));
    }
    std::fs::write(dir.join("labels.csv"), csv).unwrap();
}

#[test]
fn multi_label_trains_evaluates_and_predicts_every_label_that_applies() {
    let tmp = tempfile::tempdir().unwrap();
    let (train, test, out) = (
        tmp.path().join("train"),
        tmp.path().join("test"),
        tmp.path().join("run"),
    );
    make_set(&train, 48, 0);
    make_set(&test, 16, 500);
    let o = run(lathe(tmp.path())
        .args([
            "train",
            "--template",
            "multi-label-image-classifier",
            "--data",
        ])
        .arg(&train)
        .arg("--test")
        .arg(&test)
        .args([
            "--epochs",
            "60",
            "--param",
            "image_size=64",
            "--json",
            "--out",
        ])
        .arg(&out));
    assert!(o.status.success(), "{}", stderr(&o));
    let events = json_lines(&stdout(&o));
    assert!(
        events.iter().any(|e| e["event"] == "finished"),
        "no finished event"
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["problem_type"], "multi_label_classification");
    let test_acc = report["evaluation"]["test"]["accuracy"].as_f64().unwrap();
    assert!(test_acc >= 0.9, "exact-match test accuracy {test_acc}");
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("model/config.json")).unwrap()).unwrap();
    assert_eq!(config["problem_type"], "multi_label_classification");
    assert_eq!(config["lathe"]["task"], "multi-label-image-classification");

    // evaluate --json: one object with the multi-label metrics and per-label 2×2 matrices.
    let o = run(lathe(tmp.path())
        .args(["evaluate"])
        .arg(&out)
        .arg("--data")
        .arg(&test)
        .arg("--json"));
    assert!(o.status.success(), "{}", stderr(&o));
    let r: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(r["labels"], serde_json::json!(["disc", "stripes"]));
    assert!(r["accuracy"].as_f64().unwrap() >= 0.9, "{r}");
    assert!(r["mean_average_precision"].as_f64().unwrap() >= 0.95, "{r}");
    assert_eq!(r["confusion_matrix"].as_array().unwrap().len(), 2);
    assert_eq!(r["num_examples"], 16);

    // predict: an image with both marks gets both labels; an empty one gets none.
    let both = tmp.path().join("both.png");
    let none = tmp.path().join("none.png");
    tagged_image(true, true, 901).save(&both).unwrap();
    tagged_image(false, false, 902).save(&none).unwrap();
    let o = run(lathe(tmp.path())
        .args(["predict"])
        .arg(&out)
        .arg(&both)
        .arg(&none)
        .arg("--json"));
    assert!(o.status.success(), "{}", stderr(&o));
    let preds = json_lines(&stdout(&o));
    let mut got: Vec<String> = serde_json::from_value(preds[0]["labels"].clone()).unwrap();
    got.sort();
    assert_eq!(got, ["disc", "stripes"], "{preds:?}");
    assert_eq!(preds[1]["labels"], serde_json::json!([]), "{preds:?}");
}

#[test]
fn labels_file_mistakes_are_named_errors_or_warnings() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    make_set(&data, 12, 0);
    // No labels file at all: exit 1, names the file it looked for.
    std::fs::remove_file(data.join("labels.csv")).unwrap();
    let o = run(lathe(tmp.path())
        .args(["check", "--template", "multi-label-image-classifier"])
        .arg(&data));
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("labels.csv"), "{}", stderr(&o));
    // A path that leaves the folder: refused, naming the file.
    std::fs::write(
        data.join("labels.csv"),
        "image,labels\n../escape.png,disc\n",
    )
    .unwrap();
    let o = run(lathe(tmp.path())
        .args(["check", "--template", "multi-label-image-classifier"])
        .arg(&data));
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("outside the data folder"),
        "{}",
        stderr(&o)
    );
    // Missing images and a label with one image: warnings for the former, an error for the latter.
    std::fs::write(
        data.join("labels.csv"),
        "image,labels\nimg000.png,disc\nimg001.png,disc\nimg002.png,rare\nghost.png,disc\n",
    )
    .unwrap();
    let o = run(lathe(tmp.path())
        .args([
            "check",
            "--template",
            "multi-label-image-classifier",
            "--json",
        ])
        .arg(&data));
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let text = stdout(&o) + &stderr(&o);
    assert!(text.contains("ghost.png"), "{text}");
    assert!(
        text.contains("label \\\"rare\\\" has 1 image")
            || text.contains("label \"rare\" has 1 image"),
        "{text}"
    );
    assert!(
        text.contains("not in"),
        "unlisted images are reported: {text}"
    );
}
