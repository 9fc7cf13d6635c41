//! Image augmentation as Create ML does it: each enabled operation adds one augmented copy of
//! every training image before feature extraction. Copies are deterministic: the random
//! parameters come from the project seed and the file's content hash, so the feature cache can
//! key them and a rerun gives the same model.

use image::{Rgb, RgbImage};
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// One augmentation operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Augmentation {
    /// Mirror left–right.
    Flip,
    /// Rotate by up to ±20°.
    Rotate,
    /// Crop 70–90 % of the area and scale back up.
    Crop,
    /// Brighten or darken by up to ±40 %.
    Exposure,
    /// Gaussian blur, σ 0.5–1.5 px.
    Blur,
    /// Gaussian pixel noise, σ ≈ 4 % of the range.
    Noise,
}

impl Augmentation {
    pub const ALL: [Augmentation; 6] = [
        Self::Flip,
        Self::Rotate,
        Self::Crop,
        Self::Exposure,
        Self::Blur,
        Self::Noise,
    ];

    /// The parameter key that turns this augmentation on (`augment_flip`, …).
    pub fn param_key(self) -> &'static str {
        match self {
            Self::Flip => "augment_flip",
            Self::Rotate => "augment_rotate",
            Self::Crop => "augment_crop",
            Self::Exposure => "augment_exposure",
            Self::Blur => "augment_blur",
            Self::Noise => "augment_noise",
        }
    }

    pub fn name(self) -> &'static str {
        &self.param_key()["augment_".len()..]
    }

    /// Applies the operation to an image at model size; the output has the same size.
    pub fn apply(self, img: &RgbImage, seed: u64, content_hash: &[u8; 32]) -> RgbImage {
        let mut key = [0u8; 8];
        key.copy_from_slice(&content_hash[..8]);
        let mut rng = rand::rngs::StdRng::seed_from_u64(
            seed ^ u64::from_le_bytes(key) ^ ((self as u64 + 1) * 0x9E37_79B9),
        );
        match self {
            Self::Flip => image::imageops::flip_horizontal(img),
            Self::Rotate => rotate(img, rng.random_range(-20.0f32..20.0).to_radians()),
            Self::Crop => {
                let (w, h) = img.dimensions();
                let side = rng.random_range(0.70f32..0.90).sqrt();
                let cw = ((w as f32 * side) as u32).max(1);
                let ch = ((h as f32 * side) as u32).max(1);
                let x = rng.random_range(0..=w - cw);
                let y = rng.random_range(0..=h - ch);
                let crop = image::imageops::crop_imm(img, x, y, cw, ch).to_image();
                image::imageops::resize(&crop, w, h, image::imageops::FilterType::Triangle)
            }
            Self::Exposure => {
                let f = rng.random_range(0.6f32..1.4);
                map_pixels(img, |v| v as f32 * f)
            }
            Self::Blur => image::imageops::blur(img, rng.random_range(0.5f32..1.5)),
            Self::Noise => {
                let mut out = img.clone();
                for px in out.pixels_mut() {
                    for c in px.0.iter_mut() {
                        let n: f32 = gaussian(&mut rng) * 10.0;
                        *c = (*c as f32 + n).round().clamp(0.0, 255.0) as u8;
                    }
                }
                out
            }
        }
    }
}

fn map_pixels(img: &RgbImage, f: impl Fn(u8) -> f32) -> RgbImage {
    let mut out = img.clone();
    for px in out.pixels_mut() {
        for c in px.0.iter_mut() {
            *c = f(*c).round().clamp(0.0, 255.0) as u8;
        }
    }
    out
}

fn gaussian(rng: &mut impl Rng) -> f32 {
    // Box–Muller.
    let u1: f32 = rng.random_range(f32::EPSILON..1.0);
    let u2: f32 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
}

/// Rotation about the centre with bilinear sampling; corners outside take the nearest edge pixel.
fn rotate(img: &RgbImage, angle: f32) -> RgbImage {
    let (w, h) = img.dimensions();
    let (cx, cy) = (w as f32 / 2.0, h as f32 / 2.0);
    let (s, c) = angle.sin_cos();
    let sample = |x: f32, y: f32, ch: usize| -> f32 {
        let x = x.clamp(0.0, w as f32 - 1.0);
        let y = y.clamp(0.0, h as f32 - 1.0);
        let (x0, y0) = (x.floor() as u32, y.floor() as u32);
        let (x1, y1) = ((x0 + 1).min(w - 1), (y0 + 1).min(h - 1));
        let (fx, fy) = (x - x0 as f32, y - y0 as f32);
        let p = |xx, yy| img.get_pixel(xx, yy).0[ch] as f32;
        let top = p(x0, y0) * (1.0 - fx) + p(x1, y0) * fx;
        let bottom = p(x0, y1) * (1.0 - fx) + p(x1, y1) * fx;
        top * (1.0 - fy) + bottom * fy
    };
    RgbImage::from_fn(w, h, |x, y| {
        let (dx, dy) = (x as f32 + 0.5 - cx, y as f32 + 0.5 - cy);
        let sx = c * dx + s * dy + cx - 0.5;
        let sy = -s * dx + c * dy + cy - 0.5;
        Rgb([0, 1, 2].map(|ch| sample(sx, sy, ch).round().clamp(0.0, 255.0) as u8))
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn every_op_keeps_size_is_deterministic_and_changes_the_image() {
        let img = RgbImage::from_fn(24, 16, |x, y| {
            Rgb([(x * 10) as u8, (y * 15) as u8, ((x + y) * 5) as u8])
        });
        for op in Augmentation::ALL {
            let a = op.apply(&img, 1, &[7; 32]);
            let b = op.apply(&img, 1, &[7; 32]);
            assert_eq!(a.dimensions(), img.dimensions(), "{op:?}");
            assert_eq!(a, b, "{op:?} not deterministic");
            assert_ne!(a, img, "{op:?} did nothing");
        }
        let flipped = Augmentation::Flip.apply(&img, 0, &[0; 32]);
        assert_eq!(flipped.get_pixel(0, 0), img.get_pixel(23, 0));
    }
}
