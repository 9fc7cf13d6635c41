//! `lathe bench --reference`: Lathe's feature-extraction and fine-tuning figures beside
//! PyTorch's on the same device, in one run — the reference script
//! (`benches/reference/mobilenet_v2.py`: torchvision MobileNetV2 with Lathe's weights) and Lathe
//! alternate, `--rounds` times each, and one table prints the medians and their ratios.

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where the reference runs and with what.
pub struct Reference {
    pub python: PathBuf,
    pub script: PathBuf,
    /// The MobileNetV2 weights both sides use (the embedded ones, written to a file).
    pub weights: PathBuf,
}

/// Pythons tried when `--reference-python` is not given, in order.
const PYTHONS: [&str; 3] = ["/opt/torch/.venv/bin/python", "python3", "python"];

impl Reference {
    /// Finds the Python (one that imports torch), the script and writes the weights under
    /// `scratch`.
    pub fn locate(python: Option<&Path>, dir: Option<&Path>, scratch: &Path) -> Result<Reference> {
        let script = dir
            .unwrap_or(Path::new("benches/reference"))
            .join("mobilenet_v2.py");
        if !script.is_file() {
            bail!(
                "{}: no reference script here; run from the repository root or pass --reference-dir benches/reference",
                script.display()
            );
        }
        let python = match python {
            Some(p) => {
                if !imports_torch(p) {
                    bail!(
                        "{}: this Python cannot import torch; give one that can with --reference-python",
                        p.display()
                    );
                }
                p.to_path_buf()
            }
            None => PYTHONS
                .iter()
                .map(PathBuf::from)
                .find(|p| imports_torch(p))
                .context(
                    "no Python with PyTorch found (tried /opt/torch/.venv/bin/python, python3, python); pass --reference-python PATH",
                )?,
        };
        let spec = crate::nets::backbone::weights_spec("mobilenet_v2")?;
        let Some(bytes) = spec.embedded else {
            bail!("this build has no embedded MobileNetV2 weights for the reference to load");
        };
        std::fs::create_dir_all(scratch)
            .with_context(|| format!("cannot create {}", scratch.display()))?;
        let weights = scratch.join("mobilenet_v2.safetensors");
        crate::fsutil::atomic_write(&weights, bytes)?;
        Ok(Reference {
            python,
            script,
            weights,
        })
    }

