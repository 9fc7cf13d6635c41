"""Lathe's `algorithm = "auto"` against one scikit-learn HistGradientBoosting fit, side by side:
alternates `lathe train` (defaults, the whole run: reading the CSV, every candidate, the
ensemble, evaluation, writing the model) and `tabular.py … hgb` (the fit alone, as Issue 19's
goal counts it) `rounds` times, and prints each run and the medians as JSON lines: Lathe's wall
and CPU seconds (its process), its candidates' fit seconds from report.json, HGB's fit wall and
CPU seconds, and the ratio of the medians.

usage: python benches/reference/tabular_auto.py LATHE TRAIN.csv TEST.csv TARGET classify|regress [ROUNDS]"""
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def lathe_run(lathe, train, test, target, template):
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        cmd = [lathe, "train", "--template", template, "--data", train, "--test", test,
               "--target", target, "--out", str(out), "--json", "--cache-dir", str(Path(tmp) / "cache")]
        cpu, t = children_cpu(), time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wall, cpu = time.perf_counter() - t, children_cpu() - cpu
        report = json.loads((out / "report.json").read_text())
    board = {c["algorithm"]: round(c.get("fit_secs") or 0.0, 3) for c in report["leaderboard"]}
    chosen = [c["algorithm"] for c in report["leaderboard"] if c.get("chosen")]
    test_metrics = report["evaluation"].get("test", {})
    metric = test_metrics.get("accuracy", test_metrics.get("rmse"))
    return {"side": "lathe auto", "wall_secs": round(wall, 3), "cpu_secs": round(cpu, 3),
            "fit_secs": board, "chosen": chosen, "test": metric}


def hgb_run(train, test, target, mode):
    cmd = [sys.executable, str(HERE / "tabular.py"), train, test, target, mode, "hgb"]
    r = subprocess.run(cmd, check=True, capture_output=True, text=True)
    o = json.loads(r.stdout.strip().splitlines()[-1])
    return {"side": "sklearn hgb", "wall_secs": round(o["fit_secs"], 3),
            "cpu_secs": round(o["fit_cpu_secs"], 3), "test": o["value"]}


def main():
    lathe, train, test, target, mode = sys.argv[1:6]
    rounds = int(sys.argv[6]) if len(sys.argv) > 6 else 3
    template = "tabular-classifier" if mode == "classify" else "tabular-regressor"
    runs = {"lathe auto": [], "sklearn hgb": []}
    for _ in range(rounds):
        for r in (lathe_run(lathe, train, test, target, template), hgb_run(train, test, target, mode)):
            runs[r["side"]].append(r)
            print(json.dumps(r), flush=True)
    med = {side: {k: statistics.median(r[k] for r in rs) for k in ("wall_secs", "cpu_secs")}
           for side, rs in runs.items()}
    print(json.dumps({"median": med, "cores": len(os.sched_getaffinity(0)),
                      "ratio_wall": round(med["lathe auto"]["wall_secs"] / med["sklearn hgb"]["wall_secs"], 2)}))


if __name__ == "__main__":
    main()
