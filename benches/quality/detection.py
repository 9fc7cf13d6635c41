"""Object detection in the quality suite: reading Create ML annotations, mAP@0.5 (COCO's
101-point interpolation) with a paired bootstrap over test images, and the baseline — a
sliding-window logistic regression on HOG-like features of 20x20 windows (4x4 cells x 8
gradient orientations; a background class with one round of hard negatives; per-class mean box
shape within the window; per-class NMS), fitted on the training boxes."""
import json

import numpy as np

from stats import RESAMPLES, SEED

WIN, SCALES, STRIDE = 20, (48, 60, 72), 8


def load(split_dir):
    """[(path, [(label, (x0, y0, x1, y1)), …]), …] from annotations.json."""
    out = []
    for e in json.loads((split_dir / "annotations.json").read_text()):
        boxes = [(a["label"], (a["coordinates"]["x"] - a["coordinates"]["width"] / 2,
                               a["coordinates"]["y"] - a["coordinates"]["height"] / 2,
                               a["coordinates"]["x"] + a["coordinates"]["width"] / 2,
                               a["coordinates"]["y"] + a["coordinates"]["height"] / 2))
                 for a in e["annotations"]]
        out.append((split_dir / e["image"], boxes))
    return out


def iou(a, b):
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter + 1e-9)


def per_image(dets, gts, classes):
    """Per image: ({class: (scores, tp flags)}, {class: n_gt}) by greedy matching at IoU 0.5."""
    out = []
    for d, g in zip(dets, gts):
        res, ngt = {}, {c: sum(1 for lab, _ in g if lab == c) for c in classes}
        for c in classes:
            mine = sorted([(s, b) for lab, s, b in d if lab == c], key=lambda t: -t[0])
            used, tp = set(), []
            for s, b in mine:
                best, bj = 0.5, None
                for j, (lab, gb) in enumerate(g):
                    if lab == c and j not in used and iou(b, gb) >= best:
                        best, bj = iou(b, gb), j
                tp.append(bj is not None)
                if bj is not None:
                    used.add(bj)
            res[c] = (np.array([s for s, _ in mine]), np.array(tp, bool))
        out.append((res, ngt))
    return out


def _ap(scores, tp, n_gt):
    if n_gt == 0:
        return None
    order = np.argsort(-scores, kind="stable")
    tp = tp[order]
    ctp = np.cumsum(tp)
    recall = ctp / n_gt
    precision = ctp / np.arange(1, len(tp) + 1)
    precision = np.maximum.accumulate(precision[::-1])[::-1] if len(tp) else precision
    ap = 0.0
    for r in np.linspace(0, 1, 101):
        k = np.searchsorted(recall, r, side="left")
        ap += precision[k] if k < len(precision) else 0.0
    return ap / 101


def map50(pi, classes, idx=None):
    idx = range(len(pi)) if idx is None else idx
    aps = []
    for c in classes:
        s = np.concatenate([pi[i][0][c][0] for i in idx] + [np.zeros(0)])
        t = np.concatenate([pi[i][0][c][1] for i in idx] + [np.zeros(0, bool)])
        a = _ap(s, t, sum(pi[i][1][c] for i in idx))
        if a is not None:
            aps.append(a)
    return float(np.mean(aps))


def paired_delta(pa, pb, classes):
    rng = np.random.default_rng(SEED)
    n = len(pa)
    d = []
    for _ in range(RESAMPLES):
        idx = rng.integers(0, n, n)
        d.append(map50(pa, classes, idx) - map50(pb, classes, idx))
    lo, hi = np.percentile(d, [2.5, 97.5])
    return map50(pa, classes) - map50(pb, classes), float(lo), float(hi)


def _gray(path):
    from PIL import Image
    return np.asarray(Image.open(path).convert("L"), np.float32) / 255


CELL, BINS = 5, 8


def _hog_integral(img):
    """Integral images (BINS, H+1, W+1) of gradient magnitude split by orientation."""
    gy, gx = np.gradient(img)
    mag, ang = np.hypot(gx, gy), np.mod(np.arctan2(gy, gx), np.pi)
    b = np.minimum((ang / np.pi * BINS).astype(int), BINS - 1)
    maps = np.zeros((BINS,) + img.shape, np.float32)
    for k in range(BINS):
        maps[k] = np.where(b == k, mag, 0)
    out = np.zeros((BINS, img.shape[0] + 1, img.shape[1] + 1), np.float64)
    out[:, 1:, 1:] = maps.cumsum(1).cumsum(2)
    return out


