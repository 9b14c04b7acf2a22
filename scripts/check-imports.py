#!/usr/bin/env python3
"""Fails when imports do not flow one way: a cycle between the library's top-level modules,
between the files of one folder (src/face/, src/decision/, …), or between the CLI's modules.

A file "uses" a module when its code (comments, string literals and its unit tests aside)
names it: `crate::other::…` between top-level modules; `crate::folder::sibling::…`,
`super::sibling` or an item the folder's mod.rs re-exports from `sibling` between the files
of a folder; `crate::module` in the CLI. Prints each cycle, or with --graph every graph.

Usage: python3 scripts/check-imports.py [--graph]
"""
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
IDENT = r"[A-Za-z_][A-Za-z0-9_]*"


def code_of(path):
    """The file's code without comments, string literals and its `#[cfg(test)] mod tests`."""
    text = path.read_text()
    cut = re.search(r"^#\[cfg\(test\)\]\s*\n(pub(\(crate\))? )?mod tests", text, re.M)
    if cut:
        text = text[: cut.start()]
    return strip_comments_and_strings(text)


def strip_comments_and_strings(text):
    """Rust source with comments removed and every string or char literal emptied, scanned
    left to right so that a quote inside a comment or a `//` inside a string cannot mislead."""
    out, i, n = [], 0, len(text)
    while i < n:
        ch = text[i]
        if text.startswith("//", i):
            i = text.find("\n", i)
            i = n if i < 0 else i
        elif text.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if text.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif text.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
        elif (raw := re.match(r'b?r(#*)"', text[i : i + 300])) and not re.match(
            r"[A-Za-z0-9_]", text[i - 1 : i] or " "
        ):
            end = text.find('"' + raw.group(1), i + raw.end())
            i = n if end < 0 else end + 1 + len(raw.group(1))
            out.append('""')
        elif ch == '"':
            i += 1
            while i < n and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
            i += 1
            out.append('""')
        elif ch == "'" and (lit := re.match(r"'(\\.[^']*|[^\\'])'", text[i : i + 12])):
            i += lit.end()
            out.append("' '")
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def module_of(path, base):
    """`src/face/detect.rs` → ('face', 'detect'); a mod.rs names its folder."""
    parts = list(path.relative_to(base).with_suffix("").parts)
    if parts[-1] == "mod":
        parts.pop()
    return tuple(parts)


def expand_use(code):
    """Every path a file names, with `use a::{b, c::d}` groups expanded to `a::b`, `a::c::d`."""
    paths = []
    for m in re.finditer(r"\buse\s+([^;]+);", code, re.S):
        stack = [("", m.group(1).replace("\n", " "))]
        while stack:
            prefix, body = stack.pop()
            body = body.strip()
            brace = body.find("{")
            if brace < 0:
                for item in body.split(","):
                    item = item.strip().split(" as ")[0].strip()
                    if item:
                        paths.append(prefix + item)
                continue
            head, inner = body[:brace], body[brace + 1 : body.rfind("}")]
            depth, start, parts = 0, 0, []
            for i, ch in enumerate(inner):
                if ch == "{":
                    depth += 1
                elif ch == "}":
                    depth -= 1
                elif ch == "," and depth == 0:
                    parts.append(inner[start:i])
                    start = i + 1
            parts.append(inner[start:])
            for p in parts:
                if p.strip():
                    stack.append((prefix + head, p))
    paths += re.findall(rf"\b(?:crate|super)(?:::{IDENT})+", re.sub(r"\buse\s+[^;]+;", "", code, flags=re.S))
    return paths


def reexports(folder):
    """Items a folder's mod.rs re-exports, by name → the child module they come from."""
    mod = folder / "mod.rs"
    if not mod.exists():
        return {}
    out = {}
    for path in expand_use(code_of(mod)):
        parts = path.split("::")
        if len(parts) >= 2 and parts[0] not in ("crate", "super", "std", "self"):
            out[parts[-1]] = parts[0]
        elif len(parts) >= 3 and parts[0] == "self":
            out[parts[-1]] = parts[1]
    return out


