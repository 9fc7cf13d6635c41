#!/usr/bin/env bash
# Creates (once) the project's Python virtual environment in .venv with the packages Lathe's
# scripts and checkers use, and prints its python. Registry access (PyPI) needed the first time.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="$root/.venv"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv" >&2
fi
if ! "$venv/bin/python" -c "import numpy, safetensors" 2>/dev/null; then
  "$venv/bin/python" -m pip install -q --disable-pip-version-check "numpy>=1.26" "safetensors>=0.4" >&2
fi
echo "$venv/bin/python"
