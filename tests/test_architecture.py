"""The package layout, measured from the code's own imports (issue 24, "Stages as packages").

Every module under negmine/ is parsed with `ast` (nothing is imported), and every import in it is
read, at module level and inside functions alike (a lazy import is still a dependency: it only moves
the failure to run time). From those imports the module graph is built and four rules are checked:

(a) no import circle among negmine's modules;
(b) no private name (`_x`, not `__x__`) of one negmine module used by another, neither imported
    (`from negmine.x import _y`) nor reached as an attribute (`x._y`, `negmine.x._y`);
(c) a module over `MAX_LINES` lines says why at its top: a line of its docstring starting "Size:";
(d) the stages are layered: `FORBIDDEN` below says which stage may not import which.

How names imported from a package are counted: a package's `__init__` is the package's front door.
`from negmine.sources import Item`, where `negmine/sources/__init__.py` only re-exports `Item` from
`negmine.sources.base`, is counted as an import of `negmine.sources.base`, the module that defines it
(re-exports are followed to their definition). A name the `__init__` defines itself (`open_source`)
counts as an import of the package node `negmine.sources`, and that node imports every submodule its
`__init__` imports. So a submodule may use its siblings through the front door without a circle,
but a module that `negmine.sources` imports (say `sources/base.py`) cannot import `open_source`
without closing a circle, and a filter that imports `open_source` depends on every source module:
exactly the dependencies Python would resolve at import time.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "negmine"
MAX_LINES = 400

# stage -> the stages it must not import. A stage is a subpackage of negmine (negmine.sources.* is
# "sources") or a top-level module (negmine.pipeline is "pipeline"). Read from the bottom up:
# the shared ground (errors, images, progress, cache, engine, positives, recipes) imports no stage;
# sources read pools; filters judge what sources give; sampling and synthetic use both; outputs
# write what the others decided; pipeline wires the stages; cli sits on top and nothing imports it.
_ABOVE_SOURCES = {"filters", "sampling", "synthetic", "outputs", "pipeline", "cli"}
FORBIDDEN: dict[str, set[str]] = {
    "errors": _ABOVE_SOURCES | {"sources", "engine", "positives", "recipes", "images", "progress", "cache"},
    "images": _ABOVE_SOURCES | {"sources"},
    "progress": _ABOVE_SOURCES | {"sources"},
    "cache": _ABOVE_SOURCES | {"sources"},
    "engine": _ABOVE_SOURCES | {"sources"},
    "positives": _ABOVE_SOURCES | {"sources"},
    "recipes": _ABOVE_SOURCES,
    "sources": _ABOVE_SOURCES,
    "filters": {"sampling", "synthetic", "outputs", "pipeline", "cli"},
    "sampling": {"synthetic", "outputs", "pipeline", "cli"},
    "synthetic": {"pipeline", "cli"},
    "outputs": {"pipeline", "cli"},
    "pipeline": {"cli"},
    "cli": set(),
}

# (importing module, owning module, name): private names allowed across modules for now.
ALLOWED_PRIVATE = {
    # made public by the pipeline refactor (another branch turns pipeline.py into a package)
    ("negmine.pipeline", "negmine.filters.dedup", "_find"),
    ("negmine.pipeline", "negmine.synthetic.command", "_task"),
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES: dict[str, Path] = {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}
TREES: dict[str, ast.Module] = {m: ast.parse(p.read_text(encoding="utf-8"), str(p)) for m, p in MODULES.items()}


def _is_package(module: str) -> bool:
    return MODULES[module].name == "__init__.py"


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _owning_module(dotted: str) -> str | None:
    """The longest prefix of `dotted` that is a negmine module."""
    parts = dotted.split(".")
    for n in range(len(parts), 0, -1):
        if ".".join(parts[:n]) in MODULES:
            return ".".join(parts[:n])
    return None


def _absolute(module: str, node: ast.ImportFrom) -> str:
    """The module an ImportFrom names, relative imports resolved against `module`."""
    if not node.level:
        return node.module or ""
    base = module.split(".") if _is_package(module) else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _reexports(package: str) -> dict[str, tuple[str, str]]:
    """name -> (module, name there) for each name a package's __init__ imports from a negmine module."""
    out: dict[str, tuple[str, str]] = {}
    for node in TREES[package].body:
        if isinstance(node, ast.ImportFrom):
            src = _absolute(package, node)
            if src in MODULES:
                for a in node.names:
                    out[a.asname or a.name] = (src, a.name)
    return out


def _definer(module: str, name: str, seen: frozenset = frozenset()) -> str:
    """The module that defines `name` as seen from `module`, following package re-exports."""
    if module in seen or not _is_package(module):
        return module
    hop = _reexports(module).get(name)
    if hop is None:
        return module
    src, there = hop
    if f"{src}.{there}" in MODULES:
        return f"{src}.{there}"
    return _definer(src, there, seen | {module})


