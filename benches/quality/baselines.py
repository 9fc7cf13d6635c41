"""Standard scikit-learn baselines of the quality suite, fitted on exactly the train split Lathe
gets and applied to its test split. Each returns a list of Baseline results (per-example test
predictions for the paired bootstrap, or status "pending"/"failed" with the reason)."""
import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

CS = np.logspace(-4, 3, 8)  # the C grid of every LogisticRegressionCV (5-fold)


@dataclass
class Baseline:
    name: str
    status: str = "ok"          # ok | pending | failed
    pred: np.ndarray | None = None
    secs: float = 0.0
    note: str = ""
    info: dict = field(default_factory=dict)


def folder_items(split_dir: Path, exts):
    """(files, labels) of a class-folder split, sorted."""
    files, labels = [], []
    for d in sorted(p for p in split_dir.iterdir() if p.is_dir()):
        for f in sorted(d.iterdir()):
            if f.suffix.lower() in exts:
                files.append(f)
                labels.append(d.name)
    return files, np.array(labels)


def _lr_cv(xtr, ytr, xte, scale=True):
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    lr = LogisticRegressionCV(Cs=CS, cv=5, max_iter=3000, n_jobs=2)
    model = make_pipeline(StandardScaler(), lr) if scale else lr
    model.fit(xtr, ytr)
    return model.predict(xte), {"C": float(np.atleast_1d(lr.C_)[0])}


def _timed(name, fn):
    t = time.time()
    try:
        pred, info = fn()
        return Baseline(name, pred=np.asarray(pred), secs=time.time() - t, info=info)
    except Exception as e:  # a failed baseline is reported, never dropped
        return Baseline(name, status="failed", secs=time.time() - t, note=f"{type(e).__name__}: {e}")


IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


def image_baselines(set_dir: Path, lathe: str | None, work: Path):
    from PIL import Image
    ftr, ytr = folder_items(set_dir / "train", IMAGE_EXTS)
    fte, _ = folder_items(set_dir / "test", IMAGE_EXTS)

    def pixels(files):
        return np.stack([np.asarray(Image.open(f).convert("L").resize((16, 16), Image.BILINEAR),
                                    np.float32).ravel() / 255 for f in files])
    out = [_timed("pixels16-LR", lambda: _lr_cv(pixels(ftr), ytr, pixels(fte)))]
    out.append(_backbone_lr(set_dir, lathe, work, ftr, ytr, fte))
    # The same baseline on every other backbone `backbone = auto` may choose from (installed in
    # the weights folder): the best of them on test is the bar, which flatters the baseline.
    for backbone, weights in installed_backbones():
        out.append(_backbone_lr(set_dir, lathe, work, ftr, ytr, fte, backbone=backbone, weights=weights))
    return out


def installed_backbones():
    """(id, weights file) of the optional backbones installed in $LATHE_WEIGHTS_DIR."""
    folder = os.environ.get("LATHE_WEIGHTS_DIR")
    if not folder:
        return []
    return [(b, Path(folder) / f"{b}.safetensors") for b in ("efficientnet_lite0", "efficientnet_lite2")
            if (Path(folder) / f"{b}.safetensors").is_file()]


