//! Boxes as detections: the predicted box, intersection over union and per-class non-maximum
//! suppression — shared by the detector head, box augmentation, the synthetic data generator
//! and the mAP metric.

use crate::data::annotations::Rect;

/// One predicted box.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Detection {
    pub label: usize,
    pub score: f32,
    pub rect: Rect,
}

/// Intersection over union of two boxes (0 when either is empty).
pub fn iou(a: &Rect, b: &Rect) -> f32 {
    let w = (a.right().min(b.right()) - a.x.max(b.x)).max(0.0);
    let h = (a.bottom().min(b.bottom()) - a.y.max(b.y)).max(0.0);
    let inter = w * h;
    let union = a.area() + b.area() - inter;
    if union <= 0.0 { 0.0 } else { inter / union }
}

/// Per-class non-maximum suppression: in score order, keeps a box unless a kept box of the same
/// class overlaps it by more than `iou_threshold`. Returns the kept boxes, best first.
pub fn nms(mut detections: Vec<Detection>, iou_threshold: f32) -> Vec<Detection> {
    detections.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<Detection> = Vec::with_capacity(detections.len());
    for d in detections {
        let suppressed = kept
            .iter()
            .any(|k| k.label == d.label && iou(&k.rect, &d.rect) > iou_threshold);
        if !suppressed {
            kept.push(d);
        }
    }
    kept
}
