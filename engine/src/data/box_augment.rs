//! Augmentation for object detection that moves the boxes with the pixels: a random crop or pad
//! (zoom in or out, with a little aspect change), a horizontal flip, and colour jitter
//! (brightness, contrast, saturation). It runs on the image already resized to the model input,
//! so training sees the same resampling as inference; every draw comes from the caller's seeded
//! generator, so an epoch is reproducible.

use crate::data::annotations::{ObjectBox, Rect};
use image::{Rgb, RgbImage};
use rand::Rng;

/// Fill colour of padded areas (the ImageNet mean, which normalizes to about zero).
const PAD: [u8; 3] = [124, 116, 104];
/// A box that keeps less than this share of its area after a crop is dropped.
const MIN_VISIBLE: f32 = 0.4;

/// Which augmentations run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BoxAugment {
    pub crop: bool,
    pub flip: bool,
    pub color: bool,
}

impl BoxAugment {
    pub fn any(&self) -> bool {
        self.crop || self.flip || self.color
    }

    /// Augments `img` and its `objects` (in `img` pixels).
    pub fn apply(
        &self,
        img: &RgbImage,
        objects: &[ObjectBox],
        rng: &mut impl Rng,
    ) -> (RgbImage, Vec<ObjectBox>) {
        let (mut img, mut objects) = if self.crop {
            let zoom: f32 = rng.random_range(0.6..1.4);
            let aspect: f32 = rng.random_range(0.9..1.1);
            let (w, h) = img.dimensions();
            let win_w = w as f32 * zoom * aspect;
            let win_h = h as f32 * zoom / aspect;
            let x0 = pick(rng, w as f32 - win_w);
            let y0 = pick(rng, h as f32 - win_h);
            crop_resample(img, objects, x0, y0, win_w, win_h)
        } else {
            (img.clone(), objects.to_vec())
        };
        if self.flip && rng.random_bool(0.5) {
            image::imageops::flip_horizontal_in_place(&mut img);
            let w = img.width() as f32;
            for o in &mut objects {
                o.rect.x = w - o.rect.right();
            }
        }
        if self.color {
            let brightness: f32 = rng.random_range(-32.0..32.0);
            let contrast: f32 = rng.random_range(0.7..1.3);
            let saturation: f32 = rng.random_range(0.7..1.3);
            jitter(&mut img, brightness, contrast, saturation);
        }
        (img, objects)
    }
}

/// A window origin: inside the image when the window is smaller (crop), around it when larger (pad).
fn pick(rng: &mut impl Rng, slack: f32) -> f32 {
    if slack.abs() < 1e-3 {
        0.0
    } else if slack > 0.0 {
        rng.random_range(0.0..slack)
    } else {
        rng.random_range(slack..0.0)
    }
}

/// The window `(x0, y0, win_w, win_h)` of `img` (which may reach outside it: padding) resampled
/// bilinearly back to `img`'s size, with the boxes mapped, clipped, and dropped when mostly cut.
pub fn crop_resample(
    img: &RgbImage,
    objects: &[ObjectBox],
    x0: f32,
    y0: f32,
    win_w: f32,
    win_h: f32,
) -> (RgbImage, Vec<ObjectBox>) {
    let (w, h) = img.dimensions();
    let (sx, sy) = (win_w / w as f32, win_h / h as f32);
    let fetch = |x: i64, y: i64| -> [f32; 3] {
        if x < 0 || y < 0 || x >= w as i64 || y >= h as i64 {
            PAD.map(f32::from)
        } else {
            img.get_pixel(x as u32, y as u32).0.map(f32::from)
        }
    };
    let out = RgbImage::from_fn(w, h, |u, v| {
        let fx = x0 + (u as f32 + 0.5) * sx - 0.5;
        let fy = y0 + (v as f32 + 0.5) * sy - 0.5;
        let (ix, iy) = (fx.floor(), fy.floor());
        let (ax, ay) = (fx - ix, fy - iy);
        let (ix, iy) = (ix as i64, iy as i64);
        let p00 = fetch(ix, iy);
        let p10 = fetch(ix + 1, iy);
        let p01 = fetch(ix, iy + 1);
        let p11 = fetch(ix + 1, iy + 1);
        let mut px = [0u8; 3];
        for (c, slot) in px.iter_mut().enumerate() {
            let top = p00[c] * (1.0 - ax) + p10[c] * ax;
            let bottom = p01[c] * (1.0 - ax) + p11[c] * ax;
            *slot = (top * (1.0 - ay) + bottom * ay).round().clamp(0.0, 255.0) as u8;
        }
        Rgb(px)
    });
    let mut kept = Vec::with_capacity(objects.len());
    for o in objects {
        let moved = Rect {
            x: (o.rect.x - x0) / sx,
            y: (o.rect.y - y0) / sy,
            width: o.rect.width / sx,
            height: o.rect.height / sy,
        };
        let clipped = moved.clip(w as f32, h as f32);
        if clipped.width >= 2.0
            && clipped.height >= 2.0
            && clipped.area() >= MIN_VISIBLE * moved.area()
        {
            kept.push(ObjectBox {
                label: o.label,
                rect: clipped,
            });
        }
    }
    (out, kept)
}

