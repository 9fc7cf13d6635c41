//! Detection metrics: intersection over union, per-class non-maximum suppression, and COCO-style
//! average precision (101-point interpolated precision/recall, greedy matching of detections in
//! score order to the unmatched ground-truth box of highest IoU) at IoU 0.5 and averaged over
//! IoU 0.50:0.05:0.95. Classes without ground truth are left out of the means, as COCO does.

use crate::data::annotations::{ObjectBox, Rect};
pub use crate::data::boxes::{Detection, iou, nms};
use serde::{Deserialize, Serialize};

/// One image's detections `(score, box)` and ground-truth boxes, of one class.
pub type ClassImage = (Vec<(f32, Rect)>, Vec<Rect>);

/// Average precision of one class at one IoU threshold. `images` pairs each image's detections
/// of the class with its ground-truth boxes of the class. `None` when there is no ground truth.
pub fn average_precision(images: &[ClassImage], iou_threshold: f32) -> Option<f64> {
    let num_truth: usize = images.iter().map(|(_, t)| t.len()).sum();
    if num_truth == 0 {
        return None;
    }
    // (score, image index, box) over all images, best first (stable: ties keep input order).
    let mut all: Vec<(f32, usize, Rect)> = images
        .iter()
        .enumerate()
        .flat_map(|(i, (d, _))| d.iter().map(move |&(s, r)| (s, i, r)))
        .collect();
    all.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut matched: Vec<Vec<bool>> = images.iter().map(|(_, t)| vec![false; t.len()]).collect();
    let mut tp = Vec::with_capacity(all.len());
    for (_, i, r) in &all {
        let (Some((_, truths)), Some(used)) = (images.get(*i), matched.get_mut(*i)) else {
            tp.push(false);
            continue;
        };
        let mut best = None;
        let mut best_iou = iou_threshold;
        for (j, t) in truths.iter().enumerate() {
            if used.get(j).copied().unwrap_or(true) {
                continue;
            }
            let v = iou(r, t);
            if v >= best_iou {
                best_iou = v;
                best = Some(j);
            }
        }
        match best.and_then(|j| used.get_mut(j)) {
            Some(u) => {
                *u = true;
                tp.push(true);
            }
            None => tp.push(false),
        }
    }
    Some(interpolated_ap(&tp, num_truth))
}

/// COCO's 101-point interpolated AP of a ranked list of hits (`true` = true positive).
pub fn interpolated_ap(ranked_hits: &[bool], num_truth: usize) -> f64 {
    if num_truth == 0 {
        return 0.0;
    }
    let mut precision = Vec::with_capacity(ranked_hits.len());
    let mut recall = Vec::with_capacity(ranked_hits.len());
    let mut hits = 0usize;
    for (k, &h) in ranked_hits.iter().enumerate() {
        hits += usize::from(h);
        precision.push(hits as f64 / (k + 1) as f64);
        recall.push(hits as f64 / num_truth as f64);
    }
    // Precision envelope: the best precision at this recall or any higher one.
    for k in (0..precision.len().saturating_sub(1)).rev() {
        let next = precision.get(k + 1).copied().unwrap_or(0.0);
        if let Some(p) = precision.get_mut(k)
            && next > *p
        {
            *p = next;
        }
    }
    let mut sum = 0.0;
    for step in 0..=100 {
        let r = step as f64 / 100.0;
        // First rank whose recall reaches r (recall only grows along the ranking).
        let k = recall.partition_point(|&x| x < r - 1e-12);
        sum += precision.get(k).copied().unwrap_or(0.0);
    }
    sum / 101.0
}

/// Average precision of one class.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassAp {
    pub label: String,
    /// AP at IoU 0.5.
    pub ap50: f64,
    /// AP averaged over IoU 0.50:0.05:0.95.
    pub ap: f64,
    /// Ground-truth boxes of the class.
    pub num_objects: usize,
    /// Detections of the class (after thresholds and NMS).
    pub num_detections: usize,
}

/// The detection report `lathe evaluate --json` prints.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DetectionReport {
    /// Mean over classes of AP at IoU 0.5.
    pub map50: f64,
    /// Mean over classes and IoU 0.50:0.05:0.95 (COCO's mAP).
    pub map: f64,
    pub num_images: usize,
    pub num_objects: usize,
    pub labels: Vec<String>,
    pub per_class: Vec<ClassAp>,
}

