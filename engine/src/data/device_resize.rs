//! Resizing and normalizing a batch of same-size 8-bit images on the model's device, bit for bit
//! as the CPU path does it (`image_decode::resize` then `Preprocessing::normalize`), so that only
//! the small uint8 images cross the bus instead of `3·H·W` floats each.
//!
//! The CPU path is `fast_image_resize`'s u8 bilinear convolution: per output pixel, PIL's triangle
//! weights (widened by the downscale factor) normalized to sum 1 and rounded to i16 fixed point;
//! a vertical pass into a u8 image, then a horizontal one, each `floor((Σ w·x + 2^(p-1)) / 2^p)`
//! clipped to 0–255. Here each pass is one matrix product with the same integer weights. To stay
//! exact even where cuBLAS may use TF32 (11 significant bits), every weight is split into a high
//! and a low byte (`w = 256·hi + lo`): each product and each sum is then an integer below 2^24,
//! exact in any f32 arithmetic, and the rounding is recovered exactly as
//! `floor((H + floor((L + 2^(p-1)) / 256)) / 2^(p-8))`.

use candle_core::{DType, Device, Tensor};

use crate::data::image_decode::Preprocessing;

/// `fast_image_resize`'s bound on the fixed-point precision of u8 convolution weights.
const PRECISION_BITS: u32 = 32 - 8 - 2;
/// Its bound on the largest fixed-point weight (15 bits).
const MAX_COEFFS_PRECISION: u32 = 16 - 1;
/// Largest value an f32 holds exactly as an integer.
const EXACT_F32: f64 = (1u32 << 24) as f64;

/// The integer weights of one pass from `inp` to `out` pixels, dense `[out, inp]` (row-major).
#[derive(Debug, Clone, PartialEq)]
struct PassWeights {
    out: usize,
    inp: usize,
    weights: Vec<i32>,
    precision: u32,
}

/// PIL's bilinear (triangle) filter.
fn triangle(x: f64) -> f64 {
    let x = x.abs();
    if x < 1.0 { 1.0 - x } else { 0.0 }
}

impl PassWeights {
    /// The weights `fast_image_resize` 6 uses for `ResizeAlg::Convolution(FilterType::Bilinear)`
    /// (its `precompute_coefficients` with an adaptive kernel, then `Normalizer16`).
    fn bilinear(in_size: u32, out_size: u32) -> Self {
        let scale = in_size as f64 / out_size as f64;
        let filter_scale = scale.max(1.0);
        let radius = filter_scale; // the triangle's support is 1
        let recip = 1.0 / filter_scale;
        let mut rows: Vec<(usize, Vec<f64>)> = Vec::with_capacity(out_size as usize);
        for out_x in 0..out_size {
            let in_center = (out_x as f64 + 0.5) * scale;
            let x_min = (in_center - radius).floor().max(0.0) as u32;
            let x_max = (in_center + radius).ceil().min(in_size as f64) as u32;
            let center = in_center - 0.5;
            let mut start = x_min;
            let mut ws = Vec::new();
            let mut sum = 0.0;
            for x in x_min..x_max {
                let w = triangle((x as f64 - center) * recip);
                if x == start && w == 0.0 {
                    start += 1;
                } else {
                    ws.push(w);
                    sum += w;
                }
            }
            if sum != 0.0 {
                ws.iter_mut().for_each(|w| *w /= sum);
            }
            rows.push((start as usize, ws));
        }
        let max_weight = rows
            .iter()
            .flat_map(|(_, ws)| ws.iter().copied())
            .fold(0.0f64, f64::max);
        let mut precision = 0;
        for p in 0..PRECISION_BITS {
            precision = p;
            let next = (max_weight * (1u64 << (p + 1)) as f64).round() as i64;
            if next >= 1 << MAX_COEFFS_PRECISION {
                break;
            }
        }
        let (out, inp) = (out_size as usize, in_size as usize);
        let mut weights = vec![0i32; out * inp];
        let scale = (1u64 << precision) as f64;
        for (o, (start, ws)) in rows.iter().enumerate() {
            for (k, w) in ws.iter().enumerate() {
                // `as i16` as the library does: a weight never leaves the i16 range here.
                weights[o * inp + start + k] = (w * scale).round() as i16 as i32;
            }
        }
        Self {
            out,
            inp,
            weights,
            precision,
        }
    }

