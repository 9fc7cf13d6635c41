"""Reads a safetensors file into a dict of torch tensors with only the standard library, numpy
and torch (no `safetensors` package needed on the GPU machine)."""
import json
import struct

import numpy as np
import torch

DTYPES = {"F32": np.float32, "F16": np.float16, "I64": np.int64, "F64": np.float64}


def load(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        a, b = meta["data_offsets"]
        arr = np.frombuffer(data[a:b], dtype=DTYPES[meta["dtype"]]).reshape(meta["shape"])
        out[name] = torch.from_numpy(arr.copy())
    return out


def mobilenet_v2(path, num_classes=None):
    """torchvision's MobileNetV2 with Lathe's embedded weights (the same ImageNet weights)."""
    import torchvision

    model = torchvision.models.mobilenet_v2(weights=None)
    state = load(path)
    state["features.0.0.weight"]  # fail early when the file is not MobileNetV2
    model.load_state_dict({k: v for k, v in state.items()}, strict=True)
    if num_classes is not None:
        model.classifier[1] = torch.nn.Linear(1280, num_classes)
    return model
