#!/usr/bin/env python3
"""Writes a SYNTHETIC activity-classifier dataset (seeded gait models; see
benches/quality/prep_activity.py): OUT/train/<activity>/*.csv and OUT/test/<activity>/*.csv.
usage: scripts/gen-activity.py OUT [--train-sessions N] [--test-sessions N] (numpy only)"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benches" / "quality"))
import prep_activity  # noqa: E402

ap = argparse.ArgumentParser(description=__doc__)
ap.add_argument("out", type=Path)
ap.add_argument("--train-sessions", type=int, default=200)
ap.add_argument("--test-sessions", type=int, default=100)
a = ap.parse_args()
prep_activity.synthetic_activities(a.out, a.train_sessions, a.test_sessions)
print(a.out)
