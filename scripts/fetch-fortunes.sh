#!/usr/bin/env bash
# English fortunes by topic (Debian `fortunes` 1:1.99.1-7.3, BSD-style licence) as a CSV for
# Lathe's text classifier: OUT_DIR/{train,test}.csv (default data/fortunes) with columns
# text,label, one row per fortune of the 8 topic files computers, cookie, definitions, people,
# politics, science, songs-poems, work; every 5th fortune of each topic is in test (20 %).
# Prints OUT_DIR. Needs only apt-get download (no root) and python3.
# usage: scripts/fetch-fortunes.sh [OUT_DIR]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:-$root/data/fortunes}"
if [ -f "$out/test.csv" ]; then echo "$out"; exit 0; fi
deb_sha256="41d0551dc0ff52f875a2ecef7c39da2f672ab468c37e170119f7e0245a9d63c5"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download -q fortunes=1:1.99.1-7.3 >/dev/null 2>&1)
deb="$(ls "$work"/fortunes_*.deb)"
echo "$deb_sha256  $deb" | sha256sum -c --quiet - >&2 || { echo "error: checksum mismatch for $deb" >&2; exit 1; }
dpkg -x "$deb" "$work/root"
rm -rf "$out.tmp"
mkdir -p "$out.tmp"
python3 - "$work/root/usr/share/games/fortunes" "$out.tmp" <<'PY'
import csv, sys, pathlib
src, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
topics = ["computers", "cookie", "definitions", "people", "politics", "science", "songs-poems", "work"]
files = {s: open(out / f"{s}.csv", "w", newline="", encoding="utf-8") for s in ("train", "test")}
writers = {s: csv.writer(f) for s, f in files.items()}
for w in writers.values():
    w.writerow(["text", "label"])
for t in topics:
    text = (src / t).read_text(encoding="utf-8", errors="replace")
    records = [r.strip("%\n ") for r in text.split("\n%\n")]
    for i, record in enumerate(r for r in records if r):
        writers["test" if i % 5 == 4 else "train"].writerow([record, t])
for f in files.values():
    f.close()
PY
rm -rf "$out"
mv "$out.tmp" "$out"
echo "$out"
