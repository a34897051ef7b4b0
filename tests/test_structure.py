"""The package's shape: imports follow ARCHITECTURE.md's layer list, no import circle, few and
explained back imports, and a Trainer that stays the loop (issue 24)."""

from __future__ import annotations

import ast
import fnmatch
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "condgan"
MAX_BACK_IMPORTS = 8


def layers() -> list[tuple[str, list[str]]]:
    """(layer name, module patterns) from the ```layers block of ARCHITECTURE.md, lowest first."""
    text = (ROOT / "ARCHITECTURE.md").read_text()
    block = re.search(r"```layers\n(.*?)```", text, re.S)
    assert block, "ARCHITECTURE.md has no ```layers block"
    out = []
    for line in block.group(1).strip().splitlines():
        number, name, patterns = re.match(r"(\d+) (\w+):\s+(.*)", line).groups()
        assert int(number) == len(out) + 1, f"layers out of order at {line!r}"
        out.append((name, patterns.split()))
    return out


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def imports(mods: dict[str, Path]) -> list[tuple[str, str, int, str]]:
    """(importer, imported module, line number, line) for every import of a package module, lazy
    and type-only ones included (``from pkg import name`` counts as importing ``pkg.name`` when that
    is a module, else ``pkg``)."""
    edges = []
    for mod, path in mods.items():
        source = path.read_text()
        lines = source.splitlines()
        package = mod.split(".") if path.name == "__init__.py" else mod.split(".")[:-1]
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.ImportFrom):
                base = package[: len(package) - node.level + 1] if node.level else []
                target = ".".join(base + (node.module.split(".") if node.module else []))
                subs = [f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in mods]
                names = subs + ([target] if len(subs) < len(node.names) else [])
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            for name in names:
                if name in mods and name != mod:
                    edges.append((mod, name, node.lineno, lines[node.lineno - 1]))
    return edges


def layer_of(mod: str, table: list[tuple[str, list[str]]]) -> int:
    for exact in (True, False):  # an exact name wins over a folder pattern
        for i, (_, patterns) in enumerate(table):
            if any(mod == p if exact else fnmatch.fnmatchcase(mod, p) for p in patterns):
                return i
    raise AssertionError(f"{mod} is in no layer of ARCHITECTURE.md: add it to the ```layers block")


def test_every_module_has_a_layer():
    table = layers()
    for mod in modules():
        layer_of(mod, table)


def test_no_import_circle():
    mods = modules()
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for a, b, _, _ in imports(mods):
        graph[a].add(b)
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> None:
        if node in path:
            raise AssertionError("import circle: " + " -> ".join(path[path.index(node):] + [node]))
        if node in done:
            return
        for nxt in sorted(graph[node]):
            visit(nxt, path + [node])
        done.add(node)

    for mod in sorted(graph):
        visit(mod, [])


def unexplained_back_imports(edges, table) -> tuple[list, list[str]]:
    """(the imports up a layer, those without a '# layer:' comment, as messages)."""
    back = [(a, b, n, line) for a, b, n, line in edges if layer_of(b, table) > layer_of(a, table)]
    return back, [f"{a}:{n} imports {b} ({table[layer_of(b, table)][0]} is above {table[layer_of(a, table)][0]})"
                  for a, b, n, line in back if "# layer:" not in line]


def test_imports_run_down_the_layers_with_few_explained_exceptions():
    back, unexplained = unexplained_back_imports(imports(modules()), layers())
    assert not unexplained, "imports up a layer need a '# layer: why' comment on their line:\n" + "\n".join(unexplained)
    assert len(back) <= MAX_BACK_IMPORTS, [f"{a} -> {b}" for a, b, _, _ in back]


def test_the_trainer_stays_the_loop():
    tree = ast.parse((PACKAGE / "training" / "trainer.py").read_text())
    trainer = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Trainer")
    assert trainer.end_lineno - trainer.lineno + 1 < 300
    long = {f.name: f.end_lineno - f.lineno + 1 for f in trainer.body if isinstance(f, ast.FunctionDef)
            if f.end_lineno - f.lineno + 1 > 40}
    assert not long, f"Trainer methods over 40 lines: {long}"


def test_the_check_catches_an_upward_import():
    """The check can fail: a foundation module importing the trainer is reported, unless explained."""
    table = layers()
    edge = ("condgan.conditions", "condgan.training.trainer", 3, "from .training.trainer import Trainer")
    assert unexplained_back_imports([edge], table)[1] == [
        "condgan.conditions:3 imports condgan.training.trainer (trainer is above foundation)"]
    explained = edge[:3] + (edge[3] + "  # layer: for the test",)
    assert unexplained_back_imports([explained], table)[1] == []
    assert layer_of("condgan.data.mnist", table) == layer_of("condgan.data", table)  # a folder pattern
