//! Generates a synthetic object-detection benchmark set (Create ML JSON): Fashion-MNIST items
//! from `assets/sample/fashion-mnist/train` (5 classes) pasted in random colours and sizes on
//! crops of the CC0 photos in `assets/photos` and on procedural textures.
//!
//! `cargo run --example detection_data -- OUT_DIR [NUM_TRAIN] [NUM_TEST] [SIZE] [SEED] [png|jpg]`
//! writes `OUT_DIR/train` and `OUT_DIR/test` (defaults: 1000, 200, 256, 7, png).

use lathe_engine::templates::detect::synth::{self as detect_synth, SynthConfig};
use std::path::{Path, PathBuf};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(out) = args.first().map(PathBuf::from) else {
        anyhow::bail!("usage: detection_data OUT_DIR [NUM_TRAIN] [NUM_TEST] [SIZE] [SEED]");
    };
    let num = |i: usize, default: u64| -> anyhow::Result<u64> {
        Ok(args
            .get(i)
            .map(|s| s.parse())
            .transpose()?
            .unwrap_or(default))
    };
    let (train, test, size, seed) = (num(1, 1000)?, num(2, 200)?, num(3, 256)?, num(4, 7)?);
    // LATHE_ASSETS: the repo's assets/ when this binary runs away from its source tree.
    let assets = std::env::var_os("LATHE_ASSETS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets"));
    let labels = ["Ankle_boot", "Bag", "Dress", "Sneaker", "Trouser"];
    let train_sprites =
        detect_synth::load_sprites(&assets.join("sample/fashion-mnist/train"), &labels, 50)?;
    let test_sprites =
        detect_synth::load_sprites(&assets.join("sample/fashion-mnist/test"), &labels, 50)?;
    let photos = ["chelsea.png", "coffee.png"]
        .iter()
        .map(|n| image::open(assets.join("photos").join(n)).map(|i| i.to_rgb8()))
        .collect::<Result<Vec<_>, _>>()?;
    for (split, n, sprites, split_seed) in [
        ("train", train, &train_sprites, seed),
        ("test", test, &test_sprites, seed + 1),
    ] {
        let cfg = SynthConfig {
            num_images: n as usize,
            width: size as u32,
            height: size as u32,
            min_objects: 1,
            max_objects: 4,
            min_size: 0.12,
            max_size: 0.45,
            seed: split_seed,
            extension: args.get(5).cloned().unwrap_or_else(|| "png".into()),
        };
        detect_synth::generate(&out.join(split), sprites, &photos, &cfg)?;
        eprintln!("wrote {n} images to {}", out.join(split).display());
    }
    Ok(())
}
