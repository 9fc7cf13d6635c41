"""The quality suite's runner: for each prepared set, fits the baselines and trains + predicts
with Lathe's defaults on the same split, scores both, bootstraps Δ, prints the table, and writes
benches/quality/results.json and docs/quality.md (full run of every template), else only
.cache/quality/results-*.json (--smoke, --only). Exits 1 if any step failed (never because Lathe loses to a baseline)."""
import argparse
import json
import os
import shutil
import sys
import time
import traceback
from pathlib import Path

import numpy as np
import pandas as pd

import baselines as B
import lathe_cli
import report
import stats
from common import CACHE, ROOT, sets_dir
from sets import ACT, IMG, MLI, OD, SND, TRG, TXT, selected
import detection

EXTS = {IMG: B.IMAGE_EXTS, TXT: {".txt"}, SND: B.SOUND_EXTS, ACT: {".csv"}}


def evaluate_detector(s, set_dir: Path, lathe: str, work: Path):
    """mAP@0.5 of Lathe's default detector and of the sliding-window baseline."""
    train, test = detection.load(set_dir / "train"), detection.load(set_dir / "test")
    classes = sorted({lab for _, bs in train for lab, _ in bs})
    gts = [bs for _, bs in test]
    row = {"template": s.template, "dataset": s.name, "data": "real" if s.real else "synthetic",
           "source": s.prepare.__doc__.strip().replace("\n", " "),
           "n_train": len(train), "n_test": len(test), "classes": len(classes), "majority": None}
    t = time.time()
    pb = detection.per_image(detection.baseline(train, test), gts, classes)
    best = {"name": "HOG-window-LR", "status": "ok", "secs": time.time() - t, "note": "",
            "score": detection.map50(pb, classes)}
    row["baselines"], row["best_baseline"] = [best], best
    run_dir = work / "run"
    trained = os.environ.get("LATHE_QUALITY_DETECTOR_RUN")
    if trained:
        # Trained elsewhere with the defaults (a GPU machine: 1.4 min per epoch on 2 CPU cores):
        # its run folder's own clock is the training time; prediction runs here.
        run_dir = Path(trained)
        events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines() if line.strip()]
        started = next(e for e in events if e.get("event") == "started")
        finished = next(e for e in events if e.get("event") == "finished")
        if finished["outcome"].get("status") != "completed":
            raise RuntimeError(f"{run_dir} did not complete: {finished['outcome']}")
        row["lathe_secs"] = float(finished["elapsed_secs"])
        row["note"] = f"Lathe trained with its defaults on `{started.get('device')}` (run folder {run_dir.name}; `LATHE_QUALITY_DETECTOR_RUN`), predicted here on the CPU"
    else:
        row["lathe_secs"] = lathe_cli.train(lathe, s.template, set_dir / "train", run_dir, work)
    t = time.time()
    objs = lathe_cli.predict_objects(lathe, run_dir, [p for p, _ in test], work)
    row["lathe_secs"] += time.time() - t
    dets = [[(b["label"], float(b["confidence"]), (b["x"] - b["width"] / 2, b["y"] - b["height"] / 2,
                                                  b["x"] + b["width"] / 2, b["y"] + b["height"] / 2))
             for b in o.get("boxes", [])] for o in objs]
    pa = detection.per_image(dets, gts, classes)
    row["lathe_score"] = detection.map50(pa, classes)
    row["delta"] = detection.paired_delta(pa, pb, classes)
    return row


