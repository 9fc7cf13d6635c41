//! A seeded generator of object-detection datasets for tests and benchmarks: it pastes sprites
//! (Fashion-MNIST items from `assets/sample/fashion-mnist`, or any grey images whose brightness
//! is the object) in random colours and sizes onto backgrounds — crops of real photos (the CC0
//! scikit-image photos in `assets/photos`) or procedural textures — and writes the images plus an
//! `annotations.json` in Create ML's format. Boxes are the tight bounds of the pasted pixels.

use crate::data::annotations::{Rect, create_ml_json};
use crate::error::{Error, Result};
use image::{GrayImage, Rgb, RgbImage, imageops::FilterType};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::path::Path;

/// One class of sprites.
pub struct SpriteClass {
    pub label: String,
    pub sprites: Vec<GrayImage>,
}

/// What to generate.
#[derive(Clone, Debug)]
pub struct SynthConfig {
    pub num_images: usize,
    pub width: u32,
    pub height: u32,
    pub min_objects: usize,
    pub max_objects: usize,
    /// Object side as a share of the image's shorter side.
    pub min_size: f32,
    pub max_size: f32,
    pub seed: u64,
    /// Image file extension: `png`, or `jpg` for small files (quality 90).
    pub extension: String,
}

/// Loads up to `per_class` sprites of each of `labels` from a folder-per-class tree of grey images.
pub fn load_sprites(root: &Path, labels: &[&str], per_class: usize) -> Result<Vec<SpriteClass>> {
    let mut out = Vec::new();
    for label in labels {
        let dir = root.join(label);
        let mut sprites = Vec::new();
        for path in crate::fsutil::sorted_entries(&dir)?
            .into_iter()
            .take(per_class)
        {
            let img = image::open(&path)
                .map_err(|e| Error::data(format!("cannot read sprite ({e})"), &path))?;
            sprites.push(img.to_luma8());
        }
        if sprites.is_empty() {
            return Err(Error::data("no sprite images", &dir));
        }
        out.push(SpriteClass {
            label: (*label).to_string(),
            sprites,
        });
    }
    Ok(out)
}

/// A procedural background: smooth colour gradients with stripes or blotches and noise.
pub fn texture(width: u32, height: u32, rng: &mut StdRng) -> RgbImage {
    let a: [f32; 3] = [
        rng.random_range(0.0..255.0),
        rng.random_range(0.0..255.0),
        rng.random_range(0.0..255.0),
    ];
    let b: [f32; 3] = [
        rng.random_range(0.0..255.0),
        rng.random_range(0.0..255.0),
        rng.random_range(0.0..255.0),
    ];
    let kind = rng.random_range(0..3);
    let freq: f32 = rng.random_range(0.02..0.2);
    let angle: f32 = rng.random_range(0.0..std::f32::consts::PI);
    let (ca, sa) = (angle.cos(), angle.sin());
    let noise_seed: u32 = rng.random();
    RgbImage::from_fn(width, height, |x, y| {
        let (fx, fy) = (x as f32, y as f32);
        let t = match kind {
            0 => ((fx * ca + fy * sa) * freq).sin() * 0.5 + 0.5,
            1 => ((fx * freq).sin() * (fy * freq * 0.7).cos()) * 0.5 + 0.5,
            _ => (fx * ca + fy * sa) / (width + height) as f32,
        };
        let h = (x.wrapping_mul(73_856_093) ^ y.wrapping_mul(19_349_663) ^ noise_seed) % 41;
        let n = h as f32 - 20.0;
        Rgb([0, 1, 2].map(|c| (a[c] * (1.0 - t) + b[c] * t + n).clamp(0.0, 255.0) as u8))
    })
}

/// A background: a random crop of one of `photos` resized to the image size, or a texture.
fn background(cfg: &SynthConfig, photos: &[RgbImage], rng: &mut StdRng) -> RgbImage {
    if !photos.is_empty() && rng.random_bool(0.5) {
        let photo = &photos[rng.random_range(0..photos.len())];
        let (pw, ph) = photo.dimensions();
        let scale: f32 = rng.random_range(0.4..1.0);
        let cw = ((pw as f32 * scale) as u32).max(8).min(pw);
        let ch = ((ph as f32 * scale) as u32).max(8).min(ph);
        let x = rng.random_range(0..=pw - cw);
        let y = rng.random_range(0..=ph - ch);
        let crop = image::imageops::crop_imm(photo, x, y, cw, ch).to_image();
        let mut img = image::imageops::resize(&crop, cfg.width, cfg.height, FilterType::Triangle);
        if rng.random_bool(0.5) {
            image::imageops::flip_horizontal_in_place(&mut img);
        }
        img
    } else {
        texture(cfg.width, cfg.height, rng)
    }
}

