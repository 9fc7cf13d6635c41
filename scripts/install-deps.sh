#!/usr/bin/env bash
# System packages Lathe's build and tests need on Debian/Ubuntu. Idempotent; run as root (CI) or
# with sudo. The engine needs none beyond a Rust toolchain; packages are added here as templates
# that need them land.
set -euo pipefail
packages=(
  # Sound classifier: clip generators for tests and benchmarks (scripts/gen-*.sh).
  espeak-ng flite fluidsynth fluid-soundfont-gm sox
)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  $sudo apt-get install -y --no-install-recommends "${missing[@]}"
fi
