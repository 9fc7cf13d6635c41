#!/usr/bin/env python3
"""Export Fashion-MNIST (IDX files, as shipped by Debian's `dataset-fashion-mnist`) to one
folder per class of PNG files, the layout Lathe's image classifier reads.

Standard library only (gzip, struct, zlib), so it runs on a fresh machine.

usage: fashion_mnist_to_folders.py IDX_DIR OUT_DIR [--per-class N] [--test-per-class N] [--seed S]

Writes OUT_DIR/train/<class>/NNNNN.png and OUT_DIR/test/<class>/NNNNN.png. With --per-class the
first N images of each class (in file order, after a seeded shuffle) are kept: a small sample.
"""
import argparse, gzip, os, random, struct, sys, zlib

CLASSES = ["T-shirt_top", "Trouser", "Pullover", "Dress", "Coat",
           "Sandal", "Shirt", "Sneaker", "Bag", "Ankle_boot"]


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    zero, dtype, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != 0x08:
        sys.exit(f"error: {path} is not an IDX file of unsigned bytes")
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return dims, data[4 + 4 * ndim:]


def png_gray(width, height, pixels):
    raw = b"".join(b"\x00" + pixels[y * width:(y + 1) * width] for y in range(height))
    def chunk(tag, body):
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body) & 0xFFFFFFFF)
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def export(idx_dir, split, prefix, out_dir, per_class, seed):
    (n, h, w), images = read_idx(os.path.join(idx_dir, f"{prefix}-images-idx3-ubyte.gz"))
    (n_labels,), labels = read_idx(os.path.join(idx_dir, f"{prefix}-labels-idx1-ubyte.gz"))
    if n != n_labels:
        sys.exit(f"error: {n} images but {n_labels} labels in {idx_dir}")
    order = list(range(n))
    if per_class is not None:
        random.Random(seed).shuffle(order)
    kept = {c: 0 for c in range(len(CLASSES))}
    for i in order:
        label = labels[i]
        if per_class is not None and kept[label] >= per_class:
            continue
        kept[label] += 1
        folder = os.path.join(out_dir, split, CLASSES[label])
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, f"{i:05d}.png")
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(png_gray(w, h, images[i * h * w:(i + 1) * h * w]))
        os.replace(tmp, path)
    print(f"{split}: {sum(kept.values())} images in {len(CLASSES)} classes -> {os.path.join(out_dir, split)}")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("idx_dir")
    p.add_argument("out_dir")
    p.add_argument("--per-class", type=int, default=None, help="keep N training images per class")
    p.add_argument("--test-per-class", type=int, default=None, help="keep N test images per class")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    export(a.idx_dir, "train", "train", a.out_dir, a.per_class, a.seed)
    export(a.idx_dir, "test", "t10k", a.out_dir, a.test_per_class if a.test_per_class is not None else a.per_class, a.seed)


if __name__ == "__main__":
    main()
