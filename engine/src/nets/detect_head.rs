//! The object detector's head: an anchor-free, CenterNet-style ("Objects as Points") head on the
//! MobileNetV2 backbone, with its target assignment, loss and decoding.
//!
//! Why this head: an anchor-free centre heatmap needs no anchor sizes tuned to the data (Turi
//! Create's YOLO grid needs anchor clustering and an objectness/class/box loss balance that is
//! easy to get wrong on small datasets), its target assignment is one cell per object plus a
//! Gaussian that softens the negatives around it, and its decoding is a 3×3 local-maximum test —
//! all of it small enough to unit-test by hand. The price is one object per cell of the output
//! grid (stride 16), which is harmless for the objects a template like this is used on.
//!
//! Layout: the backbone's stride-16 map (`features.13`, 96 channels) is concatenated with its
//! stride-32 map (`features.17`, 320 channels) upsampled ×2; then a 1×1 conv and two 3×3 convs
//! (ReLU, `head_channels` wide) feed two 1×1 outputs: `heatmap` (one logit per class and cell)
//! and `box` (centre offset dx, dy within the cell, and ln(width/stride), ln(height/stride)).
//! Parameters have PyTorch names (`head.reduce.weight`, …) so the safetensors load in Python.

use crate::data::annotations::{ObjectBox, Rect};
use crate::data::boxes::{Detection, nms};
use candle_core::{DType, Device, Result, Tensor, Var};
use rand::{Rng, SeedableRng};
use std::collections::HashMap;

/// Backbone blocks the head reads: `features.13` (stride 16) and `features.17` (stride 32).
pub const TAPS: [usize; 2] = [13, 17];
/// Channels of those blocks' outputs.
pub const TAP_CHANNELS: [usize; 2] = [96, 320];
/// Output stride of the head (pixels of model input per grid cell).
pub const STRIDE: usize = 16;
/// Input sizes must be a multiple of this (the stride-32 map is upsampled ×2 onto stride 16).
pub const SIZE_MULTIPLE: u32 = 32;
/// Initial heatmap bias: sigmoid(-2.19) ≈ 0.1, as in CenterNet and focal-loss detectors.
const HEATMAP_PRIOR_BIAS: f32 = -2.19;
/// Overlap CenterNet's Gaussian radius keeps between a box and one shifted by the radius.
const MIN_OVERLAP: f32 = 0.7;

struct Conv {
    name: &'static str,
    weight: Var,
    bias: Var,
    padding: usize,
}

impl Conv {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = x.conv2d(self.weight.as_tensor(), self.padding, 1, 1, 1)?;
        let b = self.bias.as_tensor().reshape((1, (), 1, 1))?;
        y.broadcast_add(&b)
    }
}

/// The detection head's layers.
pub struct DetectHead {
    pub num_classes: usize,
    pub channels: usize,
    layers: Vec<Conv>,
}

