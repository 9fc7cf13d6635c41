#!/usr/bin/env python3
"""Context for Lathe's bf16 correctness bar: how far PyTorch's own bf16 autocast moves
MobileNetV2's ImageNet probabilities from its f32 result on the same photos (CUDA).

usage: bf16_agreement.py WEIGHTS.safetensors PHOTO... — prints one JSON object:
{photo: {"top1_f32", "top1_bf16", "max_abs_dp"}}. Preprocessing as Lathe's: the whole image
resized to 224×224 (bilinear), ImageNet mean/std."""
import json, os, sys

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, os.path.dirname(__file__))
from st_weights import mobilenet_v2  # noqa: E402

MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def main():
    weights, photos = sys.argv[1], sys.argv[2:]
    dev = torch.device("cuda")
    model = mobilenet_v2(weights).to(dev).eval().to(memory_format=torch.channels_last)
    out = {}
    for path in photos:
        img = Image.open(path).convert("RGB").resize((224, 224), Image.BILINEAR)
        x = (np.asarray(img, dtype=np.float32) / 255.0 - MEAN) / STD
        x = torch.from_numpy(x.transpose(2, 0, 1).copy())[None].to(dev)
        with torch.no_grad():
            p32 = torch.softmax(model(x).float(), 1)
            with torch.autocast("cuda", dtype=torch.bfloat16):
                p16 = torch.softmax(model(x).float(), 1)
        out[os.path.basename(path)] = {"top1_f32": int(p32.argmax()), "top1_bf16": int(p16.argmax()),
                                       "max_abs_dp": float((p32 - p16).abs().max())}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
