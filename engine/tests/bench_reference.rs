//! `lathe bench --reference` on the CPU with a stand-in for PyTorch's script: Lathe's steps are
//! really measured, the "reference" prints fixed figures, and the summary's medians and ratios
//! must follow from both (the real PyTorch comparison runs on the GPU machine:
//! docs/benchmarks.md).

mod common;

use common::{lathe, run, stderr, stdout};
use std::os::unix::fs::PermissionsExt;

#[test]
fn reference_figures_are_interleaved_and_divided() {
    let tmp = tempfile::tempdir().unwrap();
    // A "python" that imports torch and, given the script, prints the reference's JSON shape
    // and the arguments it received (to check Lathe passed its batch and device).
    let python = tmp.path().join("python");
    std::fs::write(
        &python,
        r#"#!/bin/sh
if [ "$1" = "-c" ]; then exit 0; fi
echo "starting up"
echo "{\"reference\": \"stand-in\", \"device\": \"cpu\", \"threads\": 2, \"args\": \"$*\", \"feature_extraction\": [{\"batch\": 2, \"dtype\": \"f32\", \"images_per_sec\": 100.0}], \"fine_tune_step\": {\"batch\": 2, \"trainable_blocks\": 1, \"images_per_sec\": 4.0}}"
"#,
    )
    .unwrap();
    std::fs::set_permissions(&python, std::fs::Permissions::from_mode(0o755)).unwrap();
    let scripts = tmp.path().join("reference");
    std::fs::create_dir_all(&scripts).unwrap();
    std::fs::write(scripts.join("mobilenet_v2.py"), "# stand-in\n").unwrap();
    let out = run(lathe(&tmp.path().join("cache"))
        .args(["bench", "--reference", "--reference-python"])
        .arg(&python)
        .arg("--reference-dir")
        .arg(&scripts)
        .args([
            "--rounds",
            "2",
            "--batch",
            "2",
            "--batches",
            "1",
            "--image-size",
            "64",
            "--fine-tune-batch",
            "2",
            "--fine-tune-blocks",
            "1",
            "--fine-tune-steps",
            "1",
            "--json",
        ]));
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(v["rounds"], 2);
    assert_eq!(v["reference"], "stand-in");
    assert_eq!(v["lathe_runs"].as_array().unwrap().len(), 2);
    let refs = v["reference_runs"].as_array().unwrap();
    assert_eq!(refs.len(), 2);
    let args = refs[0]["args"].as_str().unwrap();
    assert!(
        args.contains("--device cpu") && args.contains("--batch 2") && args.contains("--size 64"),
        "{args}"
    );
    let summary = v["summary"].as_array().unwrap();
    let steps: Vec<&str> = summary
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["feature extraction f32", "fine-tuning step"]);
    for (s, reference) in summary.iter().zip([100.0, 4.0]) {
        let lathe: Vec<f64> = s["lathe_images_per_sec"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        assert_eq!(lathe.len(), 2);
        assert!(lathe.iter().all(|x| *x > 0.0 && x.is_finite()), "{lathe:?}");
        let median = (lathe[0] + lathe[1]) / 2.0;
        assert!((s["lathe_median"].as_f64().unwrap() - median).abs() < 1e-9);
        assert_eq!(s["reference_median"].as_f64().unwrap(), reference);
        assert!((s["ratio"].as_f64().unwrap() - median / reference).abs() < 1e-9);
    }

    // Without a Python that has torch, the error says what to pass.
    let out = run(lathe(&tmp.path().join("cache"))
        .args([
            "bench",
            "--reference",
            "--reference-python",
            "/bin/false",
            "--reference-dir",
        ])
        .arg(&scripts));
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("--reference-python"),
        "{}",
        stderr(&out)
    );
}
