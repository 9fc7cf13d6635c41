//! Image decoding with hard limits (a decompression bomb is refused before any pixel memory is
//! allocated), bilinear resizing (SIMD, `fast_image_resize`) and conversion to normalized CHW
//! floats — the preprocessing the model and `preprocessor_config.json` describe.

use fast_image_resize::images::Image;
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use image::{ImageReader, RgbImage};
use serde::{Deserialize, Serialize};
use std::io::Cursor;

/// Largest width or height accepted.
pub const MAX_SIDE: u32 = 16_384;
/// Largest pixel count accepted (100 megapixels).
pub const MAX_PIXELS: u64 = 100_000_000;
/// Most memory a decoder may allocate.
pub const MAX_ALLOC_BYTES: u64 = 1 << 30;

/// File extensions read as images.
pub const IMAGE_EXTENSIONS: &[&str] = &["jpg", "jpeg", "png", "bmp", "gif", "webp", "tiff", "tif"];

/// How images become model input.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Preprocessing {
    /// Model input width and height in pixels (the whole image is resized to it).
    pub width: u32,
    pub height: u32,
    /// Per-channel mean and std applied after scaling pixels to 0–1.
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

impl Preprocessing {
    /// ImageNet normalization at `size`×`size`.
    pub fn imagenet(size: u32) -> Self {
        Self {
            width: size,
            height: size,
            mean: [0.485, 0.456, 0.406],
            std: [0.229, 0.224, 0.225],
        }
    }

    /// A stable string that changes whenever the preprocessing does (part of the cache key).
    pub fn signature(&self) -> String {
        format!(
            "resize-bilinear-{}x{}-mean{:?}-std{:?}",
            self.width, self.height, self.mean, self.std
        )
    }

    /// Decodes, resizes and normalizes one encoded image into `width*height*3` CHW floats.
    pub fn load(&self, bytes: &[u8]) -> Result<Vec<f32>, String> {
        let rgb = decode_rgb(bytes)?;
        Ok(self.normalize(&resize(&rgb, self.width, self.height)?))
    }

    /// Normalizes an RGB image already at the model size into CHW floats.
    pub fn normalize(&self, rgb: &RgbImage) -> Vec<f32> {
        let (w, h) = rgb.dimensions();
        let plane = (w * h) as usize;
        let mut out = vec![0f32; plane * 3];
        for (i, px) in rgb.pixels().enumerate() {
            for c in 0..3 {
                out[c * plane + i] = (px.0[c] as f32 / 255.0 - self.mean[c]) / self.std[c];
            }
        }
        out
    }
}

/// Reads width and height from the header without decoding, refusing oversized images.
pub fn probe(bytes: &[u8]) -> Result<(u32, u32), String> {
    crate::data::contain::guarded("the image decoder", || probe_unguarded(bytes))
}

fn probe_unguarded(bytes: &[u8]) -> Result<(u32, u32), String> {
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| format!("cannot read image ({e})"))?;
    if reader.format().is_none() {
        return Err("not an image Lathe can read (jpg, png, bmp, gif, webp, tiff)".into());
    }
    let (w, h) = reader
        .into_dimensions()
        .map_err(|e| format!("cannot read image header ({e})"))?;
    check_size(w, h)?;
    Ok((w, h))
}

fn check_size(w: u32, h: u32) -> Result<(), String> {
    if w == 0 || h == 0 {
        return Err(format!("image is {w}×{h} pixels, which is empty"));
    }
    if w > MAX_SIDE || h > MAX_SIDE || w as u64 * h as u64 > MAX_PIXELS {
        return Err(format!(
            "image claims {w}×{h} pixels, over Lathe's limit ({MAX_SIDE} per side, {} megapixels); downscale it",
            MAX_PIXELS / 1_000_000
        ));
    }
    Ok(())
}

/// Decodes an image of any supported format to 8-bit RGB, within the size limits.
pub fn decode_rgb(bytes: &[u8]) -> Result<RgbImage, String> {
    crate::data::contain::guarded("the image decoder", || decode_rgb_unguarded(bytes))
}

fn decode_rgb_unguarded(bytes: &[u8]) -> Result<RgbImage, String> {
    let (w, h) = probe_unguarded(bytes)?;
    check_size(w, h)?;
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| format!("cannot read image ({e})"))?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_ALLOC_BYTES);
    reader.limits(limits);
    let img = reader
        .decode()
        .map_err(|e| format!("cannot decode image ({e})"))?;
    Ok(img.to_rgb8())
}

/// Resizes to exactly `width`×`height` with a bilinear (antialiased, like PIL) filter.
pub fn resize(rgb: &RgbImage, width: u32, height: u32) -> Result<RgbImage, String> {
    if rgb.dimensions() == (width, height) {
        return Ok(rgb.clone());
    }
    let (w, h) = rgb.dimensions();
    let src = Image::from_vec_u8(w, h, rgb.as_raw().clone(), PixelType::U8x3)
        .map_err(|e| format!("cannot resize ({e})"))?;
    let mut dst = Image::new(width, height, PixelType::U8x3);
    let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear));
    Resizer::new()
        .resize(&src, &mut dst, &options)
        .map_err(|e| format!("cannot resize ({e})"))?;
    RgbImage::from_raw(width, height, dst.into_vec())
        .ok_or_else(|| "cannot resize (buffer size)".to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn png(w: u32, h: u32) -> Vec<u8> {
        let img = RgbImage::from_fn(w, h, |x, y| image::Rgb([(x * 8) as u8, (y * 8) as u8, 128]));
        let mut out = Vec::new();
        img.write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png)
            .unwrap();
        out
    }

    #[test]
    fn loads_resizes_and_normalizes() {
        let p = Preprocessing::imagenet(16);
        let x = p.load(&png(32, 20)).unwrap();
        assert_eq!(x.len(), 16 * 16 * 3);
        // Blue channel is constant 128 -> (128/255 - 0.406) / 0.225.
        let expect = (128.0 / 255.0 - 0.406) / 0.225;
        assert!((x[2 * 256 + 5] - expect).abs() < 1e-5);
    }

    #[test]
    fn refuses_bombs_and_garbage_without_decoding() {
        let mut bomb = png(4, 4);
        // Rewrite the IHDR width/height to 40000×40000 (CRC left stale: the header read fails or is refused).
        bomb[16..20].copy_from_slice(&40000u32.to_be_bytes());
        bomb[20..24].copy_from_slice(&40000u32.to_be_bytes());
        assert!(decode_rgb(&bomb).is_err());
        assert!(probe(b"definitely not an image").is_err());
        assert!(probe(&png(4, 4)[..30]).is_err() || decode_rgb(&png(4, 4)[..30]).is_err());
    }
}