/// Layer names, kernel sizes and shapes (out, in) of a head.
fn layout(num_classes: usize, channels: usize) -> [(&'static str, usize, usize, usize); 5] {
    let input = TAP_CHANNELS[0] + TAP_CHANNELS[1];
    [
        ("head.reduce", 1, channels, input),
        ("head.conv1", 3, channels, channels),
        ("head.conv2", 3, channels, channels),
        ("head.heatmap", 1, num_classes, channels),
        ("head.box", 1, 4, channels),
    ]
}

impl DetectHead {
    /// A freshly initialized head (uniform Kaiming weights from `seed`).
    pub fn new(num_classes: usize, channels: usize, seed: u64, device: &Device) -> Result<Self> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ 0x00DE_7EC7);
        let mut layers = Vec::new();
        for (name, k, out, inp) in layout(num_classes, channels) {
            let fan_in = (inp * k * k) as f32;
            let bound = match name {
                "head.heatmap" | "head.box" => 0.01,
                _ => (6.0 / fan_in).sqrt(),
            };
            let w: Vec<f32> = (0..out * inp * k * k)
                .map(|_| rng.random_range(-bound..bound))
                .collect();
            let b = if name == "head.heatmap" {
                vec![HEATMAP_PRIOR_BIAS; out]
            } else {
                vec![0f32; out]
            };
            layers.push(Conv {
                name,
                weight: Var::from_tensor(&Tensor::from_vec(w, (out, inp, k, k), device)?)?,
                bias: Var::from_tensor(&Tensor::from_vec(b, out, device)?)?,
                padding: (k - 1) / 2,
            });
        }
        Ok(Self {
            num_classes,
            channels,
            layers,
        })
    }

    /// A head from named tensors (an exported model or a checkpoint).
    pub fn from_tensors(
        tensors: &HashMap<String, Tensor>,
        num_classes: usize,
        channels: usize,
    ) -> Result<Self> {
        let mut layers = Vec::new();
        for (name, k, out, inp) in layout(num_classes, channels) {
            let get = |suffix: &str| {
                tensors
                    .get(&format!("{name}.{suffix}"))
                    .cloned()
                    .ok_or_else(|| candle_core::Error::Msg(format!("no tensor `{name}.{suffix}`")))
            };
            let w = get("weight")?.to_dtype(DType::F32)?;
            if w.dims() != [out, inp, k, k] {
                candle_core::bail!(
                    "`{name}.weight` has shape {:?}, expected {:?}",
                    w.dims(),
                    [out, inp, k, k]
                );
            }
            layers.push(Conv {
                name,
                weight: Var::from_tensor(&w)?,
                bias: Var::from_tensor(&get("bias")?.to_dtype(DType::F32)?)?,
                padding: (k - 1) / 2,
            });
        }
        Ok(Self {
            num_classes,
            channels,
            layers,
        })
    }

    /// `(heatmap logits [N, C, H, W], box [N, 4, H, W])` from the two backbone maps.
    pub fn forward(&self, s16: &Tensor, s32: &Tensor) -> Result<(Tensor, Tensor)> {
        let (_, _, h, w) = s16.dims4()?;
        let up = s32.upsample_nearest2d(h, w)?;
        let mut y = Tensor::cat(&[s16, &up], 1)?;
        for conv in self.layers.iter().take(3) {
            y = conv.forward(&y)?.relu()?;
        }
        let (Some(heat), Some(boxes)) = (self.layers.get(3), self.layers.get(4)) else {
            candle_core::bail!("detection head is incomplete");
        };
        Ok((heat.forward(&y)?, boxes.forward(&y)?))
    }

    pub fn vars(&self) -> Vec<Var> {
        self.layers
            .iter()
            .flat_map(|l| [l.weight.clone(), l.bias.clone()])
            .collect()
    }

    /// Parameters with their names.
    pub fn state_dict(&self) -> Vec<(String, Tensor)> {
        self.layers
            .iter()
            .flat_map(|l| {
                [
                    (format!("{}.weight", l.name), l.weight.as_tensor().clone()),
                    (format!("{}.bias", l.name), l.bias.as_tensor().clone()),
                ]
            })
            .collect()
    }
}

/// Dense training targets of a batch, laid out like the head's outputs.
#[derive(Clone, Debug, PartialEq)]
pub struct Targets {
    pub batch: usize,
    pub num_classes: usize,
    pub grid_h: usize,
    pub grid_w: usize,
    /// `[N, C, H, W]`: 1 at each object's centre cell, a Gaussian around it, 0 elsewhere.
    pub heatmap: Vec<f32>,
    /// `[N, 4, H, W]`: dx, dy, ln(w/stride), ln(h/stride) at centre cells.
    pub boxes: Vec<f32>,
    /// `[N, 1, H, W]`: 1 at centre cells.
    pub mask: Vec<f32>,
    pub num_objects: usize,
}