/// Adds `brightness`, scales contrast around mid-grey and saturation around each pixel's grey.
pub fn jitter(img: &mut RgbImage, brightness: f32, contrast: f32, saturation: f32) {
    for p in img.pixels_mut() {
        let [r, g, b] = p.0.map(f32::from);
        let grey = 0.299 * r + 0.587 * g + 0.114 * b;
        p.0 = [r, g, b].map(|c| {
            let c = grey + (c - grey) * saturation;
            let c = 128.0 + (c - 128.0) * contrast + brightness;
            c.round().clamp(0.0, 255.0) as u8
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// A black image with one white square: where the square goes, the box must go.
    fn square_image() -> (RgbImage, Vec<ObjectBox>) {
        let img = RgbImage::from_fn(64, 64, |x, y| {
            if (16..32).contains(&x) && (24..40).contains(&y) {
                Rgb([255, 255, 255])
            } else {
                Rgb([0, 0, 0])
            }
        });
        let o = ObjectBox {
            label: 0,
            rect: Rect {
                x: 16.0,
                y: 24.0,
                width: 16.0,
                height: 16.0,
            },
        };
        (img, vec![o])
    }

    /// The tight box of bright pixels.
    fn bright_box(img: &RgbImage) -> Rect {
        let (mut x0, mut y0, mut x1, mut y1) = (u32::MAX, u32::MAX, 0, 0);
        for (x, y, p) in img.enumerate_pixels() {
            if p.0[0] > 170 {
                x0 = x0.min(x);
                y0 = y0.min(y);
                x1 = x1.max(x + 1);
                y1 = y1.max(y + 1);
            }
        }
        Rect {
            x: x0 as f32,
            y: y0 as f32,
            width: (x1 - x0) as f32,
            height: (y1 - y0) as f32,
        }
    }

    #[test]
    fn boxes_follow_the_pixels() {
        let (img, objects) = square_image();
        let aug = BoxAugment {
            crop: true,
            flip: true,
            color: true,
        };
        for seed in 0..20 {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let (out, boxes) = aug.apply(&img, &objects, &mut rng);
            assert_eq!(out.dimensions(), (64, 64));
            if let Some(b) = boxes.first() {
                let seen = bright_box(&out);
                assert!(
                    crate::data::boxes::iou(&b.rect, &seen) > 0.7,
                    "seed {seed}: {b:?} vs {seen:?}"
                );
            }
        }
    }

    #[test]
    fn flip_mirrors_the_box_and_crop_drops_cut_objects() {
        let (img, objects) = square_image();
        let aug = BoxAugment {
            crop: false,
            flip: true,
            color: false,
        };
        let flipped = (0..10)
            .map(|s| {
                aug.apply(&img, &objects, &mut rand::rngs::StdRng::seed_from_u64(s))
                    .1[0]
                    .rect
            })
            .find(|r| r.x != 16.0)
            .unwrap();
        assert_eq!(
            flipped,
            Rect {
                x: 32.0,
                y: 24.0,
                width: 16.0,
                height: 16.0
            }
        );
        // A window that keeps only a 2-pixel sliver of the square drops its box.
        let (_, kept) = crop_resample(&img, &objects, 30.0, 0.0, 34.0, 64.0);
        assert!(kept.is_empty());
        // Padding (window twice the image) halves the box.
        let (_, kept) = crop_resample(&img, &objects, -32.0, -32.0, 128.0, 128.0);
        assert_eq!(
            kept[0].rect,
            Rect {
                x: 24.0,
                y: 28.0,
                width: 8.0,
                height: 8.0
            }
        );
    }
}
