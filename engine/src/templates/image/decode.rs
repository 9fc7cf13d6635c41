//! Batches of images for the backbone: read, decode and (on the CPU) resize, augment and
//! normalize in parallel. On a GPU the CPU only decodes: un-augmented images travel as uint8 at
//! their own size, grouped by size, and `data::device_resize` resizes and normalizes them there
//! (bit for bit the CPU's result), so a 28×28 image crosses the bus as 2 KB instead of 600 KB of
//! floats.

use crate::data::device_resize::{self, DeviceResize};
use crate::data::image_decode::{self, Preprocessing};
use crate::error::Result;
use crate::templates::image::classifier::Item;
use candle_core::{Device, Tensor};
use image::RgbImage;
use rayon::prelude::*;
use std::collections::HashMap;

/// Source sizes whose resize weights stay on the device between batches.
const MAX_KEPT_SIZES: usize = 32;

/// One batch: the items that decoded (in the row order of the pixels), those that failed and
/// why, and the pixels.
pub(crate) struct Decoded {
    pub ok: Vec<usize>,
    pub failed: Vec<(usize, String)>,
    pixels: Pixels,
}

enum Pixels {
    /// Normalized `[N, 3, H, W]` floats already on the device (the CPU path).
    Ready(Option<Tensor>),
    /// Groups of same-size uint8 images (`[n, h, w, 3]` bytes each) to resize on the device,
    /// then rows the CPU already resized and normalized (augmented items).
    Raw {
        groups: Vec<Group>,
        floats: Vec<f32>,
        float_rows: usize,
    },
}

struct Group {
    width: u32,
    height: u32,
    count: usize,
    bytes: Vec<u8>,
}

/// Whether batches for `device` are resized there: on any GPU, unless `LATHE_DEVICE_RESIZE=off`
/// asks for the CPU path (to compare the two, or to rule the device path out).
pub(crate) fn resize_on(device: &Device) -> bool {
    !device.is_cpu() && std::env::var("LATHE_DEVICE_RESIZE").map_or(true, |v| v != "off")
}

/// Decodes `chunk` in parallel. With `on_device`, un-augmented images stay uint8 at their own
/// size; otherwise every image is resized and normalized here and the batch copied to `device`.
pub(crate) fn decode_batch(
    pre: &Preprocessing,
    items: &[Item],
    chunk: &[usize],
    seed: u64,
    device: &Device,
    on_device: bool,
) -> Result<Decoded> {
    if !on_device {
        return decode_on_cpu(pre, items, chunk, seed, device);
    }
    let loaded: Vec<_> = chunk
        .par_iter()
        .map(|&i| -> std::result::Result<Loaded, String> {
            let item = &items[i];
            if item.augmentation.is_some() {
                return load_item(pre, item, seed).map(Loaded::Floats);
            }
            let rgb = load_rgb(item)?;
            if device_resize::exact(pre, rgb.width(), rgb.height()) {
                Ok(Loaded::Rgb(rgb))
            } else {
                let resized = image_decode::resize(&rgb, pre.width, pre.height)?;
                Ok(Loaded::Floats(pre.normalize(&resized)))
            }
        })
        .collect();
    let (mut failed, mut floats, mut float_ids) = (Vec::new(), Vec::new(), Vec::new());
    let mut groups: Vec<Group> = Vec::new();
    let mut group_ids: Vec<Vec<usize>> = Vec::new();
    for (&i, r) in chunk.iter().zip(loaded) {
        match r {
            Ok(Loaded::Rgb(rgb)) => {
                let (width, height) = rgb.dimensions();
                let g = match groups
                    .iter()
                    .position(|g| (g.width, g.height) == (width, height))
                {
                    Some(g) => g,
                    None => {
                        groups.push(Group {
                            width,
                            height,
                            count: 0,
                            bytes: Vec::new(),
                        });
                        group_ids.push(Vec::new());
                        groups.len() - 1
                    }
                };
                groups[g].bytes.extend_from_slice(rgb.as_raw());
                groups[g].count += 1;
                group_ids[g].push(i);
            }
            Ok(Loaded::Floats(x)) => {
                floats.extend_from_slice(&x);
                float_ids.push(i);
            }
            Err(reason) => failed.push((i, reason)),
        }
    }
    let float_rows = float_ids.len();
    let ok = group_ids.into_iter().flatten().chain(float_ids).collect();
    Ok(Decoded {
        ok,
        failed,
        pixels: Pixels::Raw {
            groups,
            floats,
            float_rows,
        },
    })
}