impl DetectionReport {
    /// Scores `detections[i]` against `truth[i]` for every image `i`.
    pub fn compute(
        labels: &[String],
        detections: &[Vec<Detection>],
        truth: &[Vec<ObjectBox>],
    ) -> Self {
        let thresholds: Vec<f32> = (0..10).map(|k| 0.5 + 0.05 * k as f32).collect();
        let mut per_class = Vec::new();
        for (c, label) in labels.iter().enumerate() {
            let images: Vec<ClassImage> = detections
                .iter()
                .zip(truth)
                .map(|(d, t)| {
                    (
                        d.iter()
                            .filter(|x| x.label == c)
                            .map(|x| (x.score, x.rect))
                            .collect(),
                        t.iter().filter(|x| x.label == c).map(|x| x.rect).collect(),
                    )
                })
                .collect();
            let num_objects = images.iter().map(|(_, t)| t.len()).sum();
            let num_detections = images.iter().map(|(d, _)| d.len()).sum();
            let aps: Vec<f64> = thresholds
                .iter()
                .filter_map(|&t| average_precision(&images, t))
                .collect();
            if aps.is_empty() {
                continue;
            }
            per_class.push(ClassAp {
                label: label.clone(),
                ap50: aps.first().copied().unwrap_or(0.0),
                ap: aps.iter().sum::<f64>() / aps.len() as f64,
                num_objects,
                num_detections,
            });
        }
        let n = per_class.len().max(1) as f64;
        Self {
            map50: per_class.iter().map(|c| c.ap50).sum::<f64>() / n,
            map: per_class.iter().map(|c| c.ap).sum::<f64>() / n,
            num_images: truth.len(),
            num_objects: truth.iter().map(Vec::len).sum(),
            labels: labels.to_vec(),
            per_class,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(x: f32, y: f32, w: f32, h: f32) -> Rect {
        Rect {
            x,
            y,
            width: w,
            height: h,
        }
    }

    #[test]
    fn iou_by_hand() {
        // 10×10 boxes shifted by 5: intersection 50, union 150.
        assert!((iou(&r(0., 0., 10., 10.), &r(5., 0., 10., 10.)) - 1.0 / 3.0).abs() < 1e-6);
        assert_eq!(iou(&r(0., 0., 10., 10.), &r(0., 0., 10., 10.)), 1.0);
        assert_eq!(iou(&r(0., 0., 10., 10.), &r(20., 20., 5., 5.)), 0.0);
        // Containment: 4×4 inside 8×8 → 16/64.
        assert!((iou(&r(0., 0., 8., 8.), &r(2., 2., 4., 4.)) - 0.25).abs() < 1e-6);
        assert_eq!(iou(&r(0., 0., 0., 10.), &r(0., 0., 0., 10.)), 0.0);
    }

    #[test]
    fn nms_is_per_class_and_keeps_best() {
        let d = |label, score, x| Detection {
            label,
            score,
            rect: r(x, 0., 10., 10.),
        };
        let kept = nms(
            vec![d(0, 0.6, 1.), d(0, 0.9, 0.), d(1, 0.8, 0.), d(0, 0.5, 30.)],
            0.5,
        );
        // 0.6 overlaps 0.9 (IoU 9/11) and goes; class 1 is not suppressed by class 0.
        let scores: Vec<f32> = kept.iter().map(|k| k.score).collect();
        assert_eq!(scores, vec![0.9, 0.8, 0.5]);
        // With a threshold above their IoU both same-class boxes stay.
        assert_eq!(nms(vec![d(0, 0.6, 1.), d(0, 0.9, 0.)], 0.95).len(), 2);
    }

    #[test]
    fn interpolated_ap_by_hand() {
        // Perfect ranking of 2 truths: AP 1.
        assert!((interpolated_ap(&[true, true], 2) - 1.0).abs() < 1e-12);
        // Hits at ranks 1 and 3 of 2 truths: precision 1, 0.5, 2/3 → envelope 1, 2/3, 2/3.
        // Recall 0..=0.5 (51 points) → 1; 0.51..=1 (50 points) → 2/3.
        let expected = (51.0 + 50.0 * 2.0 / 3.0) / 101.0;
        assert!((interpolated_ap(&[true, false, true], 2) - expected).abs() < 1e-12);
        // One of two truths found at rank 1: recall reaches only 0.5 → 51/101.
        assert!((interpolated_ap(&[true], 2) - 51.0 / 101.0).abs() < 1e-12);
        // No hits at all.
        assert_eq!(interpolated_ap(&[false, false], 3), 0.0);
    }

    #[test]
    fn average_precision_matches_each_truth_once() {
        let truth = vec![r(0., 0., 10., 10.)];
        // Two detections of the same object: the second is a false positive.
        let images = vec![(
            vec![(0.9, r(0., 0., 10., 10.)), (0.8, r(1., 0., 10., 10.))],
            truth,
        )];
        assert!((average_precision(&images, 0.5).unwrap() - 1.0).abs() < 1e-12);
        // Score order decides: the duplicate ranked first makes the real one a FP at IoU 0.95.
        let images = vec![(
            vec![(0.7, r(0., 0., 10., 10.)), (0.8, r(1., 0., 10., 10.))],
            vec![r(0., 0., 10., 10.)],
        )];
        // At 0.5 the 0.8 box (IoU 9/11) matches: AP 1; at 0.95 only the 0.7 one does, at rank 2.
        assert!((average_precision(&images, 0.5).unwrap() - 1.0).abs() < 1e-12);
        assert!((average_precision(&images, 0.95).unwrap() - 0.5).abs() < 1e-12);
        assert_eq!(
            average_precision(&[(vec![(0.5, r(0., 0., 1., 1.))], vec![])], 0.5),
            None
        );
    }

    #[test]
    fn report_averages_over_classes_with_truth() {
        let labels = vec!["a".to_string(), "b".to_string(), "c".to_string()];
        let truth = vec![vec![
            ObjectBox {
                label: 0,
                rect: r(0., 0., 10., 10.),
            },
            ObjectBox {
                label: 1,
                rect: r(50., 50., 10., 10.),
            },
        ]];
        // Class a exact; class b missed; class c has no truth (left out).
        let dets = vec![vec![
            Detection {
                label: 0,
                score: 0.9,
                rect: r(0., 0., 10., 10.),
            },
            Detection {
                label: 2,
                score: 0.9,
                rect: r(80., 80., 5., 5.),
            },
        ]];
        let rep = DetectionReport::compute(&labels, &dets, &truth);
        assert_eq!(rep.per_class.len(), 2);
        assert!((rep.map50 - 0.5).abs() < 1e-12);
        assert!((rep.map - 0.5).abs() < 1e-12);
        assert_eq!(rep.num_objects, 2);
    }
}
