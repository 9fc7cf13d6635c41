"""Writes checker inputs: every image under SRC (class folders kept) resized to SIZE x SIZE RGB PNG.

usage: resize_inputs.py SRC DST SIZE

The Core ML model takes an image at its input size and the engine resizes whatever it gets, so
both are fed the same already-resized pixels; how they were resized (PIL bilinear here) does not
matter for the comparison. Prints the written paths, one a line.
"""

import os
import sys

from PIL import Image

EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")


def main():
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    src, dst, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
    for root, _dirs, files in sorted(os.walk(src)):
        for name in sorted(files):
            if not name.lower().endswith(EXTENSIONS):
                continue
            rel = os.path.relpath(os.path.join(root, name), src)
            out = os.path.join(dst, os.path.splitext(rel)[0] + ".png")
            os.makedirs(os.path.dirname(out), exist_ok=True)
            Image.open(os.path.join(root, name)).convert("RGB").resize(
                (size, size), Image.BILINEAR
            ).save(out)
            print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
