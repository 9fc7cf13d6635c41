#!/usr/bin/env bash
# Generates an instrument-family set from real sampled instruments: single notes rendered with
# fluidsynth and the FluidR3 General MIDI soundfont, 8 families × 4 GM programs, velocities
# varied, 1.5 s per note (1 s held + release). Pitches are disjoint: test notes (MIDI pitch
# % 5 == 0) never occur in training (pitch % 5 in {1, 3}). Output: OUT/{train,test}/<family>/*.wav
# (stereo, 22.05 kHz: Lathe downmixes and resamples). Needs fluidsynth, fluid-soundfont-gm and
# python3 (scripts/install-deps.sh). Deterministic.
# Usage: scripts/gen-instruments.sh OUT
set -euo pipefail
out="${1:?usage: gen-instruments.sh OUT}"
sf2="${SOUNDFONT:-/usr/share/sounds/sf2/FluidR3_GM.sf2}"
[ -f "$sf2" ] || { echo "no soundfont at $sf2; run scripts/install-deps.sh or set SOUNDFONT" >&2; exit 1; }
mid="$(mktemp -d)"
trap 'rm -rf "$mid"' EXIT
# Writes one MIDI file per note: program, pitch, velocity → $mid/<family>_<program>_<pitch>.mid
python3 - "$mid" <<'PY'
import os, random, struct, sys
out = sys.argv[1]
families = {
    "piano": [0, 1, 2, 4], "chromatic_percussion": [8, 11, 12, 13], "organ": [16, 17, 19, 20],
    "guitar": [24, 25, 26, 27], "strings": [40, 41, 42, 48], "brass": [56, 57, 60, 61],
    "reed": [64, 65, 68, 71], "pipe": [72, 73, 74, 75],
}
def vlq(n):
    b = [n & 0x7F]
    while n > 0x7F:
        n >>= 7
        b.append(0x80 | (n & 0x7F))
    return bytes(reversed(b))
rng = random.Random(7)
for fam, programs in families.items():
    for prog in programs:
        for pitch in range(45, 85):
            if pitch % 5 not in (0, 1, 3):
                continue
            vel = rng.randint(50, 120)
            tpq = 480  # 120 bpm: 960 ticks per second
            ev = b"\x00\xff\x51\x03\x07\xa1\x20"            # tempo 500000 µs/quarter
            ev += b"\x00" + bytes([0xC0, prog])              # program change
            ev += b"\x00" + bytes([0x90, pitch, vel])        # note on
            ev += vlq(960) + bytes([0x80, pitch, 0])         # note off after 1 s
            ev += vlq(480) + b"\xff\x2f\x00"                 # end of track at 1.5 s
            data = b"MThd" + struct.pack(">IHHH", 6, 0, 1, tpq) + b"MTrk" + struct.pack(">I", len(ev)) + ev
            split = "test" if pitch % 5 == 0 else "train"
            with open(os.path.join(out, f"{split}_{fam}_{prog}_{pitch}.mid"), "wb") as f:
                f.write(data)
PY
n=0
for m in "$mid"/*.mid; do
  base="$(basename "$m" .mid)"
  split="${base%%_*}"; rest="${base#*_}"
  fam="${rest%_*_*}"; note="${rest#"$fam"_}"
  dir="$out/$split/$fam"; file="$dir/$note.wav"
  mkdir -p "$dir"
  [ -s "$file" ] || fluidsynth -ni -q -g 0.7 -r 22050 -F "$file" "$sf2" "$m" >/dev/null 2>&1
  n=$((n + 1))
done
echo "wrote $n notes under $out"
