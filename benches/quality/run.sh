#!/usr/bin/env bash
# The quality suite's one command: fetch (pinned, sha256-checked) → prepare (fixed splits) → run
# (Lathe defaults vs scikit-learn baselines, paired bootstrap), printing the table and writing
# docs/quality.md + benches/quality/results.json. --smoke: tiny sets (CI), writes neither.
# --only TEMPLATE: one template (results in .cache/quality/results-full-TEMPLATE.json only).
# Lathe binary: $LATHE, else target/release/lathe, else target/debug/lathe.
# usage: benches/quality/run.sh [--only TEMPLATE] [--smoke]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) args+=(--smoke) ;;
    --only) args+=(--only "${2:?--only needs a template}"); shift ;;
    *) echo "usage: benches/quality/run.sh [--only TEMPLATE] [--smoke]" >&2; exit 2 ;;
  esac
  shift
done
python="$("$here/env.sh")"
"$here/fetch.sh"
# A full run gives `auto` every backbone and encoder the project can fetch offline, installed in
# the suite's own weights folder (the smoke run keeps whatever folder the caller set).
smoke=0
for a in "${args[@]+"${args[@]}"}"; do [ "$a" = --smoke ] && smoke=1; done
if [ "$smoke" = 0 ]; then
  export LATHE_WEIGHTS_DIR="$here/../../.cache/quality/weights"
  "$here/../../scripts/fetch-efficientnet-lite0.sh" >/dev/null
  "$here/../../scripts/fetch-efficientnet-lite2.sh" >/dev/null
  "$here/../../scripts/fetch-whisper-tiny.sh" >/dev/null
  "$here/../../scripts/fetch-yamnet.sh" >/dev/null
fi
cd "$here"
"$python" prepare.py "${args[@]}"
exec "$python" run.py "${args[@]}"