def _hog_at(S, ys, xs):
    """Features of the WIN x WIN windows with top-left corners (ys, xs), L2-normalized."""
    n = WIN // CELL
    feats = []
    for i in range(n):
        for j in range(n):
            y0, x0 = ys + i * CELL, xs + j * CELL
            y1, x1 = y0 + CELL, x0 + CELL
            feats.append(S[:, y1, x1] - S[:, y0, x1] - S[:, y1, x0] + S[:, y0, x0])
    f = np.concatenate(feats, axis=0).T
    return f / (np.linalg.norm(f, axis=1, keepdims=True) + 1e-6)


def _crop_feat(img, box):
    from PIL import Image
    x0, y0, x1, y1 = box
    side = max(x1 - x0, y1 - y0) * 1.1
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    im = Image.fromarray(img).crop((cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2))
    crop = np.asarray(im.resize((WIN, WIN), Image.BILINEAR), np.float32)
    return _hog_at(_hog_integral(crop), np.array([0]), np.array([0]))[0], side


def _windows(img):
    """(features [n, d], boxes [n, 4]) of every sliding window at every scale."""
    from PIL import Image
    feats, boxes = [], []
    h, w = img.shape
    for s in SCALES:
        f = WIN / s
        small = np.asarray(Image.fromarray(img).resize((round(w * f), round(h * f)), Image.BILINEAR), np.float32)
        step = max(1, round(STRIDE * f))
        ys, xs = np.meshgrid(np.arange(0, small.shape[0] - WIN + 1, step),
                             np.arange(0, small.shape[1] - WIN + 1, step), indexing="ij")
        ys, xs = ys.ravel(), xs.ravel()
        feats.append(_hog_at(_hog_integral(small), ys, xs))
        boxes.append(np.stack([xs / f, ys / f, xs / f + s, ys / f + s], 1))
    return np.concatenate(feats), np.concatenate(boxes)


def _detect(model, shape, img):
    feats, wins = _windows(img)
    p = model.predict_proba(feats)
    dets = []
    for j, c in enumerate(model.classes_):
        if c == "__background__":
            continue
        rw, rh = shape[c]
        chosen = []
        for k in np.argsort(-p[:, j])[:200]:
            x0, y0, x1, y1 = wins[k]
            cx, cy, side = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 1.1
            b = (cx - rw * side / 2, cy - rh * side / 2, cx + rw * side / 2, cy + rh * side / 2)
            if all(iou(b, cb) < 0.3 for _, cb in chosen):  # NMS
                chosen.append((float(p[k, j]), b))
            if len(chosen) == 10:
                break
        dets += [(str(c), sc, b) for sc, b in chosen]
    return dets


def baseline(train, test):
    """Detections [(label, score, box)] per test image."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    rng = np.random.default_rng(SEED)
    X, Y, shape = [], [], {}
    imgs = [_gray(p) for p, _ in train]
    for img, (_, boxes) in zip(imgs, train):
        for lab, b in boxes:
            f, side = _crop_feat(img, b)
            X.append(f)
            Y.append(lab)
            shape.setdefault(lab, []).append(((b[2] - b[0]) / side * 1.1, (b[3] - b[1]) / side * 1.1))
        for _ in range(8):
            s = SCALES[rng.integers(len(SCALES))]
            x0, y0 = rng.integers(0, img.shape[1] - s), rng.integers(0, img.shape[0] - s)
            bg = (x0, y0, x0 + s, y0 + s)
            if all(iou(bg, b) < 0.2 for _, b in boxes):
                X.append(_crop_feat(img, bg)[0])
                Y.append("__background__")
    shape = {k: np.mean(v, axis=0) for k, v in shape.items()}

    def fit():
        return make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=3000)).fit(np.array(X), Y)
    model = fit()
    for img, (_, boxes) in zip(imgs, train):  # one round of hard negatives
        for lab, sc, b in sorted(_detect(model, shape, img), key=lambda t: -t[1])[:4]:
            if all(iou(b, gb) < 0.2 for _, gb in boxes):
                X.append(_crop_feat(img, b)[0])
                Y.append("__background__")
    model = fit()
    return [_detect(model, shape, _gray(p)) for p, _ in test]
