"""Writes every quality-suite dataset as Lathe reads it into .cache/quality/sets/<template>/<name>/
({train,test}/<class>/ folders, or train.csv + test.csv for tables); --smoke writes the tiny CI
variants into .cache/quality/smoke-sets/. The splits are fixed (seed 0, stratified). A set whose
folder holds a .done stamp with the same caps is kept. Needs benches/quality/fetch.sh first."""
import argparse
import sys
import time

from common import fresh_dir, sets_dir
from sets import selected


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--only", help="one template")
    a = ap.parse_args()
    for s, (n_train, n_test) in selected(a.smoke, a.only):
        out = sets_dir(a.smoke) / s.template / s.name
        stamp = out / ".done"
        want = f"{n_train} {n_test} v1"
        if stamp.exists() and stamp.read_text() == want:
            continue
        t = time.time()
        fresh_dir(out)
        s.prepare(out, n_train, n_test)
        stamp.write_text(want)
        print(f"prepare: {s.template}/{s.name} in {time.time() - t:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