impl Decoded {
    /// The batch as normalized `[N, 3, H, W]` floats on `device` (`None` when nothing decoded).
    /// `resizers` keeps each source size's weights on the device between batches.
    pub(crate) fn into_tensor(
        self,
        pre: &Preprocessing,
        device: &Device,
        resizers: &mut HashMap<(u32, u32), Option<DeviceResize>>,
    ) -> Result<Option<Tensor>> {
        let (groups, floats, float_rows) = match self.pixels {
            Pixels::Ready(x) => return Ok(x),
            Pixels::Raw {
                groups,
                floats,
                float_rows,
            } => (groups, floats, float_rows),
        };
        let (h, w) = (pre.height as usize, pre.width as usize);
        let mut parts = Vec::with_capacity(groups.len() + 1);
        for g in groups {
            // Photos come in many sizes: keep the weights of at most a few dozen on the device.
            if resizers.len() >= MAX_KEPT_SIZES && !resizers.contains_key(&(g.width, g.height)) {
                resizers.clear();
            }
            let resize = match resizers.entry((g.width, g.height)) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(DeviceResize::new(pre, g.width, g.height, device)?)
                }
            };
            let x = match resize {
                Some(r) => {
                    let shape = (g.count, g.height as usize, g.width as usize, 3);
                    r.apply(&Tensor::from_vec(g.bytes, shape, device)?)?
                }
                // Sizes the device cannot do exactly (never for what `exact` admits): the CPU.
                None => {
                    let size = g.width as usize * g.height as usize * 3;
                    let mut rows = Vec::with_capacity(g.count * 3 * h * w);
                    for raw in g.bytes.chunks(size) {
                        let rgb = RgbImage::from_raw(g.width, g.height, raw.to_vec())
                            .ok_or_else(|| candle_core::Error::Msg("image buffer size".into()))?;
                        let resized = image_decode::resize(&rgb, pre.width, pre.height)
                            .map_err(candle_core::Error::Msg)?;
                        rows.extend(pre.normalize(&resized));
                    }
                    Tensor::from_vec(rows, (g.count, 3, h, w), device)?
                }
            };
            parts.push(x);
        }
        if float_rows > 0 {
            parts.push(Tensor::from_vec(floats, (float_rows, 3, h, w), device)?);
        }
        Ok(match parts.len() {
            0 => None,
            1 => parts.pop(),
            _ => Some(Tensor::cat(&parts, 0)?),
        })
    }
}

enum Loaded {
    Rgb(RgbImage),
    Floats(Vec<f32>),
}

/// The CPU path: every image resized, augmented and normalized here, one copy to the device.
fn decode_on_cpu(
    pre: &Preprocessing,
    items: &[Item],
    chunk: &[usize],
    seed: u64,
    device: &Device,
) -> Result<Decoded> {
    let decoded: Vec<_> = chunk
        .par_iter()
        .map(|&i| load_item(pre, &items[i], seed))
        .collect();
    let pixels = 3 * pre.height as usize * pre.width as usize;
    let (mut ok, mut failed) = (Vec::new(), Vec::new());
    let mut rows = Vec::with_capacity(chunk.len() * pixels);
    for (&i, r) in chunk.iter().zip(decoded) {
        match r {
            Ok(x) => {
                rows.extend_from_slice(&x);
                ok.push(i);
            }
            Err(reason) => failed.push((i, reason)),
        }
    }
    let x = if ok.is_empty() {
        None
    } else {
        let shape = (ok.len(), 3, pre.height as usize, pre.width as usize);
        Some(Tensor::from_vec(rows, shape, device)?)
    };
    Ok(Decoded {
        ok,
        failed,
        pixels: Pixels::Ready(x),
    })
}