def children(folder):
    return {p.stem for p in folder.glob("*.rs") if p.name != "mod.rs"} | {
        p.name for p in folder.iterdir() if p.is_dir() and (p / "mod.rs").exists()
    }


def library_graphs():
    top, folders = {}, {}
    root_exports = {}
    for p in expand_use(code_of(SRC / "lib.rs")):
        parts = p.split("::")
        if len(parts) >= 2 and parts[0] not in ("crate", "std"):
            root_exports[parts[-1]] = parts[0]
    for path in sorted(SRC.rglob("*.rs")):
        rel = path.relative_to(SRC)
        if rel.parts[0] == "bin" or rel == Path("lib.rs"):
            continue
        me = module_of(path, SRC)
        is_mod = path.name == "mod.rs"
        parent = me if is_mod else me[:-1]
        names = expand_use(code_of(path))
        top.setdefault(me[0], set())
        for p in names:
            parts = p.split("::")
            if parts[0] == "crate" and len(parts) > 1:
                # An item the crate root re-exports (`crate::Result`) is its module's.
                target = root_exports.get(parts[1], parts[1])
                if target != me[0] and not target[:1].isupper():
                    top[me[0]].add(target)
        # Edges between the files of the folder this file sits in.
        if len(me) < 2 and not is_mod:
            continue
        folder_path = SRC.joinpath(*(me[:-1] if not is_mod else me[:-1]))
        if is_mod:
            # A mod.rs declares its children; as a file of its own folder it is `mod`.
            folder_key, here = me[:-1], me[-1] if len(me) > 1 else None
            if here is None:
                continue
            folder_path = SRC.joinpath(*me[:-1])
        else:
            folder_key, here = me[:-1], me[-1]
        if not folder_key:
            continue
        siblings = children(folder_path)
        exported = reexports(folder_path)
        graph = folders.setdefault("/".join(folder_key), {})
        graph.setdefault(here, set())
        prefix = ["crate", *folder_key]
        for p in names:
            parts = p.split("::")
            target = None
            if parts[: len(prefix)] == prefix and len(parts) > len(prefix):
                nxt = parts[len(prefix)]
                target = nxt if nxt in siblings else exported.get(nxt, "mod" if nxt[0].isupper() else None)
            elif parts[0] == "super" and len(parts) > 1 and not is_mod:
                nxt = parts[1]
                target = nxt if nxt in siblings else exported.get(nxt, "mod" if nxt[:1].isupper() else None)
            if target and target != here:
                graph[here].add(target)
    return top, folders


def cli_graph():
    base = SRC / "bin" / "vouch"
    graph = {}
    for path in sorted(base.rglob("*.rs")):
        me = "/".join(module_of(path, base)) or "main"
        graph.setdefault(me, set())
        for p in expand_use(code_of(path)):
            parts = p.split("::")
            if parts[0] == "crate" and len(parts) > 1:
                other = parts[1]
                if ((base / f"{other}.rs").exists() or (base / other).is_dir()) and other != me.split("/")[0]:
                    graph[me].add(other)
    return graph


def cycles(graph):
    """The strongly connected components of more than one node (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def main():
    top, folders = library_graphs()
    graphs = [("the library's top-level modules", top)]
    graphs += [(f"src/{name}/", g) for name, g in sorted(folders.items())]
    graphs.append(("the CLI (src/bin/vouch/)", cli_graph()))
    failed = False
    for name, graph in graphs:
        found = cycles(graph)
        for c in found:
            failed = True
            print(f"import cycle in {name}: {' <-> '.join(c)}")
            for a in c:
                print(f"  {a} uses {sorted(set(graph.get(a, ())) & set(c))}")
        if "--graph" in sys.argv:
            print(f"{name}:")
            for a in sorted(graph):
                print(f"  {a} -> {', '.join(sorted(graph[a])) or '-'}")
    if failed:
        sys.exit(1)
    print("imports flow one way: no cycle between top-level modules, the files of a folder, or CLI modules")


if __name__ == "__main__":
    main()