/// CenterNet's Gaussian radius (in cells) for a `h`×`w` box (in cells): the largest shift of a
/// corner that keeps IoU ≥ [`MIN_OVERLAP`] with the true box (CenterNet's formula, as used by
/// its reference code).
pub fn gaussian_radius(h: f32, w: f32) -> f32 {
    let o = MIN_OVERLAP;
    let solve = |a: f32, b: f32, c: f32| (b + (b * b - 4.0 * a * c).max(0.0).sqrt()) / 2.0;
    let r1 = solve(1.0, h + w, w * h * (1.0 - o) / (1.0 + o));
    let r2 = solve(4.0, 2.0 * (h + w), (1.0 - o) * w * h);
    let r3 = solve(4.0 * o, -2.0 * o * (h + w), (o - 1.0) * w * h);
    r1.min(r2).min(r3)
}

/// Assigns each box (in model-input pixels) of each image to the grid cell holding its centre.
/// Two objects on one cell: the later one's box targets win, the heatmap keeps both peaks' max.
pub fn build_targets(
    objects: &[Vec<ObjectBox>],
    num_classes: usize,
    grid_h: usize,
    grid_w: usize,
    stride: usize,
) -> Targets {
    let n = objects.len();
    let plane = grid_h * grid_w;
    let mut t = Targets {
        batch: n,
        num_classes,
        grid_h,
        grid_w,
        heatmap: vec![0.0; n * num_classes * plane],
        boxes: vec![0.0; n * 4 * plane],
        mask: vec![0.0; n * plane],
        num_objects: 0,
    };
    let s = stride as f32;
    for (b, image) in objects.iter().enumerate() {
        for o in image {
            if o.label >= num_classes || o.rect.width <= 0.0 || o.rect.height <= 0.0 {
                continue;
            }
            let (cx, cy) = o.rect.center();
            let (gx, gy) = (cx / s, cy / s);
            if !(gx >= 0.0 && gy >= 0.0) {
                continue;
            }
            let (j, i) = (gx.floor() as usize, gy.floor() as usize);
            if j >= grid_w || i >= grid_h {
                continue;
            }
            let radius = gaussian_radius(o.rect.height / s, o.rect.width / s)
                .floor()
                .max(0.0) as i64;
            let sigma = (2 * radius + 1) as f32 / 6.0;
            let base = (b * num_classes + o.label) * plane;
            for di in -radius..=radius {
                for dj in -radius..=radius {
                    let (y, x) = (i as i64 + di, j as i64 + dj);
                    if y < 0 || x < 0 || y >= grid_h as i64 || x >= grid_w as i64 {
                        continue;
                    }
                    let g = (-((di * di + dj * dj) as f32) / (2.0 * sigma * sigma)).exp();
                    let k = base + y as usize * grid_w + x as usize;
                    if let Some(v) = t.heatmap.get_mut(k) {
                        *v = v.max(g);
                    }
                }
            }
            let cell = i * grid_w + j;
            if let Some(v) = t.heatmap.get_mut(base + cell) {
                *v = 1.0;
            }
            let values = [
                gx - j as f32,
                gy - i as f32,
                (o.rect.width / s).ln(),
                (o.rect.height / s).ln(),
            ];
            for (k, v) in values.into_iter().enumerate() {
                if let Some(slot) = t.boxes.get_mut((b * 4 + k) * plane + cell) {
                    *slot = v;
                }
            }
            if let Some(m) = t.mask.get_mut(b * plane + cell) {
                if *m == 0.0 {
                    t.num_objects += 1;
                }
                *m = 1.0;
            }
        }
    }
    t
}

/// The loss of a batch and its parts.
pub struct Loss {
    pub total: Tensor,
    pub heatmap: f64,
    pub boxes: f64,
}

