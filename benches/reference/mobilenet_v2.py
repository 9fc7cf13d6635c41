#!/usr/bin/env python3
"""Reference for `lathe bench` feature extraction and fine-tuning step: torchvision MobileNetV2
with Lathe's embedded weights, eager, channels_last.

usage: mobilenet_v2.py WEIGHTS.safetensors [--device cuda|cpu] [--batch 256] [--batches 4]
       [--fine-tune-batch 64] [--fine-tune-blocks 4] [--fine-tune-steps 5] [--size 224]
Extraction: frozen network (eval, no_grad) to pooled 1280-d features, f32 and (GPU) bf16 autocast.
Fine-tuning step: the frozen blocks under no_grad (bf16 autocast on GPU), the last N of the 19
blocks of `features` in train mode in f32, a Linear(1280, 10) head, cross-entropy, AdamW.
Prints one JSON object."""
import argparse, json, os, sys, time

import torch

sys.path.insert(0, os.path.dirname(__file__))
from st_weights import mobilenet_v2  # noqa: E402


def sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize()


def features(model, x):
    f = model.features(x)
    return torch.nn.functional.adaptive_avg_pool2d(f, 1).flatten(1)


def extract(model, dev, batch, batches, size, dtype):
    x = torch.randn(batch, 3, size, size, device=dev).contiguous(memory_format=torch.channels_last)
    ctx = torch.autocast(dev.type, dtype=torch.bfloat16) if dtype == "bf16" else torch.autocast(dev.type, enabled=False)
    with torch.no_grad(), ctx:
        features(model, x).float().cpu()
        sync(dev)
        t = time.perf_counter()
        for _ in range(batches):
            features(model, x).float().cpu()
        sync(dev)
    return batch * batches / (time.perf_counter() - t)


def fine_tune(model, dev, batch, blocks, steps, size):
    frozen, trainable = model.features[: 19 - blocks], model.features[19 - blocks:]
    frozen.eval()
    trainable.train()
    for p in frozen.parameters():
        p.requires_grad_(False)
    head = torch.nn.Linear(1280, 10).to(dev)
    params = list(trainable.parameters()) + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=1e-4)
    x = torch.randn(batch, 3, size, size, device=dev).contiguous(memory_format=torch.channels_last)
    y = torch.arange(batch, device=dev) % 10
    low = torch.autocast(dev.type, dtype=torch.bfloat16) if dev.type == "cuda" else torch.autocast(dev.type, enabled=False)

    def step():
        with torch.no_grad(), low:
            z = frozen(x)
        z = z.float()
        f = torch.nn.functional.adaptive_avg_pool2d(trainable(z), 1).flatten(1)
        loss = torch.nn.functional.cross_entropy(head(f), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.item()

    step()
    sync(dev)
    t = time.perf_counter()
    for _ in range(steps):
        step()
    sync(dev)
    return batch * steps / (time.perf_counter() - t)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("weights")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--batch", type=int, default=0)
    ap.add_argument("--batches", type=int, default=4)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--fine-tune-batch", type=int, default=64)
    ap.add_argument("--fine-tune-blocks", type=int, default=4)
    ap.add_argument("--fine-tune-steps", type=int, default=5)
    a = ap.parse_args()
    dev = torch.device(a.device)
    batch = a.batch or (256 if dev.type == "cuda" else 32)
    model = mobilenet_v2(a.weights).to(dev).eval().to(memory_format=torch.channels_last)
    out = {"reference": f"torch {torch.__version__} torchvision eager channels_last", "device": str(dev),
           "threads": torch.get_num_threads(), "feature_extraction": []}
    # On CUDA, PyTorch's default f32 convolutions use TF32 tensor cores
    # (torch.backends.cudnn.allow_tf32 defaults to True): that is "tf32" here; "f32" turns it off.
    for dtype in (["f32", "tf32", "bf16"] if dev.type == "cuda" else ["f32"]):
        if dev.type == "cuda":
            torch.backends.cudnn.allow_tf32 = dtype != "f32"
            torch.backends.cuda.matmul.allow_tf32 = dtype == "tf32"
        out["feature_extraction"].append({"batch": batch, "dtype": dtype,
                                          "images_per_sec": extract(model, dev, batch, a.batches, a.size,
                                                                    "bf16" if dtype == "bf16" else "f32")})
    if dev.type == "cuda":
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = True, False
    if a.fine_tune_batch:
        out["fine_tune_step"] = {"batch": a.fine_tune_batch, "trainable_blocks": a.fine_tune_blocks,
                                 "images_per_sec": fine_tune(model, dev, a.fine_tune_batch, a.fine_tune_blocks,
                                                             a.fine_tune_steps, a.size)}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
