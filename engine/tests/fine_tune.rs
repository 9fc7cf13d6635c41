//! Fine-tuning the last backbone blocks: the run continues the head's curves, checkpoints, and
//! exports a backbone whose tuned blocks changed while the frozen ones did not — and the exported
//! model reproduces the training-time evaluation.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;

fn tensor(bytes: &[u8], name: &str) -> Vec<f32> {
    let st = safetensors::SafeTensors::deserialize(bytes).unwrap();
    st.tensor(name)
        .unwrap()
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

#[test]
fn fine_tuning_trains_only_the_last_blocks_and_exports_them() {
    let tmp = tempfile::tempdir().unwrap();
    make_dataset(
        &tmp.path().join("train"),
        &["circles", "stripes", "bands"],
        6,
        0,
    );
    make_dataset(
        &tmp.path().join("test"),
        &["circles", "stripes", "bands"],
        2,
        100,
    );
    let run_dir = tmp.path().join("run");
    let out = run(lathe(&tmp.path().join("cache"))
        .args([
            "train",
            "--template",
            "image-classifier",
            "--json",
            "--epochs",
            "3",
        ])
        .args([
            "--param",
            "image_size=64",
            "--param",
            "fine_tune_blocks=2",
            "--param",
            "fine_tune_epochs=2",
            "--param",
            "fine_tune_batch_size=8",
        ])
        .arg("--data")
        .arg(tmp.path().join("train"))
        .arg("--test")
        .arg(tmp.path().join("test"))
        .arg("--out")
        .arg(&run_dir));
    assert!(out.status.success(), "{}", stderr(&out));
    let events = json_lines(&stdout(&out));
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "phase" && e["phase"] == "fine_tuning")
    );
    let epochs: Vec<u64> = events
        .iter()
        .filter(|e| e["event"] == "epoch_end")
        .map(|e| e["epoch"].as_u64().unwrap())
        .collect();
    assert_eq!(
        epochs,
        vec![1, 2, 3, 4, 5],
        "fine-tuning epochs continue the head's"
    );
    assert!(
        run_dir
            .join("checkpoints/fine_tune_last.safetensors")
            .is_file()
    );

    let pretrained = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../assets/backbones/mobilenet_v2.safetensors"),
    )
    .unwrap();
    let exported = std::fs::read(run_dir.join("model/model.safetensors")).unwrap();
    assert_eq!(
        tensor(&pretrained, "features.0.0.weight"),
        tensor(&exported, "features.0.0.weight"),
        "frozen stem changed"
    );
    assert_eq!(
        tensor(&pretrained, "features.16.conv.1.0.weight"),
        tensor(&exported, "features.16.conv.1.0.weight"),
        "frozen block 16 changed"
    );
    assert_ne!(
        tensor(&pretrained, "features.18.0.weight"),
        tensor(&exported, "features.18.0.weight"),
        "block 18 did not train"
    );
    assert_ne!(
        tensor(&pretrained, "features.17.conv.1.1.running_mean"),
        tensor(&exported, "features.17.conv.1.1.running_mean"),
        "batch norm statistics did not update"
    );

    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("report.json")).unwrap())
            .unwrap();
    let trained = report["evaluation"]["test"]["accuracy"].as_f64().unwrap();
    let out = run(lathe(&tmp.path().join("cache"))
        .args(["evaluate", "--json"])
        .arg(&run_dir)
        .arg("--data")
        .arg(tmp.path().join("test")));
    assert!(out.status.success(), "{}", stderr(&out));
    let eval: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert!(
        (eval["accuracy"].as_f64().unwrap() - trained).abs() < 1e-9,
        "exported model disagrees with the training-time evaluation"
    );
}
