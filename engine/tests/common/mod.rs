//! Helpers shared by the engine's end-to-end tests: the built `lathe` binary with a private
//! feature cache, and tiny generated image datasets.
#![allow(dead_code)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use image::{Rgb, RgbImage};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A path that scripts/test fetches and passes in environment variable `var` (pretrained
/// weights, the Core ML checker's Python; `how` says where it comes from). Without it the test
/// prints why it is skipped and gets `None` — unless `LATHE_REQUIRE_FETCHED` is set, as
/// scripts/test (and so CI) sets it: there a missing variable fails the test rather than letting
/// it pass unchecked.
pub fn fetched(var: &str, how: &str) -> Option<PathBuf> {
    if let Some(v) = std::env::var_os(var) {
        return Some(PathBuf::from(v));
    }
    assert!(
        std::env::var_os("LATHE_REQUIRE_FETCHED").is_none(),
        "{var} is not set ({how}), and LATHE_REQUIRE_FETCHED forbids skipping"
    );
    eprintln!("skipped: set {var} ({how})");
    None
}

/// The Core ML checker's Python (`scripts/coreml-env.sh` prints it), as [`fetched`].
pub fn coreml_python() -> Option<PathBuf> {
    fetched("LATHE_COREML_PYTHON", "scripts/coreml-env.sh prints it")
}

/// EfficientNet-Lite0's converted weights (`scripts/fetch-efficientnet-lite0.sh`), as [`fetched`].
pub fn efficientnet_lite0() -> Option<PathBuf> {
    fetched(
        "LATHE_EFFICIENTNET_LITE0",
        "scripts/fetch-efficientnet-lite0.sh prints it",
    )
}

/// EfficientNet-Lite2's converted weights (`scripts/fetch-efficientnet-lite2.sh`), as [`fetched`].
pub fn efficientnet_lite2() -> Option<PathBuf> {
    fetched(
        "LATHE_EFFICIENTNET_LITE2",
        "scripts/fetch-efficientnet-lite2.sh prints it",
    )
}

/// `lathe` with its feature cache in `cache` and an empty weights folder inside it (so
/// `backbone = "auto"` sees only the built-in backbone unless a test installs more there).
pub fn lathe(cache: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_lathe"));
    c.env("LATHE_CACHE_DIR", cache)
        .env("LATHE_WEIGHTS_DIR", cache.join("weights"))
        .env("HF_HUB_OFFLINE", "1");
    c
}

pub fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("lathe runs");
    if std::env::var_os("LATHE_TEST_VERBOSE").is_some() {
        eprintln!(
            "stdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Whisper tiny.en's converted encoder weights (`scripts/fetch-whisper-tiny.sh`), as [`fetched`].
pub fn whisper_tiny() -> Option<PathBuf> {
    fetched(
        "LATHE_WHISPER_TINY",
        "scripts/fetch-whisper-tiny.sh prints it",
    )
}

/// YAMNet's converted weights (`scripts/fetch-yamnet.sh`), as [`fetched`].
pub fn yamnet() -> Option<PathBuf> {
    fetched("LATHE_YAMNET", "scripts/fetch-yamnet.sh prints it")
}

/// The bundled Fashion-MNIST sample.
pub fn sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/sample/fashion-mnist")
}

/// One generated image of class `class` (distinct colour and pattern per class), varied by `i`.
pub fn class_image(class: usize, i: usize, size: u32) -> RgbImage {
    RgbImage::from_fn(size, size, |x, y| {
        let n = ((x * 31 + y * 17 + i as u32 * 101) % 23) as u8;
        match class % 3 {
            0 => {
                let d = (x as i32 - size as i32 / 2).pow(2) + (y as i32 - size as i32 / 2).pow(2);
                if d < (size as i32 / 3).pow(2) {
                    Rgb([220, 40 + n, 40])
                } else {
                    Rgb([20 + n, 20, 20])
                }
            }
            1 => {
                if (x / 4) % 2 == 0 {
                    Rgb([30, 200 - n, 30])
                } else {
                    Rgb([240, 240, 240 - n])
                }
            }
            _ => {
                if (y / 6) % 2 == 0 {
                    Rgb([30 + n, 30, 210])
                } else {
                    Rgb([10, 10 + n, 60])
                }
            }
        }
    })
}

/// Writes `root/<class>/<i>.png` for `classes` classes × `per_class` images.
pub fn make_dataset(root: &Path, classes: &[&str], per_class: usize, offset: usize) {
    for (c, name) in classes.iter().enumerate() {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..per_class {
            class_image(c, i + offset, 40)
                .save(dir.join(format!("{:03}.png", i + offset)))
                .unwrap();
        }
    }
}

/// Parses JSON lines.
pub fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// 8 generated 96×96 detection images (Create ML annotations) with 1–2 objects of `classes`
/// (Fashion-MNIST items pasted on the bundled photos).
pub fn detection_data(dir: &Path, seed: u64, classes: &[&str]) {
    use lathe_engine::templates::detect::synth::{self as detect_synth, SynthConfig};
    let photos: Vec<RgbImage> = ["chelsea.png", "coffee.png"]
        .iter()
        .map(|n| {
            image::open(
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("../assets/photos")
                    .join(n),
            )
            .unwrap()
            .to_rgb8()
        })
        .collect();
    let sprites = detect_synth::load_sprites(&sample().join("train"), classes, 4).unwrap();
    let cfg = SynthConfig {
        num_images: 8,
        width: 96,
        height: 96,
        min_objects: 1,
        max_objects: 2,
        min_size: 0.3,
        max_size: 0.5,
        seed,
        extension: "png".into(),
    };
    detect_synth::generate(dir, &sprites, &photos, &cfg).unwrap();
}
