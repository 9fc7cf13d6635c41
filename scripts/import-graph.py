#!/usr/bin/env python3
"""Folder-level import graph of the engine (`crate::<folder>` uses, test modules left out):
prints each edge and any cycle between folders. Exit 1 on a cycle or on an edge from the
toolkit (data, nets, ops, learners, train, eval, explore, export, task) up into templates/, session or cli/.

usage: scripts/import-graph.py [engine/src]"""
import os
import re
import sys

root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "engine", "src")
TOP = {"templates", "session", "cli"}
TOOLKIT = {"data", "nets", "ops", "learners", "train", "eval", "explore", "export", "task"}
edges = {}
for dp, _, files in os.walk(root):
    for f in files:
        if not f.endswith(".rs"):
            continue
        path = os.path.join(dp, f)
        rel = os.path.relpath(path, root)
        src_folder = rel.split(os.sep)[0].removesuffix(".rs")
        text = open(path, encoding="utf-8").read()
        cut = text.find("#[cfg(test)]")
        if cut >= 0:
            text = text[:cut]
        for m in re.finditer(r"\bcrate::([a-z_]+)", text):
            dst = m.group(1)
            if dst != src_folder and dst not in ("error", "fsutil", "params", "project", "template", "device", "allocator", "fuzz", "Error", "Result"):
                edges.setdefault(src_folder, {}).setdefault(dst, set()).add(rel)
bad = 0
for s in sorted(edges):
    for d in sorted(edges[s]):
        up = s in TOOLKIT and d in TOP
        print(f"{s:10} -> {d:10} {'UPWARD ' if up else ''}({len(edges[s][d])} files)")
        bad += up
# cycles between folders (DFS)
def cycles():
    found = set()
    def dfs(start, node, path):
        for n in edges.get(node, {}):
            if n == start:
                found.add(tuple(sorted(path)))
            elif n not in path and n > start:
                dfs(start, n, path + [n])
    for s in edges:
        dfs(s, s, [s])
    return found
cyc = cycles()
for c in sorted(cyc):
    files = []
    print("cycle:", " <-> ".join(c))
bad += len(cyc)
sys.exit(1 if bad else 0)
