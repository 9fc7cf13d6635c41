//! One regression tree of a histogram gradient-boosting model, grown leaf-wise (best gain
//! first) on binned features: per-node gradient/hessian histograms (the larger child by
//! subtraction), numeric splits with a learned direction for missing values, and categorical
//! splits on sets of levels (levels sorted by gradient ratio, as LightGBM does).

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// The bin of a missing numeric value.
pub const MISSING_BIN: u8 = 255;

/// Bins per feature in a histogram (255 value bins + the missing bin).
const BINS: usize = 256;

/// Smoothing added to hessians when ordering categorical levels.
const CAT_SMOOTH: f64 = 10.0;

/// Smallest hessian sum a child may have (as scikit-learn's `min_hessian_to_split`).
const MIN_CHILD_HESSIAN: f64 = 1e-3;

/// Features of a dataset as bins: `bins[feature][row]`.
#[derive(Clone, Debug, Default)]
pub struct Binned {
    pub bins: Vec<Vec<u8>>,
    /// Value bins used per feature (a categorical feature: its number of codes).
    pub num_bins: Vec<usize>,
    pub categorical: Vec<bool>,
    pub num_rows: usize,
}

/// Settings of tree growth.
#[derive(Clone, Debug)]
pub struct TreeParams {
    pub max_leaf_nodes: usize,
    pub min_samples_leaf: usize,
    pub l2_regularization: f64,
    /// 0 = unlimited.
    pub max_depth: usize,
    pub learning_rate: f64,
}

/// A node of a fitted tree. Leaves have `left == right == 0`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Node {
    pub feature: usize,
    /// Numeric split: rows with `value <= threshold` go left (bins `<= bin_threshold`).
    pub threshold: f64,
    pub bin_threshold: u8,
    pub missing_left: bool,
    /// Categorical split: the codes that go left, as a 256-bit set.
    pub categories_left: Option<[u64; 4]>,
    pub left: usize,
    pub right: usize,
    /// A leaf's output (learning rate included).
    pub value: f64,
    pub gain: f64,
    pub count: usize,
}

impl Node {
    pub fn is_leaf(&self) -> bool {
        self.left == 0 && self.right == 0
    }

    fn leaf(value: f64, count: usize) -> Self {
        Self {
            feature: 0,
            threshold: 0.0,
            bin_threshold: 0,
            missing_left: false,
            categories_left: None,
            left: 0,
            right: 0,
            value,
            gain: 0.0,
            count,
        }
    }

    /// Where a binned value goes.
    pub fn bin_goes_left(&self, bin: u8) -> bool {
        match &self.categories_left {
            Some(set) => in_set(set, bin as usize),
            None if bin == MISSING_BIN => self.missing_left,
            None => bin <= self.bin_threshold,
        }
    }

    /// Where a raw value goes (NaN is missing; categorical values are level codes).
    pub fn value_goes_left(&self, x: f64) -> bool {
        match &self.categories_left {
            Some(set) => x >= 0.0 && x < BINS as f64 && in_set(set, x as usize),
            None if x.is_nan() => self.missing_left,
            None => x <= self.threshold,
        }
    }
}

fn in_set(set: &[u64; 4], i: usize) -> bool {
    set.get(i / 64).is_some_and(|w| (w >> (i % 64)) & 1 == 1)
}

/// A fitted tree; node 0 is the root.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Tree {
    pub nodes: Vec<Node>,
}

impl Tree {
    /// The leaf value for raw feature values `row`.
    pub fn predict(&self, row: &[f64]) -> f64 {
        let mut i = 0;
        while let Some(n) = self.nodes.get(i) {
            if n.is_leaf() {
                return n.value;
            }
            let x = row.get(n.feature).copied().unwrap_or(f64::NAN);
            i = if n.value_goes_left(x) {
                n.left
            } else {
                n.right
            };
        }
        0.0
    }

