#!/usr/bin/env python3
"""`make test`'s layout check: the module graph of core and functions, read
from the source, with no cycles and no layer importing one above it; file
sizes within their budgets.

    python3 scripts/check-layout.py            # exit 1 and a list of problems, or a summary
    python3 scripts/check-layout.py --graph    # also print every module's imports

An edge A -> B is any path in A's code (a `use` tree or an inline path)
starting `crate::`, `super::` or `self::` that reaches module B. A `mod b;`
declaration is not an edge (declaring a child is not using it). Paths into
other crates are not edges. Comments and string literals are ignored.

Layers of courier-functions, bottom to top; a module may use its own layer
and those below it, never one above:
    platform (config, AWS clients, logging, publisher, thing groups, ids)
    store    (the Store traits and the DynamoDB implementation)
    ops      (the operations by capability, their error type, page tokens)
    entry    (the Lambda entry points: api, device-events, dispatcher, sweeper)
    app      (wiring for the binaries)
"""
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CRATES = {"core": ROOT / "core/src", "functions": ROOT / "functions/src"}
FUNCTIONS_LAYERS = ["platform", "store", "ops", "entry", "app"]
# Top-level modules of functions that are not folders, and their layer.
FUNCTIONS_LAYER_OF = {"error": "ops", "app": "app"}
MAX_LINES = {"functions": 600}
MAX_BIN_LINES = 25

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"


def strip(text):
    """Source without comments and string/char literals (kept as blanks, so
    line numbers stay)."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if text.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif text.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    out.append("\n" if text[i] == "\n" else "")
                    i += 1
        elif c == "r" and re.match(r'r#*"', text[i:i + 10]) and (i == 0 or not re.match(r"[A-Za-z0-9_]", text[i - 1])):
            m = re.match(r'r(#*)"', text[i:])
            close = '"' + m.group(1)
            j = text.find(close, i + len(m.group(0)))
            j = n if j < 0 else j + len(close)
            out.append('""' + "\n" * text.count("\n", i, j))
            i = j
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append('""' + "\n" * text.count("\n", i, j))
            i = j + 1
        elif c == "'" and re.match(r"'(\\.|[^\\'])'", text[i:i + 4] + "  "):
            m = re.match(r"'(\\u\{[0-9a-fA-F]+\}|\\x[0-9a-fA-F]{2}|\\.|[^\\'])'", text[i:])
            if m:
                out.append("' '")
                i += len(m.group(0))
            else:
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def modules(src):
    """{module path tuple: file} for a crate's library (bins excluded)."""
    found = {}
    for path in sorted(src.rglob("*.rs")):
        rel = path.relative_to(src)
        if rel.parts[0] == "bin":
            continue
        parts = list(rel.with_suffix("").parts)
        if parts == ["lib"]:
            parts = []
        elif parts[-1] == "mod":
            parts = parts[:-1]
        found[tuple(parts)] = path
    return found


def expand_use(tree):
    """`a::{b, c::{d, e}}` -> [a::b, a::c::d, a::c::e] (as segment lists)."""
    tree = re.sub(r"\s+", "", tree)
    tree = re.sub(r"\bas" + IDENT, "", tree)

    def split_top(s):
        parts, depth, cur = [], 0, ""
        for ch in s:
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
            if ch == "," and depth == 0:
                parts.append(cur)
                cur = ""
            else:
                cur += ch
        if cur:
            parts.append(cur)
        return parts

    def walk(prefix, s):
        if "{" in s and s.endswith("}"):
            head, inner = s[: s.index("{")], s[s.index("{") + 1:-1]
            head = [p for p in head.split("::") if p]
            out = []
            for part in split_top(inner):
                out.extend(walk(prefix + head, part))
            return out
        return [prefix + [p for p in s.split("::") if p]]

    return walk([], tree)


def without_inline_modules(code):
    """Code without inline `mod name { ... }` blocks (unit tests): they are
    not part of the module graph the binaries ship."""
    out, i = [], 0
    for m in re.finditer(r"\bmod\s+" + IDENT + r"\s*\{", code):
        if m.start() < i:
            continue
        depth, j = 1, m.end()
        while j < len(code) and depth:
            depth += {"{": 1, "}": -1}.get(code[j], 0)
            j += 1
        out.append(code[i:m.start()])
        out.append("\n" * code.count("\n", m.start(), j))
        i = j
    out.append(code[i:])
    return "".join(out)