    /// True when the byte-split products and sums stay exact in f32 for 8-bit inputs.
    fn exact_in_f32(&self) -> bool {
        if self.precision < 8 || self.weights.iter().any(|&w| w < 0) {
            return false;
        }
        (0..self.out).all(|o| {
            let row = &self.weights[o * self.inp..(o + 1) * self.inp];
            let hi: f64 = row.iter().map(|&w| (w >> 8) as f64).sum();
            let lo: f64 = row.iter().map(|&w| (w & 0xff) as f64).sum();
            let half = (1u64 << (self.precision - 1)) as f64;
            255.0 * hi < EXACT_F32 && 255.0 * lo + half < EXACT_F32
        })
    }

    /// `[2·out, inp]`: the high bytes of every row, then the low bytes.
    fn split_rows(&self) -> Vec<f32> {
        let hi = self.weights.iter().map(|&w| (w >> 8) as f32);
        let lo = self.weights.iter().map(|&w| (w & 0xff) as f32);
        hi.chain(lo).collect()
    }
}

/// Whether a `width`×`height` image is resized exactly on the device: any upscale, downscales
/// up to 64× (a window of at most 129 taps keeps every byte-split sum under 2^24).
/// [`DeviceResize::new`] checks the weights themselves as well.
pub fn exact(pre: &Preprocessing, width: u32, height: u32) -> bool {
    width <= 64 * pre.width && height <= 64 * pre.height
}

/// One pass ready on the device.
struct Pass {
    out: usize,
    /// `[2·out, inp]` for the vertical pass, `[inp, 2·out]` for the horizontal one.
    weights: Tensor,
    precision: u32,
}

impl Pass {
    /// Recovers the rounded, clipped 8-bit result from the high and low sums along `dim`.
    fn round(&self, sums: &Tensor, dim: usize) -> candle_core::Result<Tensor> {
        let hi = sums.narrow(dim, 0, self.out)?;
        let lo = sums.narrow(dim, self.out, self.out)?;
        let half = (1u64 << (self.precision - 1)) as f64;
        let carry = lo.affine(1.0 / 256.0, half / 256.0)?.floor()?;
        let shift = (1u64 << (self.precision - 8)) as f64;
        (hi + carry)?
            .affine(1.0 / shift, 0.0)?
            .floor()?
            .clamp(0f32, 255f32)
    }
}

/// Resizes `[N, h, w, 3]` uint8 images to the preprocessing's size and normalizes them into
/// `[N, 3, H, W]` f32, on whatever device the tensors live.
pub struct DeviceResize {
    vertical: Option<Pass>,
    horizontal: Option<Pass>,
    from: (usize, usize),
    to: (usize, usize),
    mean: Tensor,
    std: Tensor,
}

impl DeviceResize {
    /// The resize from `width`×`height` images, or `None` when these sizes cannot be done exactly
    /// (an extreme downscale) and the CPU path should be used.
    pub fn new(
        pre: &Preprocessing,
        width: u32,
        height: u32,
        device: &Device,
    ) -> candle_core::Result<Option<Self>> {
        let vertical = PassWeights::bilinear(height, pre.height);
        let horizontal = PassWeights::bilinear(width, pre.width);
        // fast_image_resize leaves out a pass whose size does not change.
        let need_v = height != pre.height;
        let need_h = width != pre.width;
        if (need_v && !vertical.exact_in_f32()) || (need_h && !horizontal.exact_in_f32()) {
            return Ok(None);
        }
        let vertical = if need_v {
            let w = Tensor::from_vec(
                vertical.split_rows(),
                (2 * vertical.out, vertical.inp),
                device,
            )?;
            Some(Pass {
                out: vertical.out,
                weights: w,
                precision: vertical.precision,
            })
        } else {
            None
        };
        let horizontal = if need_h {
            let w = Tensor::from_vec(
                horizontal.split_rows(),
                (2 * horizontal.out, horizontal.inp),
                device,
            )?
            .t()?
            .contiguous()?;
            Some(Pass {
                out: horizontal.out,
                weights: w,
                precision: horizontal.precision,
            })
        } else {
            None
        };
        let mean = Tensor::from_slice(&pre.mean, (1, 3, 1, 1), device)?;
        let std = Tensor::from_slice(&pre.std, (1, 3, 1, 1), device)?;
        Ok(Some(Self {
            vertical,
            horizontal,
            from: (height as usize, width as usize),
            to: (pre.height as usize, pre.width as usize),
            mean,
            std,
        }))
    }

