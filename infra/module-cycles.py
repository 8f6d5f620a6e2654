#!/usr/bin/env python3
"""Fails when the modules of a crate import each other in a cycle (`crate::a` in b and
`crate::b` in a, through any chain; `super::x` in store adapters counts too). Keeps the
delivery pipeline and the store adapters layered: ports and leaf modules below, services and
state above.   python3 infra/module-cycles.py shared/src functions/src"""
import glob
import os
import re
import sys


def graph(root):
    mods = {}
    for path in glob.glob(os.path.join(root, "**", "*.rs"), recursive=True):
        name = os.path.relpath(path, root)[:-3].replace(os.sep, "::").replace("::mod", "")
        if name in ("lib", "main") or name.startswith("bin::"):
            continue
        source = open(path, encoding="utf-8").read()
        deps = set()
        for m in re.finditer(r"crate::([a-z_]+)(?:::([a-z_]+))?", source):
            top, sub = m.group(1), m.group(2)
            nested = sub and os.path.exists(os.path.join(root, top, sub + ".rs"))
            deps.add(f"{top}::{sub}" if nested else top)
        parent = name.rsplit("::", 1)[0] if "::" in name else None
        if parent:
            for m in re.finditer(r"\bsuper::([a-z_]+)", source):
                sub = m.group(1)
                nested = os.path.exists(os.path.join(root, *parent.split("::"), sub + ".rs"))
                deps.add(f"{parent}::{sub}" if nested else parent)
        mods[name] = deps - {name}
    return mods


def cycles(mods):
    state, stack, found = {}, [], []

    def visit(u):
        state[u] = 1
        stack.append(u)
        for v in sorted(mods.get(u, ())):
            if v not in mods:
                continue
            if state.get(v) == 1:
                found.append(stack[stack.index(v):] + [v])
            elif not state.get(v):
                visit(v)
        stack.pop()
        state[u] = 2

    for m in sorted(mods):
        if not state.get(m):
            visit(m)
    return found


bad = 0
for root in sys.argv[1:]:
    for cycle in cycles(graph(root)):
        print(f"{root}: import cycle: {' -> '.join(cycle)}", file=sys.stderr)
        bad += 1
sys.exit(1 if bad else 0)
