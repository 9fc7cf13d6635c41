#!/usr/bin/env bash
# The Python environment of the ONNX checker (tests/onnx/check.py): the project's .venv
# (scripts/python-env.sh) plus the pinned packages of tests/onnx/requirements.txt (onnx for the
# full checker, ONNX Runtime to run the exports). Prints the python; registry access (PyPI)
# needed the first time. scripts/test exports it as LATHE_ONNX_PYTHON.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
python="$("$root/scripts/python-env.sh")"
if ! "$python" -c "import onnx, onnxruntime, numpy" 2>/dev/null; then
  "$python" -m pip install -q --disable-pip-version-check -r "$root/tests/onnx/requirements.txt" >&2
fi
echo "$python"
