#!/usr/bin/env python3
"""Reference for the end-to-end time-to-model benchmark: what `lathe train --template
image-classifier --data TRAIN --test TEST` does, in PyTorch/torchvision with the same steps and
defaults — ImageFolder + DataLoader (decode, resize to 224, ImageNet normalization), frozen
MobileNetV2 (Lathe's weights; bf16 autocast on GPU like Lathe's `precision = auto`, f32 on CPU)
→ pooled features, 10% stratified-by-chance validation split, standardized features, a
logistic head with AdamW (lr 1e-3, weight decay 1e-4, batch 256, warm-up + cosine, up to 100
epochs, early stopping after 10 epochs without validation-loss improvement), test accuracy.

usage: fmnist_e2e.py WEIGHTS TRAIN_DIR TEST_DIR [--device cuda|cpu] [--workers N]
Prints one JSON object with the wall time of each step and the test accuracy."""
import argparse, json, math, os, sys, time

import torch
import torchvision
from torchvision import transforms

sys.path.insert(0, os.path.dirname(__file__))
from st_weights import mobilenet_v2  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("weights")
    ap.add_argument("train")
    ap.add_argument("test")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--workers", type=int, default=os.cpu_count())
    ap.add_argument("--batch", type=int, default=0)
    a = ap.parse_args()
    t0 = time.perf_counter()
    dev = torch.device(a.device)
    batch = a.batch or (256 if dev.type == "cuda" else 32)
    tf = transforms.Compose([
        transforms.Resize((224, 224), antialias=True),
        transforms.ToTensor(),
        transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
    ])
    model = mobilenet_v2(a.weights).to(dev).eval().to(memory_format=torch.channels_last)
    low = torch.autocast(dev.type, dtype=torch.bfloat16) if dev.type == "cuda" else torch.autocast(dev.type, enabled=False)

    def extract(folder):
        ds = torchvision.datasets.ImageFolder(folder, transform=tf)
        dl = torch.utils.data.DataLoader(ds, batch_size=batch, num_workers=a.workers,
                                         pin_memory=dev.type == "cuda", persistent_workers=False)
        feats, labels = [], []
        with torch.no_grad(), low:
            for x, y in dl:
                x = x.to(dev, non_blocking=True).contiguous(memory_format=torch.channels_last)
                f = torch.nn.functional.adaptive_avg_pool2d(model.features(x), 1).flatten(1)
                feats.append(f.float())
                labels.append(y.to(dev))
        return torch.cat(feats), torch.cat(labels), ds.classes

    xtr, ytr, classes = extract(a.train)
    xte, yte, _ = extract(a.test)
    t_features = time.perf_counter() - t0

    g = torch.Generator().manual_seed(0)
    perm = torch.randperm(len(ytr), generator=g).to(dev)
    nval = int(round(0.1 * len(ytr)))
    val, tr = perm[:nval], perm[nval:]
    mean, std = xtr[tr].mean(0), xtr[tr].std(0).clamp_min(1e-6)
    norm = lambda x: (x - mean) / std
    head = torch.nn.Linear(1280, len(classes)).to(dev)
    opt = torch.optim.AdamW(head.parameters(), lr=1e-3, weight_decay=1e-4)
    steps_per_epoch = math.ceil(len(tr) / 256)
    total = steps_per_epoch * 100
    warm = max(1, min(steps_per_epoch, total // 10))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / warm if s < warm else 0.5 * (1 + math.cos(math.pi * (s - warm) / max(1, total - warm))))
    best, best_state, since, epochs = float("inf"), None, 0, 0
    for epoch in range(100):
        epochs += 1
        order = tr[torch.randperm(len(tr), generator=g).to(dev)]
        for i in range(0, len(order), 256):
            idx = order[i:i + 256]
            loss = torch.nn.functional.cross_entropy(head(norm(xtr[idx])), ytr[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        with torch.no_grad():
            vl = torch.nn.functional.cross_entropy(head(norm(xtr[val])), ytr[val]).item()
        if vl < best - 1e-6:
            best, since = vl, 0
            best_state = {k: v.clone() for k, v in head.state_dict().items()}
        else:
            since += 1
            if since >= 10:
                break
    head.load_state_dict(best_state)
    with torch.no_grad():
        acc = (head(norm(xte)).argmax(1) == yte).float().mean().item()
    total_s = time.perf_counter() - t0
    print(json.dumps({"reference": f"torch {torch.__version__}", "device": str(dev), "workers": a.workers,
                      "batch": batch, "train_images": len(ytr), "test_images": len(yte),
                      "features_secs": t_features, "head_epochs": epochs, "total_secs": total_s,
                      "test_accuracy": acc}))


if __name__ == "__main__":
    main()
