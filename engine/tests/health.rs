//! `lathe check` and training on unhealthy data: errors stop with exit 1 and name the folder;
//! warnings (corrupt and non-image files, duplicates, leakage, imbalance) let training go on.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;

#[test]
fn a_class_with_one_example_is_an_error_that_names_it() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    make_dataset(&data, &["cats", "dogs"], 4, 0);
    make_dataset(&data, &["x", "y", "lonely"], 1, 50);
    for d in ["x", "y"] {
        std::fs::remove_dir_all(data.join(d)).unwrap();
    }
    let out = run(lathe(&tmp.path().join("c")).arg("check").arg(&data));
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains("class \"lonely\" has 1 image, need at least 2") && text.contains("lonely"),
        "{text}"
    );
    let out = run(lathe(&tmp.path().join("c"))
        .args(["train", "--template", "image-classifier", "--data"])
        .arg(&data)
        .arg("--out")
        .arg(tmp.path().join("r")));
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("lonely"), "{}", stderr(&out));
}

#[test]
fn broken_files_duplicates_leakage_and_imbalance_are_warnings() {
    let tmp = tempfile::tempdir().unwrap();
    let train = tmp.path().join("train");
    let test = tmp.path().join("test");
    make_dataset(&train, &["big", "small"], 2, 0);
    make_dataset(&train, &["big"], 22, 10);
    make_dataset(&test, &["big", "small"], 2, 200);
    std::fs::write(
        train.join("big/corrupt.png"),
        b"\x89PNG\r\n\x1a\nthis is not really a png",
    )
    .unwrap();
    std::fs::write(train.join("big/empty.jpg"), b"").unwrap();
    std::fs::write(train.join("big/notes.txt"), b"not an image").unwrap();
    std::fs::copy(train.join("big/000.png"), train.join("big/copy.png")).unwrap();
    std::fs::copy(train.join("small/001.png"), test.join("small/leak.png")).unwrap();
    let out = run(lathe(&tmp.path().join("c"))
        .arg("check")
        .arg(&train)
        .arg("--test")
        .arg(&test));
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let text = stdout(&out);
    for needle in [
        "corrupt.png",
        "empty.jpg",
        "not images",
        "exact duplicates",
        "both in the training data",
        "imbalanced",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    let out = run(lathe(&tmp.path().join("c"))
        .args(["check", "--json"])
        .arg(&train));
    let summary: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let codes: Vec<&str> = summary["issues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["code"].as_str().unwrap())
        .collect();
    assert!(
        codes.contains(&"unreadable_file")
            && codes.contains(&"duplicate_files")
            && codes.contains(&"class_imbalance"),
        "{codes:?}"
    );
    // Training goes on past the broken files.
    let out = run(lathe(&tmp.path().join("c"))
        .args([
            "train",
            "--template",
            "image-classifier",
            "--json",
            "--epochs",
            "2",
            "--param",
            "image_size=48",
            "--data",
        ])
        .arg(&train)
        .arg("--test")
        .arg(&test)
        .arg("--out")
        .arg(tmp.path().join("r")));
    assert!(out.status.success(), "{}", stderr(&out));
    let events = json_lines(&stdout(&out));
    assert!(events.iter().any(|e| {
        e["event"] == "warning"
            && e["path"]
                .as_str()
                .is_some_and(|p| p.ends_with("corrupt.png"))
    }));
    assert_eq!(events.last().unwrap()["outcome"]["status"], "completed");
}

#[test]
fn the_automatic_validation_split_is_not_counted_as_training_data_too() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    make_dataset(&data, &["cats", "dogs"], 10, 0);
    let out = run(lathe(&tmp.path().join("c"))
        .args(["check", "--json"])
        .arg(&data));
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let summary: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let splits = summary["splits"].as_array().unwrap();
    let count = |name: &str| {
        splits
            .iter()
            .find(|s| s["name"] == name)
            .and_then(|s| s["num_examples"].as_u64())
            .unwrap_or_else(|| panic!("no {name:?} split in {splits:?}"))
    };
    let (train, validation) = (count("train"), count("validation (automatic split)"));
    assert!(validation > 0, "{splits:?}");
    assert_eq!(
        train + validation,
        20,
        "the held-out files are counted twice: {splits:?}"
    );
}