def references(code, children=()):
    """Every path starting with crate/super/self, or with the name of one of
    the module's own child modules, in stripped code."""
    code = without_inline_modules(code)
    paths = []
    for m in re.finditer(r"\buse\s+([^;]+);", code):
        paths.extend(expand_use(m.group(1)))
    rest = re.sub(r"\buse\s+[^;]+;", "", code)
    starts = ["crate", "super", "self", *children]
    for m in re.finditer(r"(?<![A-Za-z0-9_:])((?:" + "|".join(starts) + r")(?:::(?:super|" + IDENT + r"))+)", rest):
        paths.append(m.group(1).split("::"))
    return [["self", *p] if p and p[0] in children else p for p in paths if p and p[0] in starts]


def resolve(path, here, known):
    """The module a path reaches from module `here`, or None."""
    first, rest = path[0], path[1:]
    if first == "crate":
        base = ()
    elif first == "self":
        base = here
    else:
        base = here[:-1]
        while rest and rest[0] == "super":
            base, rest = base[:-1], rest[1:]
    target = base
    for seg in rest:
        if target + (seg,) in known:
            target = target + (seg,)
        else:
            break
    return target


def graph(crate):
    known = modules(CRATES[crate])
    edges = {m: set() for m in known}
    for module, path in known.items():
        code = strip(path.read_text())
        children = [m[-1] for m in known if m[:-1] == module and len(m) == len(module) + 1]
        for ref in references(code, children):
            target = resolve(ref, module, known)
            if target is not None and target != module and target in known:
                # A path through an ancestor to a sibling counts as the sibling;
                # naming only an ancestor (`super::Item`) is an edge to it.
                edges[module].add(target)
    return known, edges


def cycles(edges):
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]
    sys.setrecursionlimit(10000)

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in edges:
        if v not in index:
            visit(v)
    return out


def name(crate, module):
    return crate + ("::" + "::".join(module) if module else "")


def layer(module):
    if not module:
        return None
    top = module[0]
    return FUNCTIONS_LAYER_OF.get(top, top if top in FUNCTIONS_LAYERS else None)


def main():
    show = "--graph" in sys.argv
    problems, summary = [], []
    for crate in CRATES:
        known, edges = graph(crate)
        for comp in cycles(edges):
            problems.append(f"{crate}: import cycle: " + " <-> ".join(name(crate, m) for m in comp))
        if crate == "functions":
            for module in known:
                if module and layer(module) is None:
                    problems.append(f"functions: {name(crate, module)} is in no layer ({', '.join(FUNCTIONS_LAYERS)})")
            for module, targets in edges.items():
                for target in targets:
                    a, b = layer(module), layer(target)
                    if a and b and FUNCTIONS_LAYERS.index(b) > FUNCTIONS_LAYERS.index(a):
                        problems.append(f"functions: {name(crate, module)} ({a}) imports {name(crate, target)} ({b}), a layer above it")
        limit = MAX_LINES.get(crate)
        for path in sorted(CRATES[crate].rglob("*.rs")):
            lines = path.read_text().count("\n")
            rel = path.relative_to(ROOT)
            if path.parent.name == "bin" and lines > MAX_BIN_LINES:
                problems.append(f"{rel}: {lines} lines; an entry binary has at most {MAX_BIN_LINES}")
            elif limit and lines > limit:
                problems.append(f"{rel}: {lines} lines; at most {limit}")
        n_edges = sum(len(t) for t in edges.values())
        summary.append(f"{crate}: {len(known)} modules, {n_edges} imports between them, no cycles")
        if show:
            for module in sorted(edges):
                print(f"{name(crate, module)} -> {', '.join(sorted(name(crate, t) for t in edges[module])) or '-'}")
    if problems:
        print("\n".join(problems))
        sys.exit(1)
    print("; ".join(summary) + "; every layer imports only its own and those below; file sizes within budget")


if __name__ == "__main__":
    main()