def _lathe_features(lathe, data: Path, out_csv: Path, backbone="mobilenet_v2", weights=None):
    import pandas as pd
    extra = ["--backbone", backbone] + (["--weights", str(weights)] if weights else [])
    r = subprocess.run([lathe, "features", "--data", str(data), "--out", str(out_csv)] + extra,
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError((r.stderr or r.stdout).strip().splitlines()[-1] if (r.stderr or r.stdout).strip() else f"exit {r.returncode}")
    df = pd.read_csv(out_csv)
    return df


def _backbone_lr(set_dir, lathe, work, ftr, ytr, fte, fit_fn=None, backbone="mobilenet_v2", weights=None):
    name = {"mobilenet_v2": "mobilenetv2", "efficientnet_lite0": "effnet-lite0",
            "efficientnet_lite2": "effnet-lite2"}.get(backbone, backbone) + "-features-LR"
    if lathe is None:
        return Baseline(name, status="pending", note="no lathe binary")
    probe = subprocess.run([lathe, "features", "--help"], capture_output=True, text=True)
    if probe.returncode != 0:
        return Baseline(name, status="pending", note="`lathe features` not in this binary yet")

    def fit():
        dtr = _lathe_features(lathe, set_dir / "train", work / f"features-{backbone}-train.csv", backbone, weights)
        dte = _lathe_features(lathe, set_dir / "test", work / f"features-{backbone}-test.csv", backbone, weights)
        fcols = [c for c in dtr.columns if c.startswith("f") and c[1:].isdigit()]
        key = lambda p: str(Path(p).resolve())  # noqa: E731
        tr = dtr.set_index(dtr["path"].map(key)).loc[[key(f) for f in ftr]]
        te = dte.set_index(dte["path"].map(key)).loc[[key(f) for f in fte]]
        return (fit_fn or _lr_cv)(tr[fcols].to_numpy(np.float32), ytr, te[fcols].to_numpy(np.float32))
    return _timed(name, fit)


def multilabel_items(split_dir: Path):
    """(files, canonical label strings 'a;b' sorted) of a multi-label folder's labels.csv."""
    import csv
    with open(split_dir / "labels.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return ([split_dir / r["image"] for r in rows],
            np.array([";".join(sorted(x for x in r["labels"].split(";") if x)) for r in rows]))


def _ovr_lr_cv(xtr, ytr, xte):
    """One standardized LogisticRegressionCV per label; a label is predicted at p >= 0.5."""
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.preprocessing import StandardScaler
    labels = sorted({lab for s in ytr for lab in s.split(";") if lab})
    sc = StandardScaler().fit(xtr)
    xtr, xte = sc.transform(xtr), sc.transform(xte)
    on = np.zeros((len(xte), len(labels)), bool)
    for j, lab in enumerate(labels):
        t = np.array([lab in s.split(";") for s in ytr])
        on[:, j] = LogisticRegressionCV(Cs=CS, cv=5, max_iter=3000, n_jobs=2).fit(xtr, t).predict_proba(xte)[:, 1] >= 0.5
    return np.array([";".join(lab for lab, o in zip(labels, row) if o) for row in on]), {}


def multilabel_baselines(set_dir: Path, lathe: str | None, work: Path):
    from PIL import Image
    ftr, ytr = multilabel_items(set_dir / "train")
    fte, _ = multilabel_items(set_dir / "test")

    def pixels(files):
        return np.stack([np.asarray(Image.open(f).convert("L").resize((28, 28), Image.BILINEAR),
                                    np.float32).ravel() / 255 for f in files])
    return [_timed("pixels28-perlabel-LR", lambda: _ovr_lr_cv(pixels(ftr), ytr, pixels(fte))),
            _backbone_lr(set_dir, lathe, work, ftr, ytr, fte, fit_fn=_ovr_lr_cv)]


def text_baselines(set_dir: Path, **_):
    from sklearn.feature_extraction.text import TfidfVectorizer
    ftr, ytr = folder_items(set_dir / "train", {".txt"})
    fte, _ = folder_items(set_dir / "test", {".txt"})

    def fit():
        read = lambda fs: [f.read_text(encoding="utf-8", errors="replace") for f in fs]  # noqa: E731
        vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2)
        xtr = vec.fit_transform(read(ftr))
        return _lr_cv(xtr, ytr, vec.transform(read(fte)), scale=False)
    return [_timed("tfidf12-LR", fit)]


SOUND_EXTS = {".wav", ".flac", ".mp3", ".ogg", ".m4a"}


def sound_baselines(set_dir: Path, **_):
    from audio_features import clip_stats
    ftr, ytr = folder_items(set_dir / "train", SOUND_EXTS)
    fte, _ = folder_items(set_dir / "test", SOUND_EXTS)

    def fit():
        xtr = np.stack([clip_stats(f) for f in ftr])
        return _lr_cv(xtr, ytr, np.stack([clip_stats(f) for f in fte]))
    return [_timed("logmel-mfcc-stats-LR", fit)]


