#!/usr/bin/env bash
# System packages Lathe's build and tests need on Debian/Ubuntu. Idempotent; run as root (CI) or
# with sudo. The engine needs none beyond a Rust toolchain; packages are added here as templates
# that need them land.
set -euo pipefail
packages=()
# Lathe Studio (app/): building needs no -dev package (eframe dlopens X11/EGL/GL). Its kittest
# tests run headless with nothing more; these are the libraries the window uses at run time and
# tools to run it under a virtual display (screenshots, the frame-time measurement).
packages+=(libx11-6 libxcursor1 libxi6 libxkbcommon-x11-0 libegl1 libgl1 libgl1-mesa-dri)
packages+=(xvfb imagemagick xdotool)
# engine/tests/metal_shader.rs compiles the Metal kernels as C++ (through a shim) to check them.
packages+=(g++)
# Sound classifier: clip generators for tests and benchmarks (scripts/gen-*.sh).
packages+=(espeak-ng flite fluidsynth fluid-soundfont-gm sox)
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
