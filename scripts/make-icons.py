#!/usr/bin/env python3
"""Draws Lathe Studio's app icon (icons/lathe-studio-<size>.png) with no dependencies: a rounded
square in a blue-to-teal gradient, a white turned workpiece (a ring) and a chisel entering it."""
import math, os, struct, sys, zlib

def png(path, size, pixels):
    raw = b"".join(b"\x00" + bytes(pixels[y * size * 4:(y + 1) * size * 4]) for y in range(size))
    def chunk(tag, data):
        c = struct.pack(">I", len(data)) + tag + data
        return c + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(chunk(b"IHDR", struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)))
        f.write(chunk(b"IDAT", zlib.compress(raw, 9)))
        f.write(chunk(b"IEND", b""))

def sample(x, y):
    """Colour (r, g, b, a) at (x, y) in [0, 1]^2."""
    # Rounded square.
    r = 0.2
    dx = max(abs(x - 0.5) - (0.5 - r), 0.0)
    dy = max(abs(y - 0.5) - (0.5 - r), 0.0)
    if dx * dx + dy * dy > r * r:
        return (0, 0, 0, 0)
    t = (x + y) / 2
    bg = (int(30 + 10 * t), int(80 + 100 * t), int(200 - 40 * t), 255)
    cx, cy = 0.5, 0.46
    d = math.hypot(x - cx, y - cy)
    # Workpiece: a thick ring with a groove.
    if 0.17 < d < 0.31 and not (0.235 < d < 0.25):
        return (255, 255, 255, 255)
    # Axis dot.
    if d < 0.06:
        return (255, 255, 255, 255)
    # Chisel: a slanted bar from the lower left towards the ring.
    ux, uy = math.cos(math.radians(-35)), math.sin(math.radians(-35))
    px, py = x - 0.16, y - 0.86
    along = px * ux + py * uy
    across = -px * uy + py * ux
    if 0.0 < along < 0.36 and abs(across) < 0.035 + 0.02 * (along < 0.18):
        return (255, 210, 80, 255)
    return bg

def draw(size, ss=4):
    out = []
    for j in range(size):
        for i in range(size):
            acc = [0, 0, 0, 0]
            for sj in range(ss):
                for si in range(ss):
                    c = sample((i + (si + 0.5) / ss) / size, (j + (sj + 0.5) / ss) / size)
                    a = c[3]
                    acc[0] += c[0] * a; acc[1] += c[1] * a; acc[2] += c[2] * a; acc[3] += a
            n = ss * ss
            a = acc[3] / n
            if a == 0:
                out += [0, 0, 0, 0]
            else:
                out += [int(acc[0] / acc[3]), int(acc[1] / acc[3]), int(acc[2] / acc[3]), int(a)]
    return out

if __name__ == "__main__":
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "icons")
    os.makedirs(root, exist_ok=True)
    for size in [int(s) for s in (sys.argv[1:] or ["16", "32", "48", "64", "128", "256", "512"])]:
        png(os.path.join(root, f"lathe-studio-{size}.png"), size, draw(size, 4 if size <= 256 else 2))