/// CenterNet's loss: penalty-reduced focal loss on the heatmap (α = 2, β = 4) plus L1 on the
/// box channels at centre cells, both divided by the number of objects.
pub fn loss(heat_logits: &Tensor, box_pred: &Tensor, t: &Targets) -> Result<Loss> {
    let device = heat_logits.device();
    let shape_h = (t.batch, t.num_classes, t.grid_h, t.grid_w);
    let pos: Vec<f32> = t.heatmap.iter().map(|&v| f32::from(v >= 1.0)).collect();
    let neg_weight: Vec<f32> = t
        .heatmap
        .iter()
        .map(|&v| if v >= 1.0 { 0.0 } else { (1.0 - v).powi(4) })
        .collect();
    let pos = Tensor::from_vec(pos, shape_h, device)?;
    let neg_weight = Tensor::from_vec(neg_weight, shape_h, device)?;
    let p = candle_nn::ops::sigmoid(&heat_logits.clamp(-9.2f32, 9.2f32)?)?;
    let one_minus = p.affine(-1.0, 1.0)?;
    let pos_loss = (p.log()? * one_minus.sqr()?)?.mul(&pos)?.sum_all()?;
    let neg_loss = (one_minus.log()? * p.sqr()?)?.mul(&neg_weight)?.sum_all()?;
    let norm = t.num_objects.max(1) as f64;
    let heat = ((pos_loss + neg_loss)?.neg()? / norm)?;
    let mask = Tensor::from_vec(t.mask.clone(), (t.batch, 1, t.grid_h, t.grid_w), device)?;
    let target = Tensor::from_vec(t.boxes.clone(), (t.batch, 4, t.grid_h, t.grid_w), device)?;
    let l1 = (box_pred - target)?
        .abs()?
        .broadcast_mul(&mask)?
        .sum_all()?;
    let boxes = (l1 / norm)?;
    let heatmap = heat.to_dtype(DType::F64)?.to_scalar::<f64>()?;
    let box_value = boxes.to_dtype(DType::F64)?.to_scalar::<f64>()?;
    Ok(Loss {
        total: (heat + boxes)?,
        heatmap,
        boxes: box_value,
    })
}

/// How raw outputs become boxes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DecodeConfig {
    /// Lowest class probability kept.
    pub confidence_threshold: f32,
    /// Same-class boxes overlapping a better one by more than this are dropped.
    pub iou_threshold: f32,
    /// Most boxes per image.
    pub max_detections: usize,
}

/// Boxes of one image from its heatmap probabilities `[C, H, W]` and box channels `[4, H, W]`:
/// cells that beat the threshold and are the maximum of their 3×3 neighbourhood, then per-class
/// NMS. Boxes are in model-input pixels.
pub fn decode(
    heat: &[f32],
    boxes: &[f32],
    num_classes: usize,
    grid_h: usize,
    grid_w: usize,
    stride: usize,
    cfg: &DecodeConfig,
) -> Vec<Detection> {
    let plane = grid_h * grid_w;
    let s = stride as f32;
    let at =
        |c: usize, y: usize, x: usize| heat.get(c * plane + y * grid_w + x).copied().unwrap_or(0.0);
    let mut out = Vec::new();
    for c in 0..num_classes {
        for y in 0..grid_h {
            for x in 0..grid_w {
                let p = at(c, y, x);
                if p < cfg.confidence_threshold {
                    continue;
                }
                let mut peak = true;
                'n: for ny in y.saturating_sub(1)..=(y + 1).min(grid_h - 1) {
                    for nx in x.saturating_sub(1)..=(x + 1).min(grid_w - 1) {
                        if (ny, nx) != (y, x) && at(c, ny, nx) > p {
                            peak = false;
                            break 'n;
                        }
                    }
                }
                if !peak {
                    continue;
                }
                let b = |k: usize| {
                    boxes
                        .get(k * plane + y * grid_w + x)
                        .copied()
                        .unwrap_or(0.0)
                };
                let cx = (x as f32 + b(0)) * s;
                let cy = (y as f32 + b(1)) * s;
                let w = b(2).clamp(-6.0, 6.0).exp() * s;
                let h = b(3).clamp(-6.0, 6.0).exp() * s;
                out.push(Detection {
                    label: c,
                    score: p,
                    rect: Rect::from_center(cx, cy, w, h),
                });
            }
        }
    }
    out.sort_by(|a, b| b.score.total_cmp(&a.score));
    out.truncate(cfg.max_detections.max(1) * 4);
    let mut kept = nms(out, cfg.iou_threshold);
    kept.truncate(cfg.max_detections.max(1));
    kept
}

