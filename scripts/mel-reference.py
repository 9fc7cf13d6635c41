#!/usr/bin/env python3
"""Writes engine/tests/data/mel_golden.json: the log-mel front end computed independently with
numpy in float64 (librosa-style: librosa.filters.mel(sr=16000, n_fft=512, n_mels=64, fmin=125,
fmax=7500, htk=True, norm=None) on the power spectrum of periodic-Hann 400-sample frames, hop 160,
no centering, zero-padded at the end to 512, then ln(mel + 1e-6)), for a deterministic test signal
that engine/tests/sound_frontend.rs regenerates. Run once: scripts/python-env.sh gives numpy.
Usage: $(scripts/python-env.sh) scripts/mel-reference.py"""
import json, os
import numpy as np

SR, WIN, HOP, NFFT, NMELS, FMIN, FMAX = 16000, 400, 160, 512, 64, 125.0, 7500.0

def signal(n):
    t = np.arange(n, dtype=np.float64) / SR
    x = 0.3 * np.sin(2 * np.pi * 440 * t)
    x += 0.2 * np.sin(2 * np.pi * 2500 * t + 0.5)
    x += 0.1 * np.sin(2 * np.pi * (100 * t + 1500 * t * t))  # chirp 100 Hz → 6.1 kHz over 2 s
    x *= 0.5 + 0.5 * np.sin(2 * np.pi * 1.5 * t)  # slow amplitude envelope
    return x

def hz_to_mel(f):
    return 2595.0 * np.log10(1.0 + f / 700.0)

def mel_to_hz(m):
    return 700.0 * (10.0 ** (m / 2595.0) - 1.0)

def filterbank():
    fftfreqs = np.arange(NFFT // 2 + 1) * SR / NFFT
    mel_f = mel_to_hz(np.linspace(hz_to_mel(FMIN), hz_to_mel(FMAX), NMELS + 2))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fftfreqs[None, :]
    w = np.zeros((NMELS, len(fftfreqs)))
    for i in range(NMELS):
        lower = -ramps[i] / fdiff[i]
        upper = ramps[i + 2] / fdiff[i + 1]
        w[i] = np.maximum(0, np.minimum(lower, upper))
    return w

def log_mel(x):
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(WIN) / WIN)
    n_frames = 1 + (len(x) - WIN) // HOP
    fb = filterbank()
    out = []
    for i in range(n_frames):
        frame = np.zeros(NFFT)
        frame[:WIN] = x[i * HOP:i * HOP + WIN] * window
        power = np.abs(np.fft.rfft(frame)) ** 2
        out.append(np.log(fb @ power + 1e-6))
    return np.array(out)

x = signal(32000)
m = log_mel(x)
frames = [0, 1, 37, 100, 150, len(m) - 1]
golden = {
    "signal": "0.3 sin(2π 440 t) + 0.2 sin(2π 2500 t + 0.5) + 0.1 sin(2π (100 t + 1500 t²)), times (0.5 + 0.5 sin(2π 1.5 t)), t = n / 16000, n < 32000",
    "num_frames": int(len(m)),
    "frames": {str(i): [round(float(v), 5) for v in m[i]] for i in frames},
}
path = os.path.join(os.path.dirname(__file__), "..", "engine", "tests", "data", "mel_golden.json")
with open(path, "w") as f:
    json.dump(golden, f, indent=1)
print(f"wrote {path}: {len(m)} frames, {len(frames)} kept")
