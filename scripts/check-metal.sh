#!/usr/bin/env bash
# Type-checks Lathe's Metal code (candle's Metal backend + engine/src/ops/depthwise_metal.rs) for
# macOS on Linux: `cargo check` for aarch64-apple-darwin, which compiles no C and links nothing.
# The defaults that build C for the target are left out (mimalloc; hf-hub's TLS), and
# CARGO_FEATURE_PURE=1 makes blake3's build script take its pure-Rust path. Needs the target's
# standard library: `rustup target add aarch64-apple-darwin` (done here if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
rustup target list --installed | grep -qx aarch64-apple-darwin || rustup target add aarch64-apple-darwin
CARGO_FEATURE_PURE=1 CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target/metal}" \
  cargo check --locked --target aarch64-apple-darwin -p lathe-engine \
  --no-default-features --features metal,embedded-backbone "$@"
