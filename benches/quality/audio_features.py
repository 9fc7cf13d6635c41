"""Numpy-only clip statistics for the sound baseline: decode (soundfile), mono, resample to
16 kHz, 64-band log-mel (25 ms window, 10 ms hop) and 20 MFCCs; a clip becomes the mean and
standard deviation over time of each (168 numbers)."""
import numpy as np

RATE, N_FFT, HOP, N_MELS, N_MFCC = 16000, 400, 160, 64, 20


def _mel_filters():
    def hz2mel(f):
        return 2595 * np.log10(1 + f / 700)

    def mel2hz(m):
        return 700 * (10 ** (m / 2595) - 1)
    pts = mel2hz(np.linspace(hz2mel(0), hz2mel(RATE / 2), N_MELS + 2))
    bins = np.fft.rfftfreq(N_FFT, 1 / RATE)
    fb = np.zeros((N_MELS, len(bins)))
    for i in range(N_MELS):
        lo, c, hi = pts[i], pts[i + 1], pts[i + 2]
        fb[i] = np.clip(np.minimum((bins - lo) / (c - lo), (hi - bins) / (hi - c)), 0, None)
    return fb


FILTERS = _mel_filters()
DCT = np.cos(np.pi / N_MELS * (np.arange(N_MELS) + 0.5)[None, :] * np.arange(N_MFCC)[:, None])


def load(path):
    import soundfile as sf
    from scipy.signal import resample_poly
    x, rate = sf.read(str(path), always_2d=True, dtype="float32")
    x = x.mean(axis=1)
    if rate != RATE:
        g = np.gcd(int(rate), RATE)
        x = resample_poly(x, RATE // g, int(rate) // g).astype(np.float32)
    if len(x) < N_FFT:
        x = np.pad(x, (0, N_FFT - len(x)))
    return x


def clip_stats(path):
    x = load(path)
    n = 1 + (len(x) - N_FFT) // HOP
    frames = np.lib.stride_tricks.as_strided(x, (n, N_FFT), (x.strides[0] * HOP, x.strides[0]))
    spec = np.abs(np.fft.rfft(frames * np.hanning(N_FFT), axis=1)) ** 2
    logmel = np.log(spec @ FILTERS.T + 1e-10)
    mfcc = logmel @ DCT.T
    return np.concatenate([logmel.mean(0), logmel.std(0), mfcc.mean(0), mfcc.std(0)])
