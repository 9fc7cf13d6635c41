#!/usr/bin/env bash
# The Python environment of the Core ML checker: the project's .venv (scripts/python-env.sh) plus
# the pinned packages of tests/coreml/requirements.txt. Prints the python; registry access (PyPI)
# needed the first time. scripts/test exports it as LATHE_COREML_PYTHON.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
python="$("$root/scripts/python-env.sh")"
if ! "$python" -c "import coremltools, numpy, PIL, google.protobuf" 2>/dev/null; then
  "$python" -m pip install -q --disable-pip-version-check -r "$root/tests/coreml/requirements.txt" >&2
fi
echo "$python"
