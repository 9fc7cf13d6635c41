#!/usr/bin/env bash
# Fetch the full Fashion-MNIST (Debian package `dataset-fashion-mnist`, MIT) and export it as
# class folders for Lathe: data/fashion-mnist/{train,test}/<class>/*.png (60,000 + 10,000 images).
# Needs only apt-get download (no root) and python3.
set -euo pipefail
out="${1:-data/fashion-mnist}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download dataset-fashion-mnist >/dev/null && dpkg -x dataset-fashion-mnist_*.deb root)
python3 "$(dirname "$0")/fashion_mnist_to_folders.py" "$work/root/usr/share/datasets/fashion-mnist" "$out"
