//! ONNX export of the text classifier's sentence-encoder model (all-MiniLM-L6-v2 + head),
//! checked in ONNX Runtime: a `transfer` model trained by the CLI on generated texts is exported
//! with `lathe export --format onnx` (fp32 and `--precision fp16`), validated by `onnx.checker`
//! (full check) and run by ONNX Runtime through `tests/onnx/check.py` on 24 texts (one to ~400
//! words: one is truncated to 256 tokens) tokenized with the exported `<model>.tokenizer.json`
//! (the `tokenizers` crate, as an app would use the Hugging Face tokenizer) in one batch padded
//! at the end — so the graph's attention mask and masked mean are exercised — against
//! `lathe predict --json`: the same top label on every text, |Δp| ≤ 1e-4 in fp32 and ≤ 2e-3 in
//! fp16. Needs `LATHE_MINILM` (the folder `scripts/fetch-minilm.sh` prints) and
//! `LATHE_ONNX_PYTHON`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

const TOPICS: [(&str, [&str; 6]); 3] = [
    (
        "cooking",
        ["oven", "butter", "recipe", "garlic", "simmer", "flour"],
    ),
    (
        "sports",
        ["referee", "goal", "match", "team", "coach", "league"],
    ),
    (
        "tech",
        [
            "compiler", "kernel", "server", "database", "thread", "cache",
        ],
    ),
];
const COMMON: [&str; 6] = ["the", "a", "is", "and", "today", "with"];