    /// One run of the reference script; its JSON.
    pub fn run(&self, args: &super::bench::BenchArgs, device: &str, batch: usize) -> Result<Value> {
        let out = Command::new(&self.python)
            .arg(&self.script)
            .arg(&self.weights)
            .args(["--device", device])
            .args(["--batch", &batch.to_string()])
            .args(["--batches", &args.batches.to_string()])
            .args(["--size", &args.image_size.to_string()])
            .args(["--fine-tune-batch", &args.fine_tune_batch.to_string()])
            .args(["--fine-tune-blocks", &args.fine_tune_blocks.to_string()])
            .args(["--fine-tune-steps", &args.fine_tune_steps.to_string()])
            .output()
            .with_context(|| format!("cannot run {}", self.python.display()))?;
        if !out.status.success() {
            bail!(
                "the reference script failed ({}):\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text.lines().rev().find(|l| l.trim_start().starts_with('{'));
        serde_json::from_str(line.unwrap_or("")).with_context(|| {
            format!(
                "the reference script printed no JSON object: {}",
                text.trim()
            )
        })
    }
}

fn imports_torch(python: &Path) -> bool {
    Command::new(python)
        .args(["-c", "import torch"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The torch device name for a Lathe device string (`cuda` → `cuda:0`, `cpu` → `cpu`).
pub fn torch_device(lathe: &str) -> String {
    match lathe {
        "cuda" => "cuda:0".into(),
        "auto" => "cuda:0".into(),
        other => other.into(),
    }
}

/// Images/s of each measured step in one side's JSON, keyed "feature extraction DTYPE" and
/// "fine-tuning step".
fn figures(result: &Value) -> Vec<(String, f64)> {
    let mut out = Vec::new();
    for e in result["feature_extraction"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if let (Some(d), Some(v)) = (e["dtype"].as_str(), e["images_per_sec"].as_f64()) {
            out.push((format!("feature extraction {d}"), v));
        }
    }
    if let Some(v) = result["fine_tune_step"]["images_per_sec"].as_f64() {
        out.push(("fine-tuning step".into(), v));
    }
    out
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// The comparison of every round: per step, each side's figures, medians and the ratio
/// Lathe / reference (> 1: Lathe is faster).
pub fn summarize(lathe: &[Value], reference: &[Value]) -> Vec<Value> {
    let steps: Vec<String> = lathe
        .first()
        .map(|r| figures(r).into_iter().map(|(k, _)| k).collect())
        .unwrap_or_default();
    steps
        .iter()
        .map(|step| {
            let pick = |runs: &[Value]| -> Vec<f64> {
                runs.iter()
                    .filter_map(|r| figures(r).into_iter().find(|(k, _)| k == step))
                    .map(|(_, v)| v)
                    .collect()
            };
            let (l, r) = (pick(lathe), pick(reference));
            let (lm, rm) = (median(&mut l.clone()), median(&mut r.clone()));
            json!({
                "step": step,
                "lathe_images_per_sec": l,
                "reference_images_per_sec": r,
                "lathe_median": lm,
                "reference_median": rm,
                "ratio": if r.is_empty() { Value::Null } else { json!(lm / rm) },
            })
        })
        .collect()
}

/// The table a person reads.
pub fn print(summary: &[Value], device: &str, reference: &Value, rounds: usize) {
    println!(
        "Lathe {} against {} on {device}, {rounds} rounds each, alternating (images/s, median; ratio > 1: Lathe is faster):",
        env!("CARGO_PKG_VERSION"),
        reference["reference"].as_str().unwrap_or("the reference"),
    );
    println!(
        "  {:<26} {:>10} {:>10} {:>7}",
        "step", "Lathe", "PyTorch", "ratio"
    );
    for s in summary {
        let ratio = s["ratio"]
            .as_f64()
            .map_or("—".to_string(), |r| format!("{r:.2}×"));
        let reference = s["reference_median"]
            .as_f64()
            .filter(|v| v.is_finite())
            .map_or("—".to_string(), |v| format!("{v:.1}"));
        println!(
            "  {:<26} {:>10.1} {:>10} {:>7}",
            s["step"].as_str().unwrap_or(""),
            s["lathe_median"].as_f64().unwrap_or(f64::NAN),
            reference,
            ratio
        );
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ratios_are_medians_of_each_side_and_missing_steps_have_none() {
        let lathe = [
            json!({"feature_extraction": [{"dtype": "f32", "images_per_sec": 100.0}], "fine_tune_step": {"images_per_sec": 10.0}}),
            json!({"feature_extraction": [{"dtype": "f32", "images_per_sec": 300.0}], "fine_tune_step": {"images_per_sec": 30.0}}),
            json!({"feature_extraction": [{"dtype": "f32", "images_per_sec": 200.0}], "fine_tune_step": {"images_per_sec": 20.0}}),
        ];
        let torch = [
            json!({"feature_extraction": [{"dtype": "f32", "images_per_sec": 400.0}]}),
            json!({"feature_extraction": [{"dtype": "f32", "images_per_sec": 100.0}]}),
            json!({"feature_extraction": [{"dtype": "f32", "images_per_sec": 50.0}]}),
        ];
        let s = summarize(&lathe, &torch);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0]["step"], "feature extraction f32");
        assert_eq!(s[0]["lathe_median"], 200.0);
        assert_eq!(s[0]["reference_median"], 100.0);
        assert_eq!(s[0]["ratio"], 2.0);
        assert_eq!(s[1]["step"], "fine-tuning step");
        assert!(s[1]["ratio"].is_null());
        assert_eq!(torch_device("cuda"), "cuda:0");
        assert_eq!(torch_device("cuda:1"), "cuda:1");
    }
}
