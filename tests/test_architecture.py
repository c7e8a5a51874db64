"""The package layout, measured from the code's own imports (issue 24, "Stages as packages").

Every module under negmine/ is parsed with `ast` (nothing is imported), and every import in it is
read, at module level and inside functions alike (a lazy import is still a dependency: it only moves
the failure to run time). From those imports the module graph is built and four rules are checked:

(a) no import circle among negmine's modules;
(b) no private name (`_x`, not `__x__`) of one negmine module used by another, neither imported
    (`from negmine.x import _y`) nor reached as an attribute (`x._y`, `negmine.x._y`, `Cls._y`), nor
    read off an object (`src._y` where no code of this module defines `_y`: another module's
    private attribute; `self._y` and `cls._y` are the module's own);
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
# modules another branch is splitting right now: the lead removes the entry after merging
SIZE_PENDING: set[str] = set()          # modules allowed over the limit while being split: none today

# stage -> the stages it must not import. A stage is a subpackage of negmine (negmine.sources.* is
# "sources") or a top-level module (negmine.pipeline is "pipeline"). Read from the bottom up:
# the shared ground (errors, images, naming, seeds, progress, cache, engine, positives, recipes)
# imports no stage; sources read pools; filters judge what the sources give; outputs write what
# was decided; evaluation (`eval`) reads an output back with a model's scores; sampling (the draw,
# `mine`, which may draw from what evaluation found) and synthetic (cutouts) hand their images to the
# outputs; pipeline wires the stages; cli sits on top, and nothing else imports it.
_STAGES = {"sources", "filters", "outputs", "evaluation", "sampling", "synthetic", "pipeline", "cli"}
_GROUND = {"errors", "images", "naming", "seeds", "progress", "cache", "engine", "positives", "recipes", "licences"}
FORBIDDEN: dict[str, set[str]] = {
    "errors": _STAGES | _GROUND - {"errors"},
    "images": _STAGES | {"engine", "positives", "recipes"},
    "naming": _STAGES | _GROUND - {"naming", "errors"},
    "licences": _STAGES | _GROUND - {"licences", "errors"},
    "seeds": _STAGES | _GROUND - {"seeds"},
    "progress": _STAGES | {"engine", "positives", "recipes"},
    "cache": _STAGES | {"engine", "positives", "recipes"},
    "engine": _STAGES | {"positives", "recipes"},
    "positives": _STAGES | {"engine", "recipes"},
    "recipes": _STAGES | {"engine", "positives"},
    "sources": _STAGES - {"sources"},
    "filters": _STAGES - {"sources", "filters"},
    "outputs": {"evaluation", "sampling", "synthetic", "pipeline", "cli"},
    "evaluation": {"sampling", "synthetic", "pipeline", "cli"},
    "sampling": {"synthetic", "pipeline", "cli"},
    "synthetic": {"evaluation", "sampling", "pipeline", "cli"},
    "pipeline": {"cli"},
    "cli": set(),
    "__main__": set(),                   # `python -m negmine`: the CLI
    "negmine": _STAGES | _GROUND,        # negmine/__init__.py: the version, importing nothing
}

OBJECT = "an object of another module"

# (importing module, owning module, name): private names allowed across modules for now.
ALLOWED_PRIVATE: set[tuple[str, str, str]] = set()      # (module, owner, name): none today; an entry says why


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


def _module_bindings(module: str) -> tuple[dict[str, str], dict[str, str], set[str]]:
    """For names bound by imports anywhere in `module`: local name -> negmine module; local name
    -> the negmine module defining the class or function it names; names of anything else
    imported (the standard library, third parties)."""
    modules: dict[str, str] = {}
    objects: dict[str, str] = {}
    external: set[str] = set()
    for node in ast.walk(TREES[module]):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.asname and a.name in MODULES:
                    modules[a.asname] = a.name
                elif not a.asname and a.name.split(".")[0] == "negmine":
                    modules["negmine"] = "negmine"
                else:
                    external.add(a.asname or a.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom):
            src = _absolute(module, node)
            for a in node.names:
                if f"{src}.{a.name}" in MODULES:
                    modules[a.asname or a.name] = f"{src}.{a.name}"
                elif src in MODULES:
                    objects[a.asname or a.name] = _definer(src, a.name)
                else:
                    external.add(a.asname or a.name)
    return modules, objects, external


def _own_private_names(module: str) -> set[str]:
    """Private names `module` defines: functions, classes, variables and attributes it assigns."""
    own: set[str] = set()
    for node in ast.walk(TREES[module]):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            own.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            own.add(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, (ast.Store, ast.Del)):
            own.add(node.attr)
    return {n for n in own if _private(n)}


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
    modules, objects, external = _module_bindings(module)
    own = _own_private_names(module)
    for node in ast.walk(TREES[module]):
        if not (isinstance(node, ast.Attribute) and _private(node.attr)):
            continue
        head = _dotted(node.value)
        first, _, rest = (head or "").partition(".")
        if first in ("self", "cls") or first in external:
            continue
        if first in modules:
            owner = ".".join([modules[first]] + ([rest] if rest else []))
            uses.append((owner if owner in MODULES else modules[first], node.attr, node.lineno))
        elif first in objects:
            uses.append((objects[first], node.attr, node.lineno))
        elif node.attr not in own:
            uses.append((OBJECT, node.attr, node.lineno))
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
                found.append(f"{MODULES[module].relative_to(ROOT.parent)}:{line} uses {name} of {owner}")
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
        if lines <= MAX_LINES or module in SIZE_PENDING:
            continue
        doc = ast.get_docstring(TREES[module]) or ""
        if not any(line.strip().startswith("Size:") for line in doc.splitlines()):
            unexplained.append(f"{path.relative_to(ROOT.parent)} ({lines} lines)")
    assert not unexplained, (f"modules over {MAX_LINES} lines without a 'Size:' line in their docstring:\n"
                             + "\n".join(unexplained))


def test_size_exemptions_are_still_needed():
    done = sorted(m for m in SIZE_PENDING
                  if m not in MODULES or len(MODULES[m].read_text(encoding="utf-8").splitlines()) <= MAX_LINES)
    assert not done, f"SIZE_PENDING entries now split or gone, remove them: {done}"


def test_every_stage_has_a_layering_rule():
    stages = {_stage(m) for m in MODULES}
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
