"""Sound-classifier sets for the quality suite: real recordings from Debian packages (and one
synthesized, speaker-independent spoken-word set) written as class folders of audio files.
Formats Lathe cannot read (AIFF) are converted to WAV with soundfile; others are copied."""
import re
import subprocess
import xml.etree.ElementTree as ET

import numpy as np

from common import RAW, ROOT, fresh_dir, require, stratified_split

LATHE_AUDIO = {".wav", ".flac", ".mp3", ".ogg", ".m4a"}
TUXPAINT_LANGS = ["ca", "es", "fr", "ro", "ru"]
KLETTRES_LANGS = ["es", "it", "lt", "pt_BR", "ru", "uk"]
DRUMS = [("kick", r"kick|bass ?drum|\bbd\b|kik"), ("snare", r"snare|\bsd\b|rim"),
         ("hihat", r"\bhh\b|hi.?hat|hat"), ("tom", r"tom"),
         ("cymbal", r"crash|ride|cymbal|splash|china|cym")]


def _write(out, split, files, labels):
    import soundfile as sf
    for i, (f, lab) in enumerate(zip(files, labels)):
        d = out / split / lab
        d.mkdir(parents=True, exist_ok=True)
        if f.suffix.lower() in LATHE_AUDIO:
            (d / f"{i:05d}{f.suffix.lower()}").write_bytes(f.read_bytes())
        else:
            data, rate = sf.read(str(f), always_2d=True)
            sf.write(str(d / f"{i:05d}.wav"), data, rate, subtype="PCM_16")


def _write_split(out, files, labels, n_train, n_test):
    files, labels = np.array(files, dtype=object), np.array(labels)
    tr, te = stratified_split(labels, n_train, n_test)
    _write(out, "train", files[tr], labels[tr])
    _write(out, "test", files[te], labels[te])


def tuxpaint_language(out, n_train, n_test):
    """Debian tuxpaint-stamps-default: spoken stamp descriptions (*_desc_<lang>.ogg), language ID."""
    root = require(RAW / "deb/usr/share/tuxpaint/stamps")
    files, labels = [], []
    for lang in TUXPAINT_LANGS:
        for f in sorted(root.rglob(f"*_desc_{lang}.ogg")):
            files.append(f)
            labels.append(lang)
    _write_split(out, files, labels, n_train, n_test)


def klettres_language(out, n_train, n_test):
    """Debian klettres-data: spoken letters and syllables, language (one speaker per locale)."""
    root = require(RAW / "deb/usr/share/klettres")
    files, labels = [], []
    for lang in KLETTRES_LANGS:
        for f in sorted((root / lang).rglob("*.ogg")):
            files.append(f)
            labels.append(lang)
    _write_split(out, files, labels, n_train, n_test)


def _drum_class(text):
    t = text.lower()
    for label, pattern in DRUMS:
        if re.search(pattern, t):
            return label
    return None


def hydrogen_drums(out, n_train, n_test):
    """Debian hydrogen-drumkits: one-shot samples of 14 kits, class from the instrument name in
    drumkit.xml (else the file name): kick, snare, hihat, tom, cymbal; others left out."""
    root = require(RAW / "deb/usr/share/hydrogen/data/drumkits")
    files, labels = [], []
    for xml in sorted(root.glob("*/drumkit.xml")):
        tree = ET.parse(xml)
        for el in tree.iter():
            el.tag = el.tag.split("}")[-1]
        for inst in tree.iter("instrument"):
            name = inst.findtext("name") or ""
            for fn in inst.iter("filename"):
                f = xml.parent / (fn.text or "").strip()
                label = _drum_class(name) or _drum_class(f.stem)
                if label and f.is_file() and f not in files:
                    files.append(f)
                    labels.append(label)
    _write_split(out, files, labels, n_train, n_test)


def espeak_words(out, n_train, n_test):
    """SYNTHETIC: scripts/gen-speech-commands.sh (espeak-ng + flite), 12 words; the test voices
    are never heard in training (speaker-independent). Sizes are fixed by the generator."""
    fresh_dir(out)
    subprocess.run([str(ROOT / "scripts/gen-speech-commands.sh"), str(out)], check=True,
                   stdout=subprocess.DEVNULL)