/// Every cell's box before thresholds and NMS — what an exported model hands to its
/// non-maximum suppression (the Core ML export computes the same numbers).
#[derive(Clone, Debug, PartialEq)]
pub struct RawBoxes {
    pub num_classes: usize,
    /// `[cells, num_classes]`, cells row-major: the class probability where the cell is a peak
    /// of that class (no 3×3 neighbour is higher), else 0.
    pub confidence: Vec<f32>,
    /// `[cells, num_classes]`: the class probability of every cell, peak or not (for checks:
    /// how close a neighbour came to taking the peak).
    pub probability: Vec<f32>,
    /// `[cells, 4]`: centre x, centre y, width, height relative to the model input (0–1).
    pub coordinates: Vec<f32>,
}

/// [`RawBoxes`] of one image from its heatmap probabilities `[C, H, W]` and box channels
/// `[4, H, W]`: [`decode`] keeps exactly the entries at or above its threshold (then NMS).
pub fn raw_boxes(
    heat: &[f32],
    boxes: &[f32],
    num_classes: usize,
    grid_h: usize,
    grid_w: usize,
) -> RawBoxes {
    let plane = grid_h * grid_w;
    let at =
        |c: usize, y: usize, x: usize| heat.get(c * plane + y * grid_w + x).copied().unwrap_or(0.0);
    let b = |k: usize, cell: usize| boxes.get(k * plane + cell).copied().unwrap_or(0.0);
    let mut confidence = Vec::with_capacity(plane * num_classes);
    let mut probability = Vec::with_capacity(plane * num_classes);
    let mut coordinates = Vec::with_capacity(plane * 4);
    for y in 0..grid_h {
        for x in 0..grid_w {
            for c in 0..num_classes {
                let p = at(c, y, x);
                let mut peak = true;
                for ny in y.saturating_sub(1)..=(y + 1).min(grid_h - 1) {
                    for nx in x.saturating_sub(1)..=(x + 1).min(grid_w - 1) {
                        peak &= at(c, ny, nx) <= p;
                    }
                }
                confidence.push(if peak { p } else { 0.0 });
                probability.push(p);
            }
            let cell = y * grid_w + x;
            let (gw, gh) = (grid_w as f32, grid_h as f32);
            coordinates.extend([
                (x as f32 + b(0, cell)) / gw,
                (y as f32 + b(1, cell)) / gh,
                b(2, cell).clamp(-6.0, 6.0).exp() / gw,
                b(3, cell).clamp(-6.0, 6.0).exp() / gh,
            ]);
        }
    }
    RawBoxes {
        num_classes,
        confidence,
        probability,
        coordinates,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(label: usize, cx: f32, cy: f32, w: f32, h: f32) -> ObjectBox {
        ObjectBox {
            label,
            rect: Rect::from_center(cx, cy, w, h),
        }
    }

    #[test]
    fn targets_put_one_peak_per_object_at_its_centre_cell() {
        // 64×64 input, stride 16 → 4×4 grid. Centre (40, 24) → cell x 2, y 1, offsets .5, .5.
        let t = build_targets(&[vec![obj(1, 40.0, 24.0, 32.0, 16.0)]], 2, 4, 4, 16);
        assert_eq!(t.num_objects, 1);
        let plane = 16;
        let cell = 4 + 2;
        assert_eq!(t.heatmap[plane + cell], 1.0);
        // Class 0 untouched.
        assert!(t.heatmap[..plane].iter().all(|&v| v == 0.0));
        assert_eq!(t.mask[cell], 1.0);
        assert_eq!(t.mask.iter().sum::<f32>(), 1.0);
        assert!((t.boxes[cell] - 0.5).abs() < 1e-6);
        assert!((t.boxes[plane + cell] - 0.5).abs() < 1e-6);
        assert!((t.boxes[2 * plane + cell] - 2f32.ln()).abs() < 1e-6);
        assert!((t.boxes[3 * plane + cell] - 0.0).abs() < 1e-6);
        // Exactly one cell of the class heatmap is 1; neighbours (if any) are in (0, 1).
        assert_eq!(t.heatmap.iter().filter(|&&v| v == 1.0).count(), 1);
        assert!(t.heatmap.iter().all(|&v| (0.0..=1.0).contains(&v)));
    }

    #[test]
    fn big_objects_get_a_gaussian_and_outside_centres_are_ignored() {
        // An 8×8-cell object: radius > 1, so the next cell gets a value in (0, 1).
        let r = gaussian_radius(8.0, 8.0);
        assert!(r > 1.0, "radius {r}");
        let t = build_targets(
            &[vec![
                obj(0, 72.0, 72.0, 128.0, 128.0),
                obj(0, 500.0, 8.0, 10.0, 10.0),
            ]],
            1,
            10,
            10,
            16,
        );
        assert_eq!(t.num_objects, 1);
        let v = t.heatmap[4 * 10 + 5];
        assert!(v > 0.0 && v < 1.0, "neighbour {v}");
        assert_eq!(t.heatmap[4 * 10 + 4], 1.0);
    }

    #[test]
    fn decode_inverts_targets() {
        let objects = vec![
            obj(0, 40.0, 24.0, 32.0, 16.0),
            obj(1, 100.0, 100.0, 50.0, 70.0),
        ];
        let t = build_targets(std::slice::from_ref(&objects), 2, 8, 8, 16);
        let cfg = DecodeConfig {
            confidence_threshold: 0.5,
            iou_threshold: 0.5,
            max_detections: 10,
        };
        let dets = decode(&t.heatmap, &t.boxes, 2, 8, 8, 16, &cfg);
        assert_eq!(dets.len(), 2);
        for o in &objects {
            let d = dets.iter().find(|d| d.label == o.label).unwrap();
            assert!(
                crate::data::boxes::iou(&d.rect, &o.rect) > 0.999,
                "{d:?} vs {o:?}"
            );
            assert_eq!(d.score, 1.0);
        }
    }

    #[test]
    fn decode_keeps_local_maxima_above_threshold_only() {
        // 1 class, 3×3 grid: a peak 0.9 at the centre with 0.8 next to it, 0.4 in a corner.
        let mut heat = vec![0.0; 9];
        heat[4] = 0.9;
        heat[5] = 0.8;
        heat[0] = 0.4;
        let boxes = vec![0.0; 36];
        let cfg = DecodeConfig {
            confidence_threshold: 0.3,
            iou_threshold: 0.5,
            max_detections: 10,
        };
        let dets = decode(&heat, &boxes, 1, 3, 3, 16, &cfg);
        assert_eq!(dets.len(), 1);
        assert_eq!(dets[0].score, 0.9);
        // Centre of cell (1,1) with zero offset is its top-left corner: (16, 16); size 16×16.
        assert_eq!(dets[0].rect, Rect::from_center(16.0, 16.0, 16.0, 16.0));
        let cfg = DecodeConfig {
            confidence_threshold: 0.95,
            ..cfg
        };
        assert!(decode(&heat, &boxes, 1, 3, 3, 16, &cfg).is_empty());
    }

    #[test]
    fn loss_is_lower_for_the_right_answer_and_head_shapes_fit() {
        let dev = Device::Cpu;
        let t = build_targets(&[vec![obj(0, 24.0, 24.0, 16.0, 16.0)]], 2, 4, 4, 16);
        let shape = (1, 2, 4, 4);
        let good_logits: Vec<f32> = t
            .heatmap
            .iter()
            .map(|&v| if v >= 1.0 { 6.0 } else { -6.0 })
            .collect();
        let good = Tensor::from_vec(good_logits, shape, &dev).unwrap();
        let bad = Tensor::zeros(shape, DType::F32, &dev).unwrap();
        let box_good = Tensor::from_vec(t.boxes.clone(), (1, 4, 4, 4), &dev).unwrap();
        let box_bad = Tensor::ones((1, 4, 4, 4), DType::F32, &dev).unwrap();
        let lg = loss(&good, &box_good, &t).unwrap();
        let lb = loss(&bad, &box_bad, &t).unwrap();
        assert!(
            lg.heatmap < 0.01 && lg.boxes.abs() < 1e-6,
            "{} {}",
            lg.heatmap,
            lg.boxes
        );
        assert!(lb.heatmap > 1.0 && lb.boxes > 0.5);
        let head = DetectHead::new(2, 8, 1, &dev).unwrap();
        let s16 = Tensor::zeros((1, 96, 4, 4), DType::F32, &dev).unwrap();
        let s32 = Tensor::zeros((1, 320, 2, 2), DType::F32, &dev).unwrap();
        let (h, b) = head.forward(&s16, &s32).unwrap();
        assert_eq!(h.dims(), [1, 2, 4, 4]);
        assert_eq!(b.dims(), [1, 4, 4, 4]);
        let named: HashMap<String, Tensor> = head.state_dict().into_iter().collect();
        assert!(DetectHead::from_tensors(&named, 2, 8).is_ok());
        assert!(DetectHead::from_tensors(&named, 3, 8).is_err());
    }

    #[test]
    fn raw_boxes_hold_exactly_what_decode_keeps() {
        // 2 classes, 4×5 grid: class 0 peaks at (1, 1) with a tie at (1, 2); class 1 at (3, 4).
        let (gh, gw) = (4, 5);
        let plane = gh * gw;
        let mut heat = vec![0.05f32; 2 * plane];
        heat[gw + 1] = 0.9;
        heat[gw + 2] = 0.9;
        heat[gw + 3] = 0.6;
        heat[plane + 3 * gw + 4] = 0.7;
        let boxes: Vec<f32> = (0..4 * plane).map(|i| (i % 7) as f32 * 0.1 - 0.2).collect();
        let raw = raw_boxes(&heat, &boxes, 2, gh, gw);
        assert_eq!(raw.confidence.len(), plane * 2);
        assert_eq!(raw.coordinates.len(), plane * 4);
        let cfg = DecodeConfig {
            confidence_threshold: 0.5,
            iou_threshold: 1.0,
            max_detections: 100,
        };
        let dets = decode(&heat, &boxes, 2, gh, gw, 16, &cfg);
        let kept: Vec<(usize, usize)> = (0..plane)
            .flat_map(|cell| (0..2).map(move |c| (cell, c)))
            .filter(|&(cell, c)| raw.confidence[cell * 2 + c] >= 0.5)
            .collect();
        assert_eq!(kept, vec![(gw + 1, 0), (gw + 2, 0), (3 * gw + 4, 1)]);
        assert_eq!(dets.len(), kept.len());
        let size = (gw * 16) as f32;
        for d in &dets {
            let (cx, cy) = d.rect.center();
            let found = kept.iter().any(|&(k, c)| {
                let r = &raw.coordinates[k * 4..k * 4 + 4];
                c == d.label
                    && raw.confidence[k * 2 + c] == d.score
                    && (r[0] * size - cx).abs() < 1e-3
                    && (r[1] * (gh * 16) as f32 - cy).abs() < 1e-3
                    && (r[2] * size - d.rect.width).abs() < 1e-3
                    && (r[3] * (gh * 16) as f32 - d.rect.height).abs() < 1e-3
            });
            assert!(found, "{d:?} not in the raw boxes");
        }
        // The shoulder next to the tie and the flat cells around a peak are 0; a flat cell away
        // from every peak is its own peak.
        assert_eq!(raw.confidence[(gw + 3) * 2], 0.0);
        assert_eq!(raw.confidence[0], 0.0);
        assert_eq!(raw.confidence[3 * gw * 2], 0.05);
    }
}
