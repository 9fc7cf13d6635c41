#!/usr/bin/env bash
# The sound classifier's benchmarks (docs/benchmarks.md, "## Sound"): generates the synthetic
# speech-commands and instrument sets (scripts/gen-*.sh) and trains on each, then measures the
# front end's throughput. Needs scripts/install-deps.sh. Results: runs/sound-*/report.json.
# Usage: scripts/bench-sound.sh [DATA_DIR]   (LATHE=path/to/lathe to use another build)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
data="${1:-$root/.cache/sound-bench}"
lathe="${LATHE:-$root/target/debug/lathe}"
"$root/scripts/gen-speech-commands.sh" "$data/speech"
"$root/scripts/gen-instruments.sh" "$data/instruments"
"$lathe" train --template sound-classifier --data "$data/speech/train" --test "$data/speech/test" \
  --out "$root/runs/sound-speech" --epochs 40 --param augment_speed=true
"$lathe" train --template sound-classifier --data "$data/instruments/train" \
  --test "$data/instruments/test" --out "$root/runs/sound-instruments" --epochs 30 \
  --param trim_silence=true --param window_overlap=0 --param augment_speed=true
cargo run -q -p lathe-engine --example sound_frontend_bench -- "$data/speech" "$data/instruments"
