#!/usr/bin/env python3
"""Reference for `lathe bench` decode + resize: PIL decodes a JPEG and resizes it to SIZE×SIZE
(bilinear, like Lathe's resize), converts to float32 CHW normalized — 1 process and N processes.

usage: decode_resize.py [--images DIR] [--count N] [--size 224] [--procs N]
Without --images: the same synthetic 640×480 JPEGs as `lathe bench` makes (pattern, quality 75).
Prints one JSON object."""
import argparse, io, json, os, time
from multiprocessing import Pool

import numpy as np
from PIL import Image

MEAN = np.array([0.485, 0.456, 0.406], np.float32)[:, None, None]
STD = np.array([0.229, 0.224, 0.225], np.float32)[:, None, None]
SIZE = 224


def synthetic(i):
    x = np.arange(640, dtype=np.uint32)[None, :]
    y = np.arange(480, dtype=np.uint32)[:, None]
    v = (x * 7 + y * 13 + i * 31) ^ (x * y)
    img = np.stack([v & 255, (v >> 3) & 255, (x + y) & 255], -1).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG", quality=75)
    return buf.getvalue()


def work(b):
    img = Image.open(io.BytesIO(b)).convert("RGB").resize((SIZE, SIZE), Image.BILINEAR)
    a = np.asarray(img, np.float32).transpose(2, 0, 1) / 255.0
    return ((a - MEAN) / STD).shape[0]


def main():
    global SIZE
    ap = argparse.ArgumentParser()
    ap.add_argument("--images")
    ap.add_argument("--count", type=int, default=512)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--procs", type=int, default=os.cpu_count())
    a = ap.parse_args()
    SIZE = a.size
    if a.images:
        paths = []
        for root, _, files in sorted(os.walk(a.images)):
            paths += [os.path.join(root, f) for f in sorted(files) if f.lower().endswith((".jpg", ".jpeg", ".png"))]
        blobs = [open(p, "rb").read() for p in paths[: a.count]]
    else:
        blobs = [synthetic(i) for i in range(a.count)]
    t = time.perf_counter()
    for b in blobs:
        work(b)
    one = len(blobs) / (time.perf_counter() - t)
    with Pool(a.procs) as pool:
        pool.map(work, blobs[:32])
        t = time.perf_counter()
        pool.map(work, blobs, chunksize=8)
        many = len(blobs) / (time.perf_counter() - t)
    print(json.dumps({"reference": "PIL", "images": len(blobs), "size": SIZE,
                      "images_per_sec_1_process": one, "processes": a.procs,
                      "images_per_sec_n_processes": many}))


if __name__ == "__main__":
    main()