    /// `pixels`: `[N, h, w, 3]` uint8 on the device → `[N, 3, H, W]` normalized f32.
    pub fn apply(&self, pixels: &Tensor) -> candle_core::Result<Tensor> {
        let (n, h0, w0, c) = pixels.dims4()?;
        if (h0, w0) != self.from || c != 3 {
            candle_core::bail!(
                "device resize built for {:?}×3 images, given {h0}×{w0}×{c}",
                self.from
            );
        }
        let (h, w) = self.to;
        // [h0, N, 3, w0]: rows first for the vertical product, columns last for the horizontal.
        let x = pixels
            .to_dtype(DType::F32)?
            .permute((1, 0, 3, 2))?
            .contiguous()?
            .reshape((h0, n * 3 * w0))?;
        let x = match &self.vertical {
            Some(v) => v.round(&v.weights.matmul(&x)?, 0)?,
            None => x,
        };
        let x = x.contiguous()?.reshape((h * n * 3, w0))?;
        let x = match &self.horizontal {
            Some(p) => p.round(&x.matmul(&p.weights)?, 1)?,
            None => x,
        };
        let x = x
            .contiguous()?
            .reshape((h, n, 3, w))?
            .permute((1, 2, 0, 3))?
            .contiguous()?;
        (x / 255.0)?
            .broadcast_sub(&self.mean)?
            .broadcast_div(&self.std)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::data::image_decode;
    use image::RgbImage;

    /// Deterministic busy pixels (all 256 levels, edges and flat areas).
    fn image(w: u32, h: u32, seed: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            let v = |k: u32| {
                let t = x
                    .wrapping_mul(2_654_435_761)
                    .wrapping_add(y.wrapping_mul(40_503))
                    .wrapping_add(k * 97 + seed);
                if (x / 3 + y / 5) % 4 == 0 {
                    ((x * 9 + y * 4 + k * 60) % 256) as u8
                } else {
                    (t >> 13) as u8
                }
            };
            image::Rgb([v(0), v(1), v(2)])
        })
    }

    /// The device path on the CPU device against `resize` + `normalize`, for several images.
    fn check(w: u32, h: u32, out_w: u32, out_h: u32) -> f32 {
        let pre = Preprocessing {
            width: out_w,
            height: out_h,
            ..Preprocessing::imagenet(out_w)
        };
        let device = Device::Cpu;
        let images: Vec<RgbImage> = (0..3).map(|s| image(w, h, s * 7919)).collect();
        let mut bytes = Vec::new();
        for im in &images {
            bytes.extend_from_slice(im.as_raw());
        }
        let x =
            Tensor::from_vec(bytes, (images.len(), h as usize, w as usize, 3), &device).unwrap();
        let resize = DeviceResize::new(&pre, w, h, &device).unwrap().unwrap();
        let got = resize.apply(&x).unwrap();
        assert_eq!(got.dims(), &[3, 3, out_h as usize, out_w as usize]);
        let got = got.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let mut want = Vec::new();
        for im in &images {
            want.extend(pre.normalize(&image_decode::resize(im, out_w, out_h).unwrap()));
        }
        got.iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max)
    }

    #[test]
    fn matches_the_cpu_resize_bit_for_bit_up_down_and_mixed() {
        // Fashion-MNIST's 28 → 224, downscales (photos), a mixed one, odd sizes, identity.
        for (w, h, ow, oh) in [
            (28, 28, 224, 224),
            (640, 480, 224, 224),
            (300, 91, 224, 224),
            (37, 53, 224, 160),
            (101, 67, 13, 9),
            (224, 224, 224, 224),
            (224, 500, 224, 224),
        ] {
            let d = check(w, h, ow, oh);
            // Same bytes after the resize; the only difference left is the normalization's
            // multiply-by-reciprocal against a division (an ulp).
            assert!(d < 1e-5, "{w}×{h} → {ow}×{oh}: max |Δ| {d}");
        }
    }

    #[test]
    fn weights_follow_the_library_and_refuse_inexact_sizes() {
        let p = PassWeights::bilinear(28, 224);
        assert_eq!((p.out, p.inp), (224, 28));
        // Every output row sums to 2^precision within the rounding of its few taps.
        for o in 0..p.out {
            let s: i32 = p.weights[o * p.inp..(o + 1) * p.inp].iter().sum();
            assert!((s - (1 << p.precision)).abs() <= 2, "row {o}: {s}");
        }
        assert!(p.exact_in_f32());
        // A 400× downscale has windows too wide for exact f32 sums: the CPU path takes it.
        assert!(!PassWeights::bilinear(89_600, 224).exact_in_f32());
    }
}