def evaluate(s, set_dir: Path, lathe: str, work: Path):
    if s.template == OD:
        return evaluate_detector(s, set_dir, lathe, work)
    classify = s.template != TRG
    row = {"template": s.template, "dataset": s.name, "data": "real" if s.real else "synthetic",
           "source": s.prepare.__doc__.strip().replace("\n", " ")}
    if s.template == MLI:
        ftr, ytr = B.multilabel_items(set_dir / "train")
        fte, yte = B.multilabel_items(set_dir / "test")
        bases = B.multilabel_baselines(set_dir, lathe, work)
    elif s.template in EXTS:
        ftr, ytr = B.folder_items(set_dir / "train", EXTS[s.template])
        fte, yte = B.folder_items(set_dir / "test", EXTS[s.template])
        kw = {"set_dir": set_dir, "lathe": lathe, "work": work}
        bases = {IMG: B.image_baselines, TXT: B.text_baselines, SND: B.sound_baselines,
                 ACT: B.activity_baselines}[s.template](**kw)
    else:
        train, test = pd.read_csv(set_dir / "train.csv"), pd.read_csv(set_dir / "test.csv")
        ytr = train[s.target].astype(str).to_numpy() if classify else train[s.target].to_numpy(float)
        yte = test[s.target].astype(str).to_numpy() if classify else test[s.target].to_numpy(float)
        bases = B.table_baselines(set_dir, s.target, classify)
    row.update(n_train=len(ytr), n_test=len(yte), classes=len(set(ytr)) if classify else None)
    if classify:
        vals, counts = np.unique(ytr, return_counts=True)
        row["majority"] = stats.accuracy(yte, np.full(len(yte), vals[np.argmax(counts)]))
    else:
        row["majority"] = stats.r2(yte, np.full(len(yte), ytr.mean()))
    score = stats.accuracy if classify else stats.r2
    row["baselines"] = []
    for b in bases:
        d = {"name": b.name, "status": b.status, "secs": b.secs, "note": b.note, **b.info}
        if b.status == "ok":
            d["score"] = score(yte, b.pred if classify else b.pred.astype(float))
            d["_pred"] = b.pred
        row["baselines"].append(d)
    ok = [d for d in row["baselines"] if d["status"] == "ok"]
    if not ok:
        raise RuntimeError("no baseline finished")
    best = max(ok, key=lambda d: d["score"])
    row["best_baseline"] = best
    run_dir = work / "run"
    row["lathe_secs"] = lathe_cli.train(lathe, s.template, set_dir / ("train.csv" if s.target else "train"),
                                        run_dir, work, s.target)
    t = time.time()
    if s.target:
        pred = lathe_cli.predict_table(lathe, run_dir, set_dir / "test.csv", len(yte), work, not classify)
    else:
        pred = lathe_cli.predict_files(lathe, run_dir, fte, work, multilabel=s.template == MLI)
    row["lathe_secs"] += time.time() - t
    pred = np.asarray(pred) if classify else np.asarray(pred, float)
    row["lathe_score"] = score(yte, pred)
    row["delta"] = stats.paired_delta(yte, pred, best["_pred"], classify)
    return row


def merge_into_full(template, rows, meta):
    """Replaces one template's rows in benches/quality/results.json (the last full run) with a
    re-run's and rewrites docs/quality.md; the re-run's command, date and commit are listed."""
    path = ROOT / "benches/quality/results.json"
    if not path.exists():
        return
    full = json.loads(path.read_text())
    merged, placed = [], False
    for r in full["rows"]:
        if r["template"] == template:
            if not placed:
                merged += rows
                placed = True
        else:
            merged.append(r)
    if not placed:
        merged += rows
    full["meta"].setdefault("reruns", {})[template] = meta
    full["rows"] = merged
    path.write_text(json.dumps(full, indent=1, default=float))
    report.write_markdown(ROOT / "docs/quality.md", merged, full["meta"])
    print(f"quality: {template} rows merged into {path} and docs/quality.md", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--only", help="one template")
    ap.add_argument("--keep-runs", action="store_true", help="keep Lathe's run folders")
    a = ap.parse_args()
    lathe = lathe_cli.find_binary()
    started = time.time()
    rows, failed = [], 0
    for s, _ in selected(a.smoke, a.only):
        set_dir = sets_dir(a.smoke) / s.template / s.name
        work = CACHE / "work" / ("smoke" if a.smoke else "full") / s.template / s.name
        if work.exists():
            shutil.rmtree(work)
        work.mkdir(parents=True)
        t = time.time()
        try:
            row = evaluate(s, set_dir, lathe, work)
            if any(b["status"] == "failed" for b in row["baselines"]):
                failed += 1
        except Exception as e:
            traceback.print_exc()
            failed += 1
            row = {"template": s.template, "dataset": s.name, "data": "real" if s.real else "synthetic",
                   "source": (s.prepare.__doc__ or "").strip(), "error": f"{type(e).__name__}: {e}"}
        print(f"quality: {s.template}/{s.name} done in {time.time() - t:.0f} s: "
              f"{row.get('lathe_score', row.get('error'))}", file=sys.stderr, flush=True)
        shutil.rmtree(work / "lathe-cache", ignore_errors=True)
        if not a.keep_runs:
            shutil.rmtree(work / "run", ignore_errors=True)
        rows.append(row)
    print(report.table(rows))
    print(report.notes(rows))
    import sklearn
    meta = {"command": "benches/quality/run.sh" + (" --smoke" if a.smoke else "") + (f" --only {a.only}" if a.only else ""),
            "date": report.now(), "machine": report.machine(), "lathe": str(Path(lathe).relative_to(ROOT)) if Path(lathe).is_relative_to(ROOT) else lathe,
            "lathe_version": lathe_cli.version(lathe), "commit": report.git_commit(),
            "sklearn": sklearn.__version__, "resamples": stats.RESAMPLES, "total_secs": time.time() - started}
    for r in rows:
        for b in r.get("baselines", []):
            b.pop("_pred", None)
    full = not a.smoke and not a.only
    out = ROOT / "benches/quality/results.json" if full else \
        CACHE / f"results-{'smoke' if a.smoke else 'full'}{'-' + a.only if a.only else ''}.json"
    out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1, default=float))
    if full:
        report.write_markdown(ROOT / "docs/quality.md", rows, meta)
    elif a.only and not a.smoke and not failed:
        merge_into_full(a.only, rows, meta)
    print(f"quality: {len(rows)} sets, {failed} failed, {meta['total_secs']:.0f} s; results in {out}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