def _table_parts(train, target):
    x = train.drop(columns=[target]).copy()
    cats = [c for c in x.columns if x[c].dtype == object or x[c].dtype == bool]
    nums = [c for c in x.columns if c not in cats]
    return x, cats, nums


def table_baselines(set_dir: Path, target: str, classify: bool, **_):
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import (HistGradientBoostingClassifier as HGBC,
                                  HistGradientBoostingRegressor as HGBR)
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler
    train = pd.read_csv(set_dir / "train.csv", keep_default_na=True)
    test = pd.read_csv(set_dir / "test.csv", keep_default_na=True)
    xtr, cats, nums = _table_parts(train, target)
    xte = test[xtr.columns].copy()
    ytr = train[target].astype(str) if classify else train[target].astype(float)
    for c in cats:
        xtr[c], xte[c] = xtr[c].astype(str).where(xtr[c].notna()), xte[c].astype(str).where(xte[c].notna())

    def hgb():
        enc = ColumnTransformer([("cat", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan,
                                                        encoded_missing_value=np.nan, max_categories=250), cats)],
                                remainder="passthrough", verbose_feature_names_out=False)
        mask = [True] * len(cats) + [False] * len(nums)
        est = (HGBC if classify else HGBR)(categorical_features=mask, random_state=0)
        m = make_pipeline(enc, est).fit(xtr, ytr)
        return m.predict(xte), {}

    def linear():
        enc = ColumnTransformer([
            ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), nums),
            ("cat", make_pipeline(SimpleImputer(strategy="constant", fill_value="missing"),
                                  OneHotEncoder(handle_unknown="ignore")), cats)])
        est = LogisticRegression(max_iter=3000) if classify else Ridge()
        m = make_pipeline(enc, est).fit(xtr, ytr)
        return m.predict(xte), {}
    return [_timed("HistGB", hgb), _timed("LogReg" if classify else "Ridge", linear)]


def activity_baselines(set_dir: Path, **_):
    """Per-window statistics (as Lathe's: per channel and per x/y/z magnitude mean, std, min,
    max, energy, lag-1 autocorrelation; windows of 100 samples every 50) + scikit-learn's
    HistGradientBoostingClassifier on the same session split; a session's answer is the mean of
    its windows' probabilities."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    ftr, ytr = folder_items(set_dir / "train", {".csv"})
    fte, _ = folder_items(set_dir / "test", {".csv"})

    def windows(f, w=100, hop=50):
        x = np.loadtxt(f, delimiter=",", skiprows=1)[:, 1:]
        starts = list(range(0, len(x) - w + 1, hop))
        if starts and starts[-1] + w < len(x):
            starts.append(len(x) - w)
        return [x[s:s + w] for s in starts]

    def stats(win):
        series = [win[:, c] for c in range(win.shape[1])]
        series += [np.linalg.norm(win[:, g:g + 3], axis=1) for g in (0, 3)]
        out = []
        for s in series:
            m, v = s.mean(), s.var()
            ac = ((s[:-1] - m) * (s[1:] - m)).sum() / (len(s) * v) if v > 1e-12 else 0.0
            out += [m, np.sqrt(v), s.min(), s.max(), (s * s).mean(), ac]
        return out

    def fit():
        xs, ys = [], []
        for f, y in zip(ftr, ytr):
            for w in windows(f):
                xs.append(stats(w))
                ys.append(y)
        clf = HistGradientBoostingClassifier(random_state=0).fit(np.array(xs), np.array(ys))
        pred = []
        for f in fte:
            p = clf.predict_proba(np.array([stats(w) for w in windows(f)])).mean(axis=0)
            pred.append(clf.classes_[int(np.argmax(p))])
        return np.array(pred), {"windows": len(xs)}
    return [_timed("window-stats-HGB", fit)]
