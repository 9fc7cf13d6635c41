#!/usr/bin/env bash
# Measures a Core ML export of a trained image classifier against the engine on a labelled test
# folder (one subfolder per class): fp32 and fp16 file sizes, max |Δp| against `lathe predict`,
# and the accuracy of the engine, the fp32 and the fp16 model (numpy evaluator, tests/coreml).
# usage: scripts/coreml-measure.sh RUN_OR_MODEL_DIR TEST_DIR WORK_DIR   (LATHE=path/to/lathe)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
lathe="${LATHE:-lathe}"
model="$1"; test_dir="$2"; work="$3"
python="${LATHE_COREML_PYTHON:-$("$root/scripts/coreml-env.sh")}"
mkdir -p "$work"
size="$("$python" -c "import json,sys; print(json.load(open(sys.argv[1]))['image_size'])" \
  "$( [ -f "$model/config.json" ] && echo "$model/config.json" || echo "$model/model/config.json")")"
rm -rf "$work/inputs"
"$python" "$root/tests/coreml/resize_inputs.py" "$test_dir" "$work/inputs" "$size" > "$work/inputs.txt"
xargs -a "$work/inputs.txt" -d '\n' "$lathe" predict "$model" --json --top 100000 > "$work/preds.jsonl"
for precision in fp32 fp16; do
  "$lathe" export "$model" --format coreml --precision "$precision" --out "$work/$precision.mlmodel" --json
  tol=(); [ "$precision" = fp32 ] && tol=(--tolerance 1e-4)
  "$python" "$root/tests/coreml/check.py" "$work/$precision.mlmodel" "$work/preds.jsonl" \
    --truth-from-parent "${tol[@]}" --batch 8 2>/dev/null | tee "$work/$precision.json"
done
