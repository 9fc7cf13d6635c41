"""Runs the Lathe CLI for the quality suite: finds the binary (env LATHE, else target/release/lathe,
else target/debug/lathe, else the same as lathe-cli), trains a template with its defaults (`lathe train --json`, events kept in the
run folder's log), and collects per-example test predictions with `lathe predict --json`."""
import json
import os
import subprocess
import time
from pathlib import Path

from common import ROOT

BATCH = 400  # files per `lathe predict` call
TIMEOUT = 3600


def find_binary():
    env = os.environ.get("LATHE")
    if env:
        if not Path(env).is_file():
            raise SystemExit(f"LATHE={env} does not exist")
        return env
    for p in (ROOT / "target/release/lathe", ROOT / "target/debug/lathe",
              ROOT / "target/release/lathe-cli", ROOT / "target/debug/lathe-cli"):
        if p.is_file():
            return str(p)
    raise SystemExit("no lathe binary: build it (cargo build --release) or set LATHE=/path/to/lathe")


def version(lathe):
    r = subprocess.run([lathe, "--version"], capture_output=True, text=True)
    return (r.stdout or r.stderr).strip()


def _run(cmd, log: Path):
    with open(log, "a") as f:
        f.write("$ " + " ".join(cmd) + "\n")
        f.flush()
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=f, text=True, timeout=TIMEOUT)
        f.write(r.stdout)
    if r.returncode != 0:
        raise RuntimeError(f"`{' '.join(cmd[:3])} …` exited {r.returncode} (log: {log})")
    return r.stdout


def train(lathe, template, data: Path, run_dir: Path, work: Path, target=None):
    """Trains with defaults into run_dir (a fresh feature cache, so times are cold); seconds."""
    cmd = [lathe, "train", "--template", template, "--data", str(data), "--out", str(run_dir),
           "--json", "--cache-dir", str(work / "lathe-cache")]
    if target:
        cmd += ["--target", target]
    t = time.time()
    _run(cmd, work / "lathe.log")
    return time.time() - t


def _objects(stdout):
    return [json.loads(line) for line in stdout.splitlines() if line.strip().startswith("{")]


def predict_objects(lathe, run_dir: Path, files, work: Path):
    """`lathe predict --json`'s object per file, in the order given."""
    got = {}
    for i in range(0, len(files), BATCH):
        batch = [str(f) for f in files[i:i + BATCH]]
        for o in _objects(_run([lathe, "predict", str(run_dir), *batch, "--json", "--top", "1"],
                               work / "lathe.log")):
            got[o["input"]] = o
    missing = [str(f) for f in files if str(f) not in got]
    if missing:
        raise RuntimeError(f"lathe predict gave no answer for {len(missing)} inputs, e.g. {missing[0]}")
    return [got[str(f)] for f in files]


def predict_files(lathe, run_dir: Path, files, work: Path, multilabel=False):
    """Predicted label per file, in the order given (multi-label: the labels joined by ';',
    sorted)."""
    objs = predict_objects(lathe, run_dir, files, work)
    return [";".join(sorted(o["labels"])) if multilabel else o["label"] for o in objs]


def predict_table(lathe, run_dir: Path, csv: Path, n_rows, work: Path, regress):
    """Predicted label (or value) per data row of csv (row i is line i + 2)."""
    got = {}
    for o in _objects(_run([lathe, "predict", str(run_dir), str(csv), "--json", "--top", "1"],
                           work / "lathe.log")):
        line = int(str(o["input"]).rsplit(":", 1)[1])
        got[line - 2] = o["value"] if regress else o["label"]
    if len(got) != n_rows:
        raise RuntimeError(f"lathe predict answered {len(got)} of {n_rows} rows of {csv}")
    return [got[i] for i in range(n_rows)]