/// Generates `cfg.num_images` images into `dir` (`img_00000.png`, …) and `dir/annotations.json`.
pub fn generate(
    dir: &Path,
    classes: &[SpriteClass],
    photos: &[RgbImage],
    cfg: &SynthConfig,
) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io("creating", dir, e))?;
    let mut rng = StdRng::seed_from_u64(cfg.seed);
    let short = cfg.width.min(cfg.height) as f32;
    let mut entries = Vec::with_capacity(cfg.num_images);
    for n in 0..cfg.num_images {
        let mut img = background(cfg, photos, &mut rng);
        let count = rng.random_range(cfg.min_objects..=cfg.max_objects.max(cfg.min_objects));
        let mut boxes: Vec<(String, Rect)> = Vec::new();
        for _ in 0..count {
            let c = rng.random_range(0..classes.len());
            let class = &classes[c];
            let sprite = &class.sprites[rng.random_range(0..class.sprites.len())];
            let side = short * rng.random_range(cfg.min_size..=cfg.max_size);
            let aspect: f32 = rng.random_range(0.8..1.25);
            let sw = (side * aspect).round().max(4.0) as u32;
            let sh = (side / aspect).round().max(4.0) as u32;
            if sw >= cfg.width || sh >= cfg.height {
                continue;
            }
            // Try a few places that overlap no earlier object.
            let mut placed = None;
            for _ in 0..30 {
                let x = rng.random_range(0..=cfg.width - sw);
                let y = rng.random_range(0..=cfg.height - sh);
                let r = Rect {
                    x: x as f32,
                    y: y as f32,
                    width: sw as f32,
                    height: sh as f32,
                };
                if boxes
                    .iter()
                    .all(|(_, b)| crate::data::boxes::iou(b, &r) == 0.0)
                {
                    placed = Some((x, y));
                    break;
                }
            }
            let Some((x, y)) = placed else { continue };
            let scaled = image::imageops::resize(sprite, sw, sh, FilterType::Triangle);
            let colour: [f32; 3] = [
                rng.random_range(0.0..255.0),
                rng.random_range(0.0..255.0),
                rng.random_range(0.0..255.0),
            ];
            let (mut x0, mut y0, mut x1, mut y1) = (u32::MAX, u32::MAX, 0, 0);
            for (sx, sy, p) in scaled.enumerate_pixels() {
                let alpha = (f32::from(p.0[0]) / 255.0 * 1.6).min(1.0);
                if alpha < 0.08 {
                    continue;
                }
                let shade = 0.55 + 0.45 * f32::from(p.0[0]) / 255.0;
                let dst = img.get_pixel_mut(x + sx, y + sy);
                dst.0 = [0, 1, 2].map(|k| {
                    (f32::from(dst.0[k]) * (1.0 - alpha) + colour[k] * shade * alpha).round() as u8
                });
                if alpha >= 0.3 {
                    x0 = x0.min(sx);
                    y0 = y0.min(sy);
                    x1 = x1.max(sx + 1);
                    y1 = y1.max(sy + 1);
                }
            }
            if x1 > x0 && y1 > y0 {
                boxes.push((
                    class.label.clone(),
                    Rect {
                        x: (x + x0) as f32,
                        y: (y + y0) as f32,
                        width: (x1 - x0) as f32,
                        height: (y1 - y0) as f32,
                    },
                ));
            }
        }
        let name = format!("img_{n:05}.{}", cfg.extension);
        let path = dir.join(&name);
        let saved = if cfg.extension == "jpg" {
            std::fs::File::create(&path)
                .map_err(|e| e.to_string())
                .and_then(|f| {
                    image::codecs::jpeg::JpegEncoder::new_with_quality(
                        std::io::BufWriter::new(f),
                        90,
                    )
                    .encode_image(&img)
                    .map_err(|e| e.to_string())
                })
        } else {
            img.save(&path).map_err(|e| e.to_string())
        };
        saved.map_err(|e| Error::data(format!("cannot write image ({e})"), &path))?;
        entries.push((name, boxes));
    }
    crate::fsutil::write_json(&dir.join("annotations.json"), &create_ml_json(&entries))
}