def _imports(module: str) -> list[tuple[str, str | None, int]]:
    """(imported module, name taken from it or None, line) for every negmine import in `module`."""
    out: list[tuple[str, str | None, int]] = []
    for node in ast.walk(TREES[module]):
        if isinstance(node, ast.Import):
            for a in node.names:
                target = _owning_module(a.name)
                if target:
                    out.append((target, None, node.lineno))
        elif isinstance(node, ast.ImportFrom):
            src = _absolute(module, node)
            if src not in MODULES:
                continue
            for a in node.names:
                sub = f"{src}.{a.name}"
                out.append((sub, None, node.lineno) if sub in MODULES else (src, a.name, node.lineno))
    return out


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for module in MODULES:
        for target, name, _ in _imports(module):
            dep = _definer(target, name) if name else target
            if dep != module:
                graph[module].add(dep)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one member (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _stage(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "negmine"


def _module_bindings(module: str) -> dict[str, str]:
    """Local name -> negmine module, for names bound by imports anywhere in `module`."""
    names: dict[str, str] = {}
    for node in ast.walk(TREES[module]):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.asname and a.name in MODULES:
                    names[a.asname] = a.name
                elif not a.asname and a.name.split(".")[0] == "negmine":
                    names["negmine"] = "negmine"
        elif isinstance(node, ast.ImportFrom):
            src = _absolute(module, node)
            for a in node.names:
                if f"{src}.{a.name}" in MODULES:
                    names[a.asname or a.name] = f"{src}.{a.name}"
    return names


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        head = _dotted(node.value)
        return f"{head}.{node.attr}" if head else None
    return None


def _private_uses(module: str) -> list[tuple[str, str, int]]:
    """(owning module, private name, line) for each private name of another module `module` uses."""
    uses: list[tuple[str, str, int]] = []
    for target, name, line in _imports(module):
        if name and _private(name):
            uses.append((target, name, line))
    bound = _module_bindings(module)
    for node in ast.walk(TREES[module]):
        if isinstance(node, ast.Attribute) and _private(node.attr):
            head = _dotted(node.value)
            if head is None:
                continue
            first, _, rest = head.partition(".")
            if first not in bound:
                continue
            owner = ".".join([bound[first]] + ([rest] if rest else []))
            if owner in MODULES:
                uses.append((owner, node.attr, node.lineno))
    return [(o, n, line) for o, n, line in uses if o != module]


def test_every_module_is_read():
    # the checks below are only as good as the graph: it must see the stages and their imports
    assert {"negmine.sources.base", "negmine.filters.taxonomy", "negmine.outputs.writers.local",
            "negmine.pipeline"} <= set(MODULES)
    graph = _graph()
    assert "negmine.errors" in graph["negmine.sources.base"]
    # a re-export is followed to the module that defines the name
    assert "negmine.sources.base" in _graph()["negmine.sources"]


def test_no_import_circles():
    cycles = _cycles(_graph())
    assert not cycles, "import circles among negmine's modules:\n" + "\n".join(
        " <-> ".join(c) for c in cycles)


def test_no_private_name_used_outside_its_module():
    found = []
    for module in MODULES:
        for owner, name, line in _private_uses(module):
            if (module, owner, name) not in ALLOWED_PRIVATE:
                found.append(f"{MODULES[module].relative_to(ROOT.parent)}:{line} uses {owner}.{name}")
    assert not found, "private names used outside their module:\n" + "\n".join(found)


def test_allowed_private_names_are_still_needed():
    # the whitelist shrinks: once a name is public, its entry must go
    used = {(m, o, n) for m in MODULES for o, n, _ in _private_uses(m)}
    stale = sorted(ALLOWED_PRIVATE - used)
    assert not stale, f"ALLOWED_PRIVATE entries no longer used, remove them: {stale}"


def test_long_modules_say_why():
    unexplained = []
    for module, path in MODULES.items():
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines <= MAX_LINES:
            continue
        doc = ast.get_docstring(TREES[module]) or ""
        if not any(line.strip().startswith("Size:") for line in doc.splitlines()):
            unexplained.append(f"{path.relative_to(ROOT.parent)} ({lines} lines)")
    assert not unexplained, (f"modules over {MAX_LINES} lines without a 'Size:' line in their docstring:\n"
                             + "\n".join(unexplained))


def test_every_stage_has_a_layering_rule():
    stages = {_stage(m) for m in MODULES} - {"negmine", "__main__"}
    assert stages == set(FORBIDDEN), f"stages without a rule, or rules without a stage: {stages ^ set(FORBIDDEN)}"


@pytest.mark.parametrize("stage", sorted(FORBIDDEN))
def test_stage_layering(stage):
    crossings = []
    for module in MODULES:
        if _stage(module) != stage:
            continue
        for target, name, line in _imports(module):
            dep = _definer(target, name) if name else target
            if _stage(dep) in FORBIDDEN[stage]:
                crossings.append(f"{MODULES[module].relative_to(ROOT.parent)}:{line} imports {dep}")
    assert not crossings, f"{stage} must not import {sorted(FORBIDDEN[stage])}:\n" + "\n".join(crossings)


def test_the_test_sees_a_circle_and_a_private_name():
    # the checks can fail: a made-up graph with a circle, and this file's own reading of one
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _private("_norm") and not _private("__all__") and not _private("norm")
