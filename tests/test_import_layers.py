"""The library's import structure stays a stack of layers: no two parts of peftbench import each other (directly
or round a loop, imports inside functions included), and the longest chain of imports is at most six parts deep
(the workflow's rules and scripts on top make seven). A part is a subpackage (stages/, model/, ...) or a
top-level module (config, io, ...); peftbench/__init__.py only hands names on and is no part.

Read from the source with ast, nothing imported: `python -m pytest tests/test_import_layers.py -s` prints the
layers, bottom first."""

import ast
from functools import cache

from peftbench.paths import ROOT

PKG = ROOT / "peftbench"
MAX_DEPTH = 6


def part(module: str) -> str | None:
    """'peftbench.stages.train' -> 'stages'; 'peftbench.io' -> 'io'; 'peftbench' (the face) -> None."""
    names = module.split(".")
    return names[1] if names[0] == "peftbench" and len(names) > 1 else None


def imports(path) -> set[str]:
    """The peftbench modules a file imports, at any depth of the file (functions included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("peftbench")}
        elif (
            isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("peftbench") and not node.level
        ):
            # `from peftbench import io` names the module io; `from peftbench.config import X` the module config
            found |= {f"{node.module}.{a.name}" if node.module == "peftbench" else node.module for a in node.names}
    return found


@cache
def graph() -> dict[str, set[str]]:
    """{part: parts it imports}, itself left out."""
    edges: dict[str, set[str]] = {}
    for path in PKG.rglob("*.py"):
        rel = path.relative_to(ROOT).with_suffix("").parts
        src = part(".".join(rel))
        if src is None or src == "__init__":
            continue
        targets = {part(m) for m in imports(path)} - {None, src}
        edges.setdefault(src, set()).update(t for t in targets if (PKG / t).is_dir() or (PKG / f"{t}.py").is_file())
    return edges


def layers(edges: dict[str, set[str]]) -> dict[str, int]:
    """Each part's floor: 1 + the highest floor it imports (1 for a part that imports none); a loop raises."""
    floor: dict[str, int] = {}

    def visit(p: str, path: tuple[str, ...]) -> int:
        if p in path:
            raise AssertionError(f"import loop: {' -> '.join((*path[path.index(p) :], p))}")
        if p not in floor:
            floor[p] = 1 + max((visit(q, (*path, p)) for q in edges.get(p, ())), default=0)
        return floor[p]

    for p in edges:
        visit(p, ())
    return floor


def test_no_part_of_the_library_imports_one_that_imports_it_back():
    layers(graph())


def test_the_longest_chain_of_imports_is_at_most_six_parts():
    floor = layers(graph())
    by_floor = {}
    for p, f in floor.items():
        by_floor.setdefault(f, []).append(p)
    for f in sorted(by_floor):
        print(f"floor {f}: {', '.join(sorted(by_floor[f]))}")
    assert max(floor.values()) <= MAX_DEPTH, {f: sorted(ps) for f, ps in sorted(by_floor.items())}


def test_a_loop_is_caught():
    """The check itself: a made-up loop (io imports stages) fails with the loop named."""
    edges = {k: set(v) for k, v in graph().items()}
    edges["io"] = edges.get("io", set()) | {"stages"}
    try:
        layers(edges)
    except AssertionError as e:
        assert "io" in str(e) and "stages" in str(e)
    else:
        raise AssertionError("a loop through io and stages was not found")
