#!/usr/bin/env bash
# Checks a Core ML export against the engine, numerically (there is no Core ML runtime on Linux):
#   lathe predict MODEL_DIR img1.png img2.png ... --json --top 1000 > preds.jsonl
#   scripts/coreml-check.sh model.mlmodel preds.jsonl [--tolerance 1e-4] [--min-inputs 20]
# The images must already be at the model's input size (e.g. 224x224) so that no resizing can
# differ. Table models: add --table ROWS.csv (the table that was predicted); text models:
# --vectors TERMS.jsonl (the engine's term counts); multi-label images: --multi-label. Prints one JSON object; exit 0 when the Core ML model agrees with the engine.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
python="${LATHE_COREML_PYTHON:-$("$root/scripts/coreml-env.sh")}"
exec "$python" "$root/tests/coreml/check.py" "$@"