/// A deterministic text of `words` words of topic `t` (number `i`), a word of another topic
/// mixed in every `mix` words (0: none).
fn text(t: usize, i: usize, words: usize, mix: usize) -> String {
    let mut state = (t * 7919 + i * 104_729 + 17) as u64;
    let mut next = |n: usize| {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((state >> 33) as usize) % n
    };
    let out: Vec<&str> = (0..words)
        .map(|k| match (k % 2, mix) {
            (1, _) => COMMON[next(6)],
            (_, m) if m > 0 && k % m == m - 1 => TOPICS[(t + 1) % 3].1[next(6)],
            _ => TOPICS[t].1[next(6)],
        })
        .collect();
    format!("{}.", out.join(" "))
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs the checker on `model` with int64 `input_ids` / `attention_mask` rows.
fn check(
    python: &Path,
    model: &Path,
    ids: &[Vec<i64>],
    mask: &[Vec<i64>],
    dir: &Path,
) -> serde_json::Value {
    let (n, l) = (ids.len(), ids[0].len());
    let write = |name: &str, rows: &[Vec<i64>]| {
        let path = dir.join(format!("{name}.i64"));
        let bytes: Vec<u8> = rows
            .iter()
            .flatten()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        std::fs::write(&path, bytes).unwrap();
        serde_json::json!({"dtype": "int64", "shape": [n, l], "file": path})
    };
    let spec = dir.join("tokens.spec.json");
    let json = serde_json::json!({
        "input_ids": write("input_ids", ids),
        "attention_mask": write("attention_mask", mask),
    });
    std::fs::write(&spec, json.to_string()).unwrap();
    let out = Command::new(python)
        .arg(repo().join("tests/onnx/check.py"))
        .arg(model)
        .arg("--inputs")
        .arg(&spec)
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "check.py failed on {}: {}",
        model.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("check.py prints JSON")
}

#[test]
fn sentence_encoder_text_model_agrees_with_onnx_runtime() {
    let Some(minilm) = fetched("LATHE_MINILM", "the folder scripts/fetch-minilm.sh prints") else {
        return;
    };
    let Some(python) = fetched("LATHE_ONNX_PYTHON", "scripts/onnx-env.sh prints it") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let data = tmp.path().join("train");
    for (t, (name, _)) in TOPICS.iter().enumerate() {
        std::fs::create_dir_all(data.join(name)).unwrap();
        for i in 0..10 {
            std::fs::write(
                data.join(name).join(format!("{i:02}.txt")),
                text(t, i, 10, 0),
            )
            .unwrap();
        }
    }
    let run_dir = tmp.path().join("run");
    let o = run(lathe(&cache)
        .args(["train", "--template", "text-classifier", "--json", "--data"])
        .arg(&data)
        .arg("--out")
        .arg(&run_dir)
        .arg("--weights")
        .arg(&minilm)
        .args(["--param", "algorithm=transfer", "--epochs", "30"]));
    assert!(o.status.success(), "train failed: {}", stderr(&o));

    // 24 texts: 1 to ~400 words, some mixing two topics (so probabilities are not all ~1).
    let texts: Vec<String> = (0..24)
        .map(|i| match i {
            0 => "goal".to_string(),
            1 => text(2, 500, 420, 5),
            _ => text(i % 3, 100 + i, 3 + (i * 7) % 40, i % 4),
        })
        .collect();
    let files: Vec<PathBuf> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let p = tmp.path().join("texts").join(format!("{i:02}.txt"));
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, t).unwrap();
            p
        })
        .collect();
    let o = run(lathe(&cache)
        .args(["predict", "--json", "--top", "1000"])
        .arg(&run_dir)
        .args(&files));
    assert!(o.status.success(), "predict failed: {}", stderr(&o));
    let engine = json_lines(&stdout(&o));
    assert_eq!(engine.len(), texts.len());

    for (precision, tolerance) in [("fp32", 1e-4), ("fp16", 2e-3)] {
        let model = tmp.path().join(format!("text-{precision}.onnx"));
        let o = run(lathe(&cache)
            .args([
                "export",
                "--format",
                "onnx",
                "--json",
                "--precision",
                precision,
                "--out",
            ])
            .arg(&model)
            .arg(&run_dir));
        assert!(
            o.status.success(),
            "{precision}: export failed: {}",
            stderr(&o)
        );
        eprintln!(
            "{precision}: exported {}",
            json_lines(&stdout(&o)).remove(0)
        );
        let sidecar = tmp.path().join(format!("text-{precision}.tokenizer.json"));
        assert!(
            sidecar.is_file(),
            "the tokenizer is written next to the model"
        );

        // Tokenize as an app would: the sidecar, special tokens, 256 at most, padded batch.
        let mut tokenizer = tokenizers::Tokenizer::from_file(&sidecar).unwrap();
        tokenizer
            .with_truncation(Some(tokenizers::TruncationParams {
                max_length: 256,
                ..Default::default()
            }))
            .unwrap();
        tokenizer.with_padding(Some(tokenizers::PaddingParams::default()));
        let enc = tokenizer
            .encode_batch(texts.iter().map(String::as_str).collect::<Vec<_>>(), true)
            .unwrap();
        let ids: Vec<Vec<i64>> = enc
            .iter()
            .map(|e| e.get_ids().iter().map(|&v| v as i64).collect())
            .collect();
        let mask: Vec<Vec<i64>> = enc
            .iter()
            .map(|e| e.get_attention_mask().iter().map(|&v| v as i64).collect())
            .collect();
        assert_eq!(
            ids[0].len(),
            256,
            "the long text is truncated, the others padded"
        );
        let onnx = check(&python, &model, &ids, &mask, tmp.path());
        let meta = &onnx["metadata"];
        assert_eq!(meta["algorithm"], "transfer");
        assert_eq!(meta["precision"], precision);
        let labels: Vec<String> = serde_json::from_str(meta["labels"].as_str().unwrap()).unwrap();
        let probs = onnx["outputs"]["probabilities"].as_array().unwrap();
        let (mut worst, mut spread) = (0f64, 0f64);
        for (i, (row, e)) in probs.iter().zip(&engine).enumerate() {
            let p: Vec<f64> = row
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            let mut best = 0;
            for (l, label) in labels.iter().enumerate() {
                let q = e["probabilities"][label].as_f64().unwrap();
                worst = worst.max((p[l] - q).abs());
                spread = spread.max(1.0 - q);
                if p[l] > p[best] {
                    best = l;
                }
            }
            assert_eq!(
                e["label"],
                labels[best].as_str(),
                "{precision}: text {i}: top label"
            );
            assert_eq!(onnx["outputs"]["label"][i], labels[best].as_str());
        }
        assert!(spread > 1e-3, "every probability is ~1 ({spread})");
        eprintln!(
            "{precision}: max |Δp| = {worst:e} over {} texts",
            probs.len()
        );
        assert!(
            worst <= tolerance,
            "{precision}: |Δp| = {worst:e} > {tolerance:e}"
        );
    }
}
