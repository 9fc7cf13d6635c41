"""Shared helpers of the quality suite: cache paths, the fixed seeded stratified splits, and the
writers that lay data out as Lathe reads it (folder per class, CSV tables)."""
import os
import shutil
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache" / "quality"
RAW = CACHE / "raw"
SEED = 0


def sets_dir(smoke: bool) -> Path:
    return CACHE / ("smoke-sets" if smoke else "sets")


def stratified_pick(labels, n, seed=SEED, exclude=None):
    """Indices of a seeded, class-stratified sample of n items (all when n >= len)."""
    labels = np.asarray(labels)
    idx = np.arange(len(labels))
    if exclude is not None:
        idx = np.setdiff1d(idx, exclude)
    if n >= len(idx):
        return idx
    from sklearn.model_selection import train_test_split
    picked, _ = train_test_split(idx, train_size=n, stratify=labels[idx], random_state=seed)
    return np.sort(picked)


def stratified_split(labels, n_train, n_test, seed=SEED, stratify=True):
    """Disjoint, seeded (train, test) index arrays of about the given sizes (scaled down in
    proportion when the data is smaller), stratified by label unless stratify is False."""
    from sklearn.model_selection import train_test_split
    labels = np.asarray(labels)
    idx = np.arange(len(labels))
    total = min(len(idx), n_train + n_test)
    if total < len(idx):
        idx, _ = train_test_split(idx, train_size=total, random_state=seed,
                                  stratify=labels if stratify else None)
    test = n_test if total == n_train + n_test else max(1, round(total * n_test / (n_train + n_test)))
    tr, te = train_test_split(idx, test_size=test, random_state=seed,
                              stratify=labels[idx] if stratify else None)
    return np.sort(tr), np.sort(te)


def fresh_dir(path: Path) -> Path:
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def clean_label(label) -> str:
    s = str(label).strip().replace("/", "-").replace(" ", "_")
    return s or "empty"


def write_images(out: Path, split: str, images, labels, names=None):
    """Writes uint8 arrays (HxW or HxWx3) as PNGs in out/split/<label>/."""
    from PIL import Image
    for i, (img, lab) in enumerate(zip(images, labels)):
        d = out / split / clean_label(lab)
        d.mkdir(parents=True, exist_ok=True)
        name = names[i] if names is not None else f"{i:05d}.png"
        Image.fromarray(np.asarray(img, dtype=np.uint8)).save(d / name)


def write_texts(out: Path, split: str, texts, labels):
    for i, (t, lab) in enumerate(zip(texts, labels)):
        d = out / split / clean_label(lab)
        d.mkdir(parents=True, exist_ok=True)
        (d / f"{i:05d}.txt").write_text(t, encoding="utf-8")


def copy_files(out: Path, split: str, files, labels):
    """Copies files (keeping their extension) into out/split/<label>/NNNNN.ext."""
    for i, (f, lab) in enumerate(zip(files, labels)):
        d = out / split / clean_label(lab)
        d.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(f, d / f"{i:05d}{Path(f).suffix.lower()}")


def require(path: Path) -> Path:
    if not Path(path).exists():
        raise SystemExit(f"prepare: missing {path} — run benches/quality/fetch.sh first")
    return Path(path)


def env_int(name, default):
    return int(os.environ.get(name, default))
