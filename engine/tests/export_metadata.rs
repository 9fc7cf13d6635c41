//! The library's export API (`templates::export::export_with`, what Lathe Studio's Export form
//! calls): the author, license, description and version given reach the Core ML model's metadata
//! and the ONNX model's `metadata_props`; fp16 is recorded in both; the defaults stay when nothing
//! is given; a safetensors folder refuses fp16.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use lathe_engine::export::{coreml, onnx};
use lathe_engine::params::ParamValue;
use lathe_engine::templates::export::{ExportOptions, export_with};
use lathe_engine::train::{Outcome, RunOptions};
use lathe_engine::{Project, Session, SessionOptions};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Trains a tiny table classifier (the linear model) in `tmp`; returns its run folder.
fn trained_table(tmp: &Path) -> PathBuf {
    let mut csv = String::from("length,width,kind\n");
    for i in 0..60 {
        let kind = ["small", "medium", "large"][i % 3];
        let base = (i % 3) as f64 * 3.0;
        csv.push_str(&format!(
            "{:.2},{:.2},{kind}\n",
            base + (i as f64 * 0.37) % 1.0,
            base * 0.5 + (i as f64 * 0.61) % 1.0
        ));
    }
    let data = tmp.join("table.csv");
    std::fs::write(&data, csv).unwrap();
    let project = Project::new("tabular-classifier", data);
    let session = Session::start(
        project,
        SessionOptions {
            run_dir: Some(tmp.join("run")),
            overrides: BTreeMap::from([
                ("target".to_string(), ParamValue::Text("kind".into())),
                ("algorithm".to_string(), ParamValue::Text("linear".into())),
            ]),
            run: RunOptions {
                cache_dir: Some(tmp.join("cache")),
                weights: None,
            },
            ..Default::default()
        },
    )
    .unwrap();
    let run_dir = session.run_dir().to_path_buf();
    let outcome = session.run_to_end(|_| {});
    assert!(matches!(outcome, Outcome::Completed { .. }), "{outcome:?}");
    run_dir
}

fn onnx_props(path: &Path) -> BTreeMap<String, String> {
    onnx::read(path)
        .unwrap()
        .metadata_props
        .into_iter()
        .map(|p| (p.key, p.value))
        .collect()
}

#[test]
fn metadata_and_precision_reach_core_ml_and_onnx() {
    let tmp = tempfile::tempdir().unwrap();
    let run = trained_table(tmp.path());
    let options = ExportOptions {
        fp16: true,
        author: Some("Ada Lovelace".into()),
        license: Some("CC-BY-4.0".into()),
        description: Some("Sizes from two measurements".into()),
        version: Some("2.1".into()),
    };

    let out = tmp.path().join("out/Sizes.onnx");
    assert_eq!(
        export_with(&run, "onnx", Some(&out), &options).unwrap(),
        out
    );
    let props = onnx_props(&out);
    for (key, want) in [
        ("author", "Ada Lovelace"),
        ("license", "CC-BY-4.0"),
        ("description", "Sizes from two measurements"),
        ("version", "2.1"),
        ("precision", "fp16"),
    ] {
        assert_eq!(props.get(key).map(String::as_str), Some(want), "{key}");
    }

    let out = tmp.path().join("out/Sizes.mlmodel");
    assert_eq!(
        export_with(&run, "coreml", Some(&out), &options).unwrap(),
        out
    );
    let description = coreml::spec::read(&out).unwrap().description.unwrap();
    let meta = description.metadata.unwrap();
    assert_eq!(meta.author, "Ada Lovelace");
    assert_eq!(meta.license, "CC-BY-4.0");
    assert_eq!(meta.short_description, "Sizes from two measurements");
    assert_eq!(meta.version_string, "2.1");
    assert_eq!(
        meta.user_defined.get("precision").map(String::as_str),
        Some("fp16")
    );

    // Nothing given: each format's defaults.
    let plain = tmp.path().join("plain.onnx");
    export_with(&run, "onnx", Some(&plain), &ExportOptions::default()).unwrap();
    let props = onnx_props(&plain);
    assert_eq!(props["author"], "Made with Lathe");
    assert_eq!(props["version"], "1.0");
    assert_eq!(props["precision"], "fp32");
    assert!(!props.contains_key("license"));

    // No temporary file is left beside the exports.
    let names: Vec<String> = std::fs::read_dir(tmp.path().join("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().all(|n| !n.starts_with('.')),
        "left behind: {names:?}"
    );

    // A safetensors folder carries the metadata in its manifest and refuses fp16.
    let folder = tmp.path().join("out/Sizes");
    let e = export_with(&run, "safetensors", Some(&folder), &options)
        .unwrap_err()
        .to_string();
    assert!(e.contains("fp16"), "{e}");
    let fp32 = ExportOptions {
        fp16: false,
        ..options
    };
    export_with(&run, "safetensors", Some(&folder), &fp32).unwrap();
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(folder.join("manifest.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["metadata"]["author"], "Ada Lovelace");
    assert_eq!(manifest["metadata"]["license"], "CC-BY-4.0");
    assert!(folder.join("config.json").is_file());
}