    /// The leaf value for row `r` of binned data.
    pub fn predict_binned(&self, binned: &Binned, r: usize) -> f64 {
        let mut i = 0;
        while let Some(n) = self.nodes.get(i) {
            if n.is_leaf() {
                return n.value;
            }
            let b = binned
                .bins
                .get(n.feature)
                .and_then(|c| c.get(r))
                .copied()
                .unwrap_or(MISSING_BIN);
            i = if n.bin_goes_left(b) { n.left } else { n.right };
        }
        0.0
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct Bin {
    g: f64,
    h: f64,
    n: u32,
}

#[derive(Clone, Copy, Debug, Default)]
struct Sums {
    g: f64,
    h: f64,
    n: usize,
}

impl Sums {
    fn score(&self, l2: f64) -> f64 {
        self.g * self.g / (self.h + l2)
    }

    fn minus(&self, o: &Sums) -> Sums {
        Sums {
            g: self.g - o.g,
            h: self.h - o.h,
            n: self.n - o.n,
        }
    }
}

#[derive(Clone, Debug)]
struct Split {
    gain: f64,
    feature: usize,
    bin: u8,
    missing_left: bool,
    categories_left: Option<[u64; 4]>,
    left: Sums,
}

impl Split {
    fn goes_left(&self, bin: u8) -> bool {
        match &self.categories_left {
            Some(set) => in_set(set, bin as usize),
            None if bin == MISSING_BIN => self.missing_left,
            None => bin <= self.bin,
        }
    }
}

/// A leaf still being grown: its rows are `rows[start..end]`.
struct Open {
    node: usize,
    start: usize,
    end: usize,
    sums: Sums,
    depth: usize,
    hist: Vec<Bin>,
    split: Option<Split>,
}

/// Per-feature gradient/hessian histograms of the node holding `rows`. The gradients (and
/// hessians, unless they are one constant, as in least squares) are gathered in the node's row
/// order once, so each feature's pass reads them sequentially and only its bin column at random.
fn histogram(
    binned: &Binned,
    grad: &[f32],
    hess: &[f32],
    constant: Option<f32>,
    rows: &[u32],
) -> Vec<Bin> {
    let at = |v: &[f32], r: u32| v.get(r as usize).copied().unwrap_or(0.0);
    let g: Vec<f32> = rows.iter().map(|&r| at(grad, r)).collect();
    let h: Vec<f32> = match constant {
        Some(_) => Vec::new(),
        None => rows.iter().map(|&r| at(hess, r)).collect(),
    };
    let mut hist = vec![Bin::default(); binned.bins.len() * BINS];
    hist.par_chunks_mut(BINS)
        .zip(binned.bins.par_iter())
        .for_each(|(out, col)| {
            let Ok(out) = <&mut [Bin; BINS]>::try_from(out) else {
                return;
            };
            match constant {
                Some(h0) => {
                    for (&r, &gi) in rows.iter().zip(&g) {
                        let b = col.get(r as usize).copied().unwrap_or(MISSING_BIN);
                        let bin = &mut out[b as usize];
                        bin.g += f64::from(gi);
                        bin.n += 1;
                    }
                    for bin in out.iter_mut() {
                        bin.h = f64::from(h0) * f64::from(bin.n);
                    }
                }
                None => {
                    for ((&r, &gi), &hi) in rows.iter().zip(&g).zip(&h) {
                        let b = col.get(r as usize).copied().unwrap_or(MISSING_BIN);
                        let bin = &mut out[b as usize];
                        bin.g += f64::from(gi);
                        bin.h += f64::from(hi);
                        bin.n += 1;
                    }
                }
            }
        });
    hist
}

fn subtract(parent: &[Bin], child: &[Bin]) -> Vec<Bin> {
    parent
        .iter()
        .zip(child)
        .map(|(p, c)| Bin {
            g: p.g - c.g,
            h: p.h - c.h,
            n: p.n - c.n,
        })
        .collect()
}

/// The best split of a node over all features, if any gains.
fn best_split(
    binned: &Binned,
    hist: &[Bin],
    total: Sums,
    params: &TreeParams,
    allowed: Option<&[bool]>,
) -> Option<Split> {
    let l2 = params.l2_regularization;
    let parent = total.score(l2);
    let ok = |s: &Sums| {
        s.n >= params.min_samples_leaf.max(1)
            && s.h >= MIN_CHILD_HESSIAN
            && total.n - s.n >= params.min_samples_leaf.max(1)
            && total.h - s.h >= MIN_CHILD_HESSIAN
    };
    let gain_of = |l: &Sums| l.score(l2) + total.minus(l).score(l2) - parent;
    let per_feature: Vec<Option<Split>> = (0..binned.bins.len())
        .into_par_iter()
        .map(|f| {
            if allowed.is_some_and(|a| !a.get(f).copied().unwrap_or(true)) {
                return None;
            }
            let h = hist.get(f * BINS..(f + 1) * BINS)?;
            let nb = binned.num_bins.get(f).copied().unwrap_or(0).min(BINS - 1);
            let mut best: Option<Split> = None;
            let mut consider = |gain: f64, l: Sums, bin: u8, miss_left: bool, cats| {
                if gain > 1e-12 && best.as_ref().is_none_or(|b| gain > b.gain) {
                    best = Some(Split {
                        gain,
                        feature: f,
                        bin,
                        missing_left: miss_left,
                        categories_left: cats,
                        left: l,
                    });
                }
            };
            if binned.categorical.get(f).copied().unwrap_or(false) {
                let mut levels: Vec<(usize, Bin)> = h
                    .iter()
                    .take(nb)
                    .copied()
                    .enumerate()
                    .filter(|(_, b)| b.n > 0)
                    .collect();
                if levels.len() < 2 {
                    return None;
                }
                levels.sort_by(|a, b| {
                    (a.1.g / (a.1.h + CAT_SMOOTH))
                        .total_cmp(&(b.1.g / (b.1.h + CAT_SMOOTH)))
                        .then(a.0.cmp(&b.0))
                });
                let mut l = Sums::default();
                let mut set = [0u64; 4];
                for (code, b) in levels.iter().take(levels.len() - 1) {
                    l.g += b.g;
                    l.h += b.h;
                    l.n += b.n as usize;
                    if let Some(w) = set.get_mut(code / 64) {
                        *w |= 1 << (code % 64);
                    }
                    if ok(&l) {
                        consider(gain_of(&l), l, 0, false, Some(set));
                    }
                }
            } else {
                let miss = h.get(MISSING_BIN as usize).copied().unwrap_or_default();
                let mut l = Sums::default();
                for (b, bin) in h.iter().take(nb.saturating_sub(1)).enumerate() {
                    l.g += bin.g;
                    l.h += bin.h;
                    l.n += bin.n as usize;
                    if ok(&l) {
                        consider(gain_of(&l), l, b as u8, false, None);
                    }
                    if miss.n > 0 {
                        let lm = Sums {
                            g: l.g + miss.g,
                            h: l.h + miss.h,
                            n: l.n + miss.n as usize,
                        };
                        if ok(&lm) {
                            consider(gain_of(&lm), lm, b as u8, true, None);
                        }
                    }
                }
                // No missing values seen here: unseen missing values follow the larger child.
                if miss.n == 0
                    && let Some(s) = best.as_mut()
                {
                    s.missing_left = s.left.n * 2 >= total.n;
                }
            }
            best
        })
        .collect();
    per_feature
        .into_iter()
        .flatten()
        .fold(None, |acc: Option<Split>, s| match acc {
            Some(a) if a.gain >= s.gain => Some(a),
            _ => Some(s),
        })
}

/// Grows one tree on gradients `grad`/`hess` over the rows in `rows` (reordered in place).
/// Returns the tree and, per leaf, the range of `rows` it holds and its value, so the caller
/// can update its predictions without walking the tree. `thresholds[f]` are the bin edges.
pub fn grow(
    binned: &Binned,
    thresholds: &[Vec<f64>],
    grad: &[f32],
    hess: &[f32],
    rows: &mut [u32],
    params: &TreeParams,
    allowed: Option<&[bool]>,
) -> (Tree, Vec<(usize, usize, f64)>) {
    let fixed = allowed.map(<[bool]>::to_vec);
    grow_with(binned, thresholds, grad, hess, rows, params, &mut || {
        fixed.clone()
    })
}

/// As [`grow`], but `features` is asked, for every node, which features it may split on
/// (`None`: all). Random forests draw a fresh subset per node this way. `rows` may repeat a
/// row (a bootstrap sample): it then counts once per occurrence.
pub fn grow_with(
    binned: &Binned,
    thresholds: &[Vec<f64>],
    grad: &[f32],
    hess: &[f32],
    rows: &mut [u32],
    params: &TreeParams,
    features: &mut dyn FnMut() -> Option<Vec<bool>>,
) -> (Tree, Vec<(usize, usize, f64)>) {
    let l2 = params.l2_regularization;
    // A node whose drawn features cannot split it (constant there) tries all of them, as
    // scikit-learn's forests keep drawing until a feature varies.
    let mut split_of = |hist: &[Bin], s: Sums| {
        let allowed = features();
        best_split(binned, hist, s, params, allowed.as_deref()).or_else(|| {
            allowed
                .is_some()
                .then(|| best_split(binned, hist, s, params, None))
                .flatten()
        })
    };
    // One hessian for every row (least squares): histograms then only count rows.
    let constant = hess
        .first()
        .copied()
        .filter(|h0| hess.iter().all(|h| h == h0));
    let hist = histogram(binned, grad, hess, constant, rows);
    let sums = rows.iter().fold(Sums::default(), |s, &r| Sums {
        g: s.g + f64::from(grad.get(r as usize).copied().unwrap_or(0.0)),
        h: s.h + f64::from(hess.get(r as usize).copied().unwrap_or(0.0)),
        n: s.n + 1,
    });
    let leaf_value = |s: &Sums| -params.learning_rate * s.g / (s.h + l2).max(1e-12);
    let can_split = |n: usize, depth: usize| {
        n >= 2 * params.min_samples_leaf.max(1)
            && (params.max_depth == 0 || depth < params.max_depth)
    };
    let mut tree = Tree {
        nodes: vec![Node::leaf(leaf_value(&sums), sums.n)],
    };
    let root_split = if can_split(sums.n, 0) {
        split_of(&hist, sums)
    } else {
        None
    };
    let mut open = vec![Open {
        node: 0,
        start: 0,
        end: rows.len(),
        sums,
        depth: 0,
        hist,
        split: root_split,
    }];
    let mut leaves = 1;
    while leaves < params.max_leaf_nodes.max(2) {
        // The open leaf with the best split (first on ties, so growth is deterministic).
        let mut pick: Option<(usize, f64)> = None;
        for (i, o) in open.iter().enumerate() {
            if let Some(s) = &o.split
                && pick.is_none_or(|(_, g)| s.gain > g)
            {
                pick = Some((i, s.gain));
            }
        }
        let Some((i, _)) = pick else { break };
        let leaf = open.swap_remove(i);
        let Some(split) = leaf.split.clone() else {
            break;
        };
        let Some(col) = binned.bins.get(split.feature) else {
            break;
        };
        // Partition the leaf's rows: left ones first.
        let part = &mut rows[leaf.start..leaf.end];
        let mut k = 0;
        for j in 0..part.len() {
            let b = col.get(part[j] as usize).copied().unwrap_or(MISSING_BIN);
            if split.goes_left(b) {
                part.swap(k, j);
                k += 1;
            }
        }
        let mid = leaf.start + k;
        let left_sums = split.left;
        let right_sums = leaf.sums.minus(&left_sums);
        let (small, small_is_left) = if k <= part.len() - k {
            (&rows[leaf.start..mid], true)
        } else {
            (&rows[mid..leaf.end], false)
        };
        let small_hist = histogram(binned, grad, hess, constant, small);
        let big_hist = subtract(&leaf.hist, &small_hist);
        let (left_hist, right_hist) = if small_is_left {
            (small_hist, big_hist)
        } else {
            (big_hist, small_hist)
        };
        let li = tree.nodes.len();
        let ri = li + 1;
        tree.nodes
            .push(Node::leaf(leaf_value(&left_sums), left_sums.n));
        tree.nodes
            .push(Node::leaf(leaf_value(&right_sums), right_sums.n));
        if let Some(n) = tree.nodes.get_mut(leaf.node) {
            n.feature = split.feature;
            n.bin_threshold = split.bin;
            n.threshold = thresholds
                .get(split.feature)
                .and_then(|t| t.get(split.bin as usize))
                .copied()
                .unwrap_or(f64::INFINITY);
            n.missing_left = split.missing_left;
            n.categories_left = split.categories_left;
            n.left = li;
            n.right = ri;
            n.gain = split.gain;
        }
        let depth = leaf.depth + 1;
        for (node, start, end, s, hist) in [
            (li, leaf.start, mid, left_sums, left_hist),
            (ri, mid, leaf.end, right_sums, right_hist),
        ] {
            let split = if can_split(s.n, depth) {
                split_of(&hist, s)
            } else {
                None
            };
            // A leaf that will not split needs no histogram (deep forest trees hold thousands).
            let hist = if split.is_some() { hist } else { Vec::new() };
            open.push(Open {
                node,
                start,
                end,
                sums: s,
                depth,
                hist,
                split,
            });
        }
        leaves += 1;
    }
    let ranges = open
        .iter()
        .map(|o| {
            let v = tree.nodes.get(o.node).map(|n| n.value).unwrap_or(0.0);
            (o.start, o.end, v)
        })
        .collect();
    (tree, ranges)
}

/// Bin edges of one numeric column: midpoints between distinct values when there are few,
/// else between quantiles of `values` (NaN ignored); at most `max_bins - 1` edges.
pub fn bin_edges(values: &[f64], max_bins: usize) -> Vec<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
    v.sort_by(f64::total_cmp);
    let mut distinct = v.clone();
    distinct.dedup();
    let max_bins = max_bins.clamp(2, BINS - 1);
    let mut edges: Vec<f64> = if distinct.len() <= max_bins {
        distinct.windows(2).map(|w| 0.5 * (w[0] + w[1])).collect()
    } else {
        (1..max_bins)
            .filter_map(|k| {
                let i = k * v.len() / max_bins;
                let (a, b) = (v.get(i.saturating_sub(1))?, v.get(i)?);
                Some(0.5 * (a + b))
            })
            .collect()
    };
    edges.retain(|e| e.is_finite());
    edges.dedup();
    edges
}

/// The bin of `x` given `edges` (missing → [`MISSING_BIN`]).
pub fn bin_of(x: f64, edges: &[f64]) -> u8 {
    if x.is_nan() {
        return MISSING_BIN;
    }
    edges.partition_point(|&e| e < x).min(BINS - 2) as u8
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn params() -> TreeParams {
        TreeParams {
            max_leaf_nodes: 4,
            min_samples_leaf: 1,
            l2_regularization: 0.0,
            max_depth: 0,
            learning_rate: 1.0,
        }
    }

    #[test]
    fn edges_and_bins_agree_with_thresholds() {
        let e = bin_edges(&[3.0, 1.0, 2.0, f64::NAN, 2.0], 255);
        assert_eq!(e, [1.5, 2.5]);
        assert_eq!(bin_of(1.0, &e), 0);
        assert_eq!(bin_of(1.5, &e), 0);
        assert_eq!(bin_of(2.0, &e), 1);
        assert_eq!(bin_of(f64::INFINITY, &e), 2);
        assert_eq!(bin_of(f64::NEG_INFINITY, &e), 0);
        assert_eq!(bin_of(f64::NAN, &e), MISSING_BIN);
        let many: Vec<f64> = (0..10_000).map(f64::from).collect();
        let e = bin_edges(&many, 255);
        assert!(e.len() <= 254 && e.len() > 250, "{}", e.len());
    }

    /// Squared-error gradients of targets `y` around 0: the best split separates the means.
    fn fit_one(
        bins: Vec<Vec<u8>>,
        num_bins: Vec<usize>,
        categorical: Vec<bool>,
        y: &[f32],
    ) -> Tree {
        let n = y.len();
        let binned = Binned {
            bins,
            num_bins,
            categorical,
            num_rows: n,
        };
        let grad: Vec<f32> = y.iter().map(|v| -v).collect();
        let hess = vec![1.0f32; n];
        let mut rows: Vec<u32> = (0..n as u32).collect();
        let thresholds = vec![(0..254).map(f64::from).collect::<Vec<_>>(); binned.bins.len()];
        let mut p = params();
        p.max_leaf_nodes = 2;
        grow(&binned, &thresholds, &grad, &hess, &mut rows, &p, None).0
    }

    #[test]
    fn numeric_split_is_found_at_the_step_and_missing_follows_its_targets() {
        // feature 0 is noise, feature 1 steps at bin 4; missing values behave like high bins.
        let f0: Vec<u8> = (0..12).map(|i| (i * 7 % 5) as u8).collect();
        let f1: Vec<u8> = vec![0, 1, 2, 3, 4, 5, 6, 7, MISSING_BIN, MISSING_BIN, 2, 6];
        let y: Vec<f32> = f1
            .iter()
            .map(|&b| if b <= 4 { -1.0 } else { 1.0 })
            .collect();
        let t = fit_one(vec![f0, f1], vec![5, 8], vec![false, false], &y);
        let root = &t.nodes[0];
        assert_eq!(root.feature, 1);
        assert_eq!(root.bin_threshold, 4);
        assert!(!root.missing_left);
        assert_eq!(root.threshold, 4.0);
        assert!((t.nodes[root.left].value + 1.0).abs() < 1e-9);
        assert!((t.nodes[root.right].value - 1.0).abs() < 1e-9);
        // gain = G_L²/H_L + G_R²/H_R − G²/H = 6 + 6 − 0
        assert!((root.gain - 12.0).abs() < 1e-9, "{}", root.gain);
        assert_eq!(t.predict(&[0.0, f64::NAN]), 1.0);
        assert_eq!(t.predict(&[0.0, 3.5]), -1.0);
    }

    #[test]
    fn drawn_features_that_cannot_split_fall_back_to_all() {
        // feature 0 is constant; feature 1 steps at bin 2. The draw only ever offers feature 0.
        let n = 8;
        let binned = Binned {
            bins: vec![vec![0; n], vec![0, 1, 2, 3, 0, 1, 2, 3]],
            num_bins: vec![1, 4],
            categorical: vec![false, false],
            num_rows: n,
        };
        let y = [-1.0f32, -1.0, 1.0, 1.0, -1.0, -1.0, 1.0, 1.0];
        let grad: Vec<f32> = y.iter().map(|v| -v).collect();
        let hess = vec![1.0f32; n];
        let thresholds = vec![(0..254).map(f64::from).collect::<Vec<_>>(); 2];
        let mut p = params();
        p.max_leaf_nodes = 2;
        let mut draws = 0;
        let mut rows: Vec<u32> = (0..n as u32).collect();
        let (t, _) = grow_with(
            &binned,
            &thresholds,
            &grad,
            &hess,
            &mut rows,
            &p,
            &mut || {
                draws += 1;
                Some(vec![true, false])
            },
        );
        assert_eq!(t.nodes[0].feature, 1);
        assert_eq!(t.nodes[0].bin_threshold, 1);
        assert!(draws >= 1);
        // a bootstrap sample repeats rows: they count once per occurrence
        let mut twice: Vec<u32> = vec![0, 0, 0, 2];
        let (t, _) = grow(&binned, &thresholds, &grad, &hess, &mut twice, &p, None);
        let left = &t.nodes[t.nodes[0].left];
        assert_eq!(left.count, 3);
    }

    #[test]
    fn categorical_split_groups_levels_by_target() {
        // levels 0 and 3 are high, 1 and 2 low: no ordered threshold separates them.
        let codes: Vec<u8> = (0..40).map(|i| (i % 4) as u8).collect();
        let y: Vec<f32> = codes
            .iter()
            .map(|&c| if c == 0 || c == 3 { 2.0 } else { -2.0 })
            .collect();
        let t = fit_one(vec![codes], vec![4], vec![true], &y);
        let root = &t.nodes[0];
        let set = root.categories_left.unwrap();
        let left: Vec<usize> = (0..4).filter(|&c| in_set(&set, c)).collect();
        assert!(left == [1, 2] || left == [0, 3], "{left:?}");
        for c in 0..4 {
            let want = if c == 0 || c == 3 { 2.0 } else { -2.0 };
            assert!((t.predict(&[c as f64]) - want).abs() < 1e-9);
        }
    }
}
