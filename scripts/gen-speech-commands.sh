#!/usr/bin/env bash
# Generates a synthetic "speech commands" set: 12 words spoken by 23 synthetic voices (espeak-ng
# accents × voice variants, flite speakers), each at 3 speeds / pitches. Test voices are never
# used in training (speaker-disjoint). Output: OUT/train/<word>/*.wav, OUT/test/<word>/*.wav at the
# synthesizers' native rates (22.05 kHz espeak-ng, 16 kHz / 8 kHz flite): Lathe resamples.
# Needs espeak-ng and flite (scripts/install-deps.sh). Deterministic.
# Usage: scripts/gen-speech-commands.sh OUT
# ("en-gb+X" ignores the variant in espeak-ng 1.51, so British English with a variant is "en+X".)
set -euo pipefail
out="${1:?usage: gen-speech-commands.sh OUT}"
words=(yes no up down left right on off stop go zero one)
train_voices=(
  espeak:en-us+m1 espeak:en-us+f1 espeak:en+m2 espeak:en+f2 espeak:en-us+m3
  espeak:en-gb-scotland+m4 espeak:en-029+f3 espeak:en-gb-x-rp+m5 espeak:en-us+f4
  espeak:en+klatt espeak:en-us+m6 espeak:en-gb-x-gbclan+klatt3 espeak:en-us+klatt2
  espeak:en-gb-x-gbcwmd+m7 espeak:en-us+Andy flite:kal flite:awb flite:rms
)
test_voices=(espeak:en-us+m8 espeak:en+f5 espeak:en-gb-scotland+klatt4 espeak:en-029+Annie flite:slt)
# speed (words/min) and pitch (0-99) for espeak-ng; duration stretch for flite.
espeak_styles=("140 35" "170 55" "205 75")
flite_styles=(1.2 1.0 0.85)

render() { # split voice word style_index
  local split=$1 voice=$2 word=$3 i=$4
  local engine=${voice%%:*} name=${voice#*:}
  local dir="$out/$split/$word"
  local file="$dir/${name//+/_}-$i.wav"
  [ -s "$file" ] && return 0
  mkdir -p "$dir"
  if [ "$engine" = espeak ]; then
    read -r speed pitch <<<"${espeak_styles[$i]}"
    espeak-ng -v "$name" -s "$speed" -p "$pitch" -w "$file" "$word"
  else
    flite -voice "$name" --setf duration_stretch="${flite_styles[$i]}" -t "$word" -o "$file"
  fi
}
export -f render
export out
n=0
for split in train test; do
  if [ $split = train ]; then voices=("${train_voices[@]}"); else voices=("${test_voices[@]}"); fi
  for v in "${voices[@]}"; do
    for w in "${words[@]}"; do
      for i in 0 1 2; do
        render "$split" "$v" "$w" "$i"
        n=$((n + 1))
      done
    done
  done
done
echo "wrote $n clips under $out (train: ${#train_voices[@]} voices, test: ${#test_voices[@]} unseen voices)"