fn load_rgb(item: &Item) -> std::result::Result<RgbImage, String> {
    let bytes = std::fs::read(&item.file.path).map_err(|e| format!("cannot read image ({e})"))?;
    image_decode::decode_rgb(&bytes)
}

/// Reads, decodes, resizes, optionally augments and normalizes one item.
fn load_item(pre: &Preprocessing, item: &Item, seed: u64) -> std::result::Result<Vec<f32>, String> {
    let resized = image_decode::resize(&load_rgb(item)?, pre.width, pre.height)?;
    let img = match item.augmentation {
        Some(a) => a.apply(&resized, seed, &item.file.hash),
        None => resized,
    };
    Ok(pre.normalize(&img))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::data::augment::Augmentation;
    use crate::data::image_folder::LabeledFile;
    use crate::templates::image::classifier::Part;

    fn png(dir: &std::path::Path, name: &str, w: u32, h: u32, seed: u32) -> LabeledFile {
        let img = RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([
                ((x * 37 + y * 11 + seed) % 256) as u8,
                ((x * y + seed * 3) % 256) as u8,
                ((x + 5 * y + seed * 7) % 256) as u8,
            ])
        });
        let path = dir.join(name);
        img.save(&path).unwrap();
        let mut hash = [0u8; 32];
        hash[0] = seed as u8;
        LabeledFile {
            path,
            label: 0,
            hash,
        }
    }

    /// The device path (run here on the CPU device) gives the CPU path's rows for every item,
    /// whatever the mix of sizes, augmented items and unreadable files, in its own row order.
    #[test]
    fn resizing_on_the_device_gives_the_cpu_rows_for_mixed_batches() {
        let dir = tempfile::tempdir().unwrap();
        let mut files = vec![
            png(dir.path(), "a.png", 28, 28, 1),
            png(dir.path(), "b.png", 40, 30, 2),
            png(dir.path(), "c.png", 28, 28, 3),
            png(dir.path(), "d.png", 300, 200, 4),
            png(dir.path(), "e.png", 40, 30, 5),
        ];
        let broken = dir.path().join("broken.png");
        std::fs::write(&broken, b"not a png").unwrap();
        files.push(LabeledFile {
            path: broken,
            label: 0,
            hash: [9; 32],
        });
        let mut items: Vec<Item> = files
            .iter()
            .map(|file| Item {
                file,
                part: Part::Train,
                augmentation: None,
            })
            .collect();
        items.push(Item {
            file: &files[1],
            part: Part::Train,
            augmentation: Some(Augmentation::Flip),
        });
        let pre = Preprocessing::imagenet(32);
        let chunk: Vec<usize> = (0..items.len()).collect();
        let device = Device::Cpu;
        let mut resizers = HashMap::new();
        let rows = |on_device: bool, resizers: &mut HashMap<_, _>| {
            let d = decode_batch(&pre, &items, &chunk, 7, &device, on_device).unwrap();
            let (ok, failed) = (d.ok.clone(), d.failed.clone());
            let x = d.into_tensor(&pre, &device, resizers).unwrap().unwrap();
            let x = x.flatten_from(1).unwrap().to_vec2::<f32>().unwrap();
            let by_item: HashMap<usize, Vec<f32>> = ok.into_iter().zip(x).collect();
            (by_item, failed)
        };
        let (cpu, cpu_failed) = rows(false, &mut resizers);
        let (dev, dev_failed) = rows(true, &mut resizers);
        assert_eq!(cpu_failed.len(), 1);
        assert_eq!(dev_failed.len(), 1);
        assert_eq!(dev_failed[0].0, 5);
        assert_eq!(cpu.len(), 6);
        assert_eq!(dev.len(), 6);
        for (i, want) in &cpu {
            let got = &dev[i];
            let d = got
                .iter()
                .zip(want)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(d < 1e-5, "item {i}: max |Δ| {d}");
        }
        // Three source sizes were resized on the device; their weights are kept for later batches.
        assert_eq!(resizers.len(), 3);
    }
}
