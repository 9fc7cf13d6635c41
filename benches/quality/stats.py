"""Metrics and the paired bootstrap of the quality suite: accuracy for classes, R² for numbers;
Δ = Lathe − baseline with a 95 % percentile interval from 2000 paired resamples of the test
examples (seed 0)."""
import numpy as np

RESAMPLES, SEED, CHUNK = 2000, 0, 50


def accuracy(y, p):
    return float(np.mean(np.asarray(y) == np.asarray(p)))


def r2(y, p):
    y, p = np.asarray(y, float), np.asarray(p, float)
    return float(1 - np.sum((y - p) ** 2) / np.sum((y - y.mean()) ** 2))


def _r2_rows(y, p):  # one R² per row of 2-D arrays
    return 1 - ((y - p) ** 2).sum(1) / ((y - y.mean(1, keepdims=True)) ** 2).sum(1)


def paired_delta(y, lathe, base, classify):
    """(Δ, low, high): the test-set difference and its 95 % paired-bootstrap interval."""
    y, a, b = np.asarray(y), np.asarray(lathe), np.asarray(base)
    n = len(y)
    rng = np.random.default_rng(SEED)
    deltas = []
    if classify:
        diff = (a == y).astype(np.float64) - (b == y).astype(np.float64)
        point = float(diff.mean())
    else:
        y, a, b = y.astype(float), a.astype(float), b.astype(float)
        point = r2(y, a) - r2(y, b)
    for start in range(0, RESAMPLES, CHUNK):
        idx = rng.integers(0, n, (min(CHUNK, RESAMPLES - start), n))
        if classify:
            deltas.append(diff[idx].mean(1))
        else:
            deltas.append(_r2_rows(y[idx], a[idx]) - _r2_rows(y[idx], b[idx]))
    d = np.concatenate(deltas)
    lo, hi = np.percentile(d, [2.5, 97.5])
    return point, float(lo), float(hi)
