"""The dependency rule of docs/layout.md, read from that file and checked on every import.

The table "Rooms and what they may import" in docs/layout.md is the rule; this test parses it,
reads every import statement of the product packages with :mod:`ast`, and fails on an import
the table does not allow, on a function-level import of a project module, and on any cycle
between modules or rooms.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("hw", "compiler", "models", "sim", "bench")


def rooms_table() -> dict[str, set[str]]:
    """Room -> rooms it may import, from the table in docs/layout.md."""
    text = (ROOT / "docs" / "layout.md").read_text()
    section = text.split("## Rooms and what they may import", 1)[1].split("\n## ", 1)[0]
    rules = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not cells[0].startswith("`"):
            continue
        room = cells[0].strip("`")
        allowed = set(re.findall(r"`([\w.]+)`", cells[2]))
        rules[room] = allowed
    return rules


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for p in sorted((ROOT / pkg).rglob("*.py")):
            if "__pycache__" not in p.parts:
                out[module_name(p)] = p
    return out


def room_of(mod: str, rules: dict) -> str:
    """The longest room name that is ``mod`` or a package prefix of it."""
    best = None
    for room in rules:
        if mod == room or mod.startswith(room + "."):
            if best is None or len(room) > len(best):
                best = room
    assert best is not None, f"{mod} belongs to no room of docs/layout.md"
    return best


def is_command(mod: str, rules: dict) -> bool:
    """Command modules sit on top: every ``__main__``, the bench, and ``sim`` itself."""
    return mod.endswith(".__main__") or mod in ("sim", "bench") or mod.startswith("bench.")


def project_imports(path: Path, mod: str, known: dict):
    """(imported module, line, at module level?) for every import of a project module."""
    tree = ast.parse(path.read_text())
    top = {id(n) for n in tree.body}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import
                base = mod.rsplit(".", node.level - (path.name == "__init__.py"))[0]
                src = f"{base}.{node.module}" if node.module else base
            else:
                src = node.module or ""
            names = [f"{src}.{a.name}" if f"{src}.{a.name}" in known else src
                     for a in node.names]
        else:
            continue
        for name in names:
            if name.split(".")[0] not in PACKAGES:
                continue
            while name not in known and "." in name:
                name = name.rsplit(".", 1)[0]
            yield name, node.lineno, id(node) in top or _in_type_checking(tree, node)


def _in_type_checking(tree, node) -> bool:
    for n in ast.walk(tree):
        if isinstance(n, ast.If) and "TYPE_CHECKING" in ast.unparse(n.test):
            if any(c is node for c in ast.walk(n)):
                return True
    return False


def graph():
    rules = rooms_table()
    known = modules()
    edges = {m: set() for m in known}
    problems = []
    for mod, path in known.items():
        for dep, line, top_level in project_imports(path, mod, known):
            where = f"{path.relative_to(ROOT)}:{line}"
            if not top_level:
                problems.append(f"{where}: function-level import of {dep}")
            if dep == mod:
                continue
            edges[mod].add(dep)
            if is_command(mod, rules):
                continue
            if is_command(dep, rules):
                problems.append(f"{where}: {mod} imports the command module {dep}")
                continue
            a, b = room_of(mod, rules), room_of(dep, rules)
            if a != b and b not in rules[a]:
                problems.append(f"{where}: {mod} ({a}) may not import {dep} ({b})")
    return rules, edges, problems


def _cycle(edges: dict) -> list | None:
    """One cycle of the directed graph ``edges``, or None."""
    state, stack = {}, []

    def visit(n):
        state[n] = 1
        stack.append(n)
        for d in sorted(edges.get(n, ())):
            if state.get(d) == 1:
                return stack[stack.index(d):] + [d]
            if d not in state:
                c = visit(d)
                if c:
                    return c
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(edges):
        if n not in state:
            c = visit(n)
            if c:
                return c
    return None


def test_every_import_follows_the_rule_of_docs_layout():
    _, _, problems = graph()
    assert not problems, "\n".join(problems)


def test_no_module_cycle():
    _, edges, _ = graph()
    assert _cycle(edges) is None, " -> ".join(_cycle(edges))


def test_no_room_cycle():
    rules, edges, _ = graph()
    rooms = {r: set() for r in rules}
    for mod, deps in edges.items():
        if is_command(mod, rules):
            continue
        for d in deps - {x for x in deps if is_command(x, rules)}:
            a, b = room_of(mod, rules), room_of(d, rules)
            if a != b:
                rooms[a].add(b)
    assert _cycle(rooms) is None, " -> ".join(_cycle(rooms))


def test_arch_imports_nothing_of_the_project_nor_amaranth():
    rules = rooms_table()
    assert rules["hw.arch"] == set()
    for p in sorted((ROOT / "hw" / "arch").rglob("*.py")):
        text = p.read_text()
        assert not re.search(r"^\s*(from|import)\s+amaranth", text, re.M), p


def test_every_package_says_what_it_is_for():
    for pkg in sorted(ROOT.glob("*/**/__init__.py")):
        if pkg.parts[len(ROOT.parts)] not in PACKAGES:
            continue
        doc = ast.get_docstring(ast.parse(pkg.read_text()))
        assert doc and "import" in doc, f"{pkg.relative_to(ROOT)}: docstring must say what " \
                                        "the package is for and what it may import"


def test_the_rule_catches_a_bad_import(tmp_path):
    """The checker itself: an edge against the table is reported."""
    rules = rooms_table()
    assert "sim.rtl" not in rules["compiler"] and "sim.studies" not in rules["hw"]
    assert _cycle({"a": {"b"}, "b": {"a"}}) is not None
    assert _cycle({"a": {"b"}, "b": set()}) is None


#: the one function allowed to be longer (issue 9: the cycle model's solver)
LONG_OK = {("sim.ref.cycle_model", "_solve_windows")}


def test_no_function_is_longer_than_100_lines():
    long = []
    for mod, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > 100 and (mod, node.name) not in LONG_OK:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}: {n} lines")
    assert not long, "\n".join(long)
