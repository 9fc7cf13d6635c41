"""Activity recordings for the quality suite. No real accelerometer set ships in a registry
package we can reach offline, so this set is SYNTHETIC: `generate` (also `scripts/gen-activity.py`)
draws seeded 50 Hz sessions of walking, running, sitting, standing and stairs from periodic gait
models (per-subject cadence, amplitude and harmonics; a lateral sway at half the cadence; stairs
with a larger, asymmetric vertical push), posture-dependent gravity, a random per-session device
orientation (rotation of up to 35° about a random axis), and sensor noise."""
from pathlib import Path

import numpy as np

ACTIVITIES = ["running", "sitting", "standing", "stairs", "walking"]
COLUMNS = ["timestamp", "acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z"]
RATE = 50.0


def _rotation(rng, max_angle):
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis) + 1e-12
    a = rng.uniform(-max_angle, max_angle)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(a) * k + (1 - np.cos(a)) * k @ k


def session(activity: str, n: int, subject: int, seed: int) -> np.ndarray:
    """One session: [n, 7] (timestamp in seconds, acc m/s², gyro rad/s)."""
    subj = np.random.default_rng(10_000 + subject)  # per-subject traits
    rng = np.random.default_rng(seed)
    t = np.arange(n) / RATE
    cad_scale, amp_scale = subj.uniform(0.85, 1.15), subj.uniform(0.75, 1.3)
    h2, h3 = subj.uniform(0.2, 0.5), subj.uniform(0.05, 0.25)
    cadence, amp = {"walking": (1.85, 2.3), "running": (2.75, 6.5), "stairs": (1.6, 3.2)}.get(activity, (0.0, 0.0))
    cadence *= cad_scale * rng.uniform(0.95, 1.05)
    amp *= amp_scale * rng.uniform(0.9, 1.1)
    tilt = rng.uniform(1.1, 1.45) if activity == "sitting" else rng.uniform(0.0, 0.25)
    yaw = rng.uniform(-np.pi, np.pi)
    g = 9.81 * np.array([np.sin(tilt) * np.cos(yaw), np.sin(tilt) * np.sin(yaw), np.cos(tilt)])
    ph = rng.uniform(0, 2 * np.pi)
    w = 2 * np.pi * cadence * t + ph
    vertical = amp * (np.sin(w) + h2 * np.sin(2 * w) + h3 * np.sin(3 * w + 0.5))
    if activity == "stairs":  # a push up every other step
        vertical += 0.6 * amp * np.clip(np.sin(0.5 * w), 0, None)
    lateral = 0.3 * amp * np.sin(0.5 * w)
    sway = {"standing": 0.15, "sitting": 0.05}.get(activity, 0.4) * np.sin(2 * np.pi * 0.3 * t + ph)
    acc = np.stack([lateral + sway, 0.2 * vertical + 0.5 * sway, vertical], axis=1) + g
    gyro = np.stack([0.3 * amp * np.cos(0.5 * w + 0.3), 0.2 * amp * np.cos(w) + 0.1 * sway,
                     0.1 * amp * np.sin(0.5 * w)], axis=1)
    r = _rotation(rng, np.deg2rad(35))
    acc, gyro = acc @ r.T, gyro @ r.T
    noise = rng.uniform(0.05, 0.2)
    acc += noise * rng.normal(size=acc.shape)
    gyro += 0.05 * rng.normal(size=gyro.shape)
    return np.column_stack([t, acc, gyro])


def write_folder(root: Path, sessions_per_class: int, n: int, subjects: range, seed: int):
    """root/<activity>/s<k>.csv, subjects drawn from `subjects` (so train and test can differ)."""
    rng = np.random.default_rng(seed)
    subj = list(subjects)
    for a, name in enumerate(ACTIVITIES):
        d = root / name
        d.mkdir(parents=True, exist_ok=True)
        for k in range(sessions_per_class):
            x = session(name, n, int(subj[rng.integers(len(subj))]), seed * 100_000 + a * 1000 + k)
            np.savetxt(d / f"s{k:03d}.csv", x, delimiter=",", header=",".join(COLUMNS), comments="",
                       fmt=["%.3f"] + ["%.5f"] * 6)


def synthetic_activities(out: Path, n_train: int, n_test: int):
    """Synthetic motion recordings (seeded gait models; 5 activities, 50 Hz, 8 s sessions; test
    sessions come from other subjects): no real accelerometer set is available offline."""
    per = len(ACTIVITIES)
    write_folder(out / "train", n_train // per, 400, range(0, 20), seed=1)
    write_folder(out / "test", n_test // per, 400, range(20, 30), seed=2)
