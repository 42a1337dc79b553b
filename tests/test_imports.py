"""The package's import graph: no cycles, and no module importing a layer above its own
(the layers docs/design.md draws). Edges are module to module, lazy imports included: a
`from .pkg import module` is an edge to pkg.module, not to the package."""

from __future__ import annotations

import ast
import pathlib
import re
from pathlib import Path

import pytest

import lasso_edit

from .helpers import parse_python

ROOT = pathlib.Path(lasso_edit.__file__).parent

# Lowest first. A module may import its own layer and those below, never above. A package's
# modules share its layer ("parse" covers lasso_edit.parse.*). docs/design.md, "Layers".
LAYERS: list[set[str]] = [
    {"core"},  # errors, configuration, registries, the stage interfaces, the plan's types, presets
    {"imaging"},  # pixels and files: decode, encode, PNG/16-bit/JPEG blocks, arrays, geometry, verify
    {"parse", "ground", "segment", "edit", "testing"},  # the stages (and the tiny models they load)
    {"pipeline"},  # the editor and what it runs: pool, prefetch, refine, inputs, many, result, outputs
    {"sessions"},  # a conversation over edits: session, conversation, assist
    {"batch", "client", "evaluation", "train"},  # the surfaces that drive the pipeline in-process
    {"server", "mcp"},
    {"scale"},  # Ray: drives batch and the server
    {"cli", "lasso_edit"},  # the command line and the package's facade
]


parse = parse_python  # in a thread of its own (tests/helpers.py says why)


def _type_only(tree: ast.AST) -> set[int]:
    """The ids of the nodes under `if TYPE_CHECKING:`: imports for annotations, never run."""
    out: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            out |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    return out


def module_graph(types: bool = True) -> dict[str, set[str]]:
    """lasso_edit module -> the lasso_edit modules it imports (anywhere in the file; with `types`
    False, leaving out the imports under `if TYPE_CHECKING:`, which never run)."""
    modules = {}
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT.parent).with_suffix("")
        modules[".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)] = path
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        found: set[str] = set()
        tree = parse(path)
        skip = set() if types else _type_only(tree)
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            if isinstance(node, ast.ImportFrom):
                base = package
                for _ in range(max(node.level - 1, 0)):
                    base = base.rsplit(".", 1)[0]
                mod = (f"{base}.{node.module}" if node.module else base) if node.level else (node.module or "")
                found |= {f"{mod}.{a.name}" if f"{mod}.{a.name}" in modules else mod for a in node.names}
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names}
        targets = set()
        for t in found:
            while t.startswith("lasso_edit") and t not in modules and "." in t:
                t = t.rsplit(".", 1)[0]
            if t in modules and t != name:
                targets.add(t)
        graph[name] = targets
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), the facade left out:
    every module is inside the package it re-exports from."""
    graph = {k: {t for t in v if t != "lasso_edit"} for k, v in graph.items() if k != "lasso_edit"}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
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

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def layer_of(module: str) -> int:
    top = module.split(".")[1] if "." in module else module
    for i, names in enumerate(LAYERS):
        if top in names:
            return i
    raise AssertionError(f"{module} is in no layer: add it to LAYERS (and docs/design.md)")


def upward(graph: dict[str, set[str]]) -> list[str]:
    return [f"{a} (layer {layer_of(a)}) imports {b} (layer {layer_of(b)})"
            for a, targets in sorted(graph.items()) for b in sorted(targets) if layer_of(b) > layer_of(a)]


def test_the_graph_records_module_edges_not_package_edges():
    g = module_graph()
    assert "lasso_edit.imaging" in g["lasso_edit.pipeline.outputs"]  # from .imaging import ...
    assert "lasso_edit.scale.storage" in g["lasso_edit.scale.ray_batch"]  # from . import storage: the module
    assert "lasso_edit.imaging.deep" in g["lasso_edit.imaging.encode"]  # from .. import deep
    assert "lasso_edit.imaging.png" in g["lasso_edit.imaging.encode"]  # a lazy import counts too


def test_no_import_cycles():
    """No cycle among the imports that run. A type-only import (under `if TYPE_CHECKING:`) is an
    edge for the layers but not for cycles: pipeline/outputs.py names EditResult in its
    annotations, and EditResult.save writes through outputs.py."""
    assert cycles(module_graph(types=False)) == []


def test_every_relative_import_names_a_module_that_exists():
    """A lazy `from .x import y` to a module that is not there fails only when that line runs:
    moving a file (imaging.py into imaging/) once left one pointing at a sibling that was not."""
    import importlib.util

    missing = []
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT.parent).with_suffix("")
        name = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        for node in ast.walk(parse(path)):
            if isinstance(node, ast.ImportFrom) and node.level and node.module:
                base = package
                for _ in range(node.level - 1):
                    base = base.rsplit(".", 1)[0]
                target = f"{base}.{node.module}"
                if importlib.util.find_spec(target) is None:
                    missing.append(f"{name}: from {'.' * node.level}{node.module}")
    assert missing == []


def test_no_module_imports_a_layer_above_its_own():
    assert upward(module_graph()) == []


def test_a_planted_upward_import_or_cycle_is_caught():
    g = module_graph()
    g["lasso_edit.core.errors"] = g["lasso_edit.core.errors"] | {"lasso_edit.pipeline.editor"}
    assert any(s.startswith("lasso_edit.core.errors (layer 0) imports lasso_edit.pipeline.editor") for s in upward(g))
    assert any("lasso_edit.core.errors" in c and "lasso_edit.pipeline.editor" in c for c in cycles(g))
    assert "lasso_edit.pipeline.result" in module_graph()["lasso_edit.pipeline.outputs"]  # a type-only edge
    assert "lasso_edit.pipeline.result" not in module_graph(types=False)["lasso_edit.pipeline.outputs"]


@pytest.mark.parametrize("module", sorted(module_graph()))
def test_every_module_has_a_layer(module):
    layer_of(module)


# Tests that are about the whole rather than one module: the benchmarks' smoke runs, the stage
# contracts, corrections across stages, a full disk on every surface, the import graph, style, the
# README's commands, every pattern over user text, warnings from every stage to every surface.
CROSS_CUTTING = {"bench", "contracts", "corrections", "disk_full", "imports", "style", "readme", "patterns", "warnings"}


def test_the_tests_mirror_the_package():
    """tests/ has the package's folders (tests/pipeline/test_editor.py tests
    lasso_edit/pipeline/editor.py), and each test file is named for a module of its folder."""
    tests = pathlib.Path(__file__).parent
    folders = [d for d in tests.rglob("*") if d.is_dir() and not any(p.startswith((".", "_")) for p in d.relative_to(tests).parts)]
    strays = [str(d.relative_to(tests)) for d in folders if not (ROOT / d.relative_to(tests)).is_dir()]
    assert not strays, f"test folders with no package of that name: {strays}"
    for d in [tests, *folders]:
        pkg = ROOT / d.relative_to(tests)
        for f in d.glob("test_*.py"):
            name = f.stem[len("test_"):]
            if d == tests and name in CROSS_CUTTING:
                continue
            # test_MODULE.py, or test_MODULE_ASPECT.py for one side of a module (test_openai_orient.py)
            heads = ["_".join(name.split("_")[:k]) for k in range(len(name.split("_")), 0, -1)]
            # at the top of tests/, a module at the top of the package (a deeper one has its folder)
            find = pkg.glob if d == tests else pkg.rglob
            assert any(h == pkg.name or any(find(f"{h}.py")) or (pkg / h).is_dir() for h in heads), \
                f"{f.relative_to(tests)} tests no module {pkg.name}/{name}: name it for the module it tests"


def test_the_tiny_model_builders_are_imported_only_to_resolve_tiny_ids():
    g = module_graph()
    assert "lasso_edit.testing.tiny" not in g["lasso_edit.core.presets"] and "lasso_edit.testing" not in g["lasso_edit.core.presets"]
    builders = {"lasso_edit.testing.tiny", "lasso_edit.testing.flow", "lasso_edit.testing.qwen", "lasso_edit.testing.sam3"}
    users = {m for m, targets in g.items() if builders & targets} - builders
    # testing/__init__ resolves tiny: ids; the painters build their own tiny checkpoints for the
    # contract test; `lasso models` and `lasso eval` name the tiny folders
    assert users == {"lasso_edit.testing", "lasso_edit.edit.painters.sd", "lasso_edit.edit.painters.flow",
                     "lasso_edit.edit.painters.lama",
                     "lasso_edit.cli.models", "lasso_edit.cli.eval"}


DESIGN = ROOT.parent / "docs" / "design.md"
MAP_HEADING = "## Modules, layer by layer"


def package_modules() -> set[str]:
    """Every module of the package as docs/design.md's map names it: its path relative to
    lasso_edit/ (`pipeline/editor.py`), a package's `__init__.py` by its folder (`core/`), the
    package's own `__init__.py` as `__init__.py`."""
    out = set()
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT)
        if rel.name == "__init__.py" and rel.parent != pathlib.Path("."):
            out.add(f"{rel.parent.as_posix()}/")
        else:
            out.add(rel.as_posix())
    return out


def design_md_gaps(text: str) -> tuple[list[str], list[str]]:
    """(modules the map names on no line of their own, names and paths in design.md that are not
    there). A map line is two spaces, then the module, then what it does; a path anywhere in the
    file (`lasso_edit/...`, `tests/...`, `bench/...`, `docs/...`) and a module path in the map's
    descriptions (`imaging/png.py`) must exist."""
    assert MAP_HEADING in text, f"docs/design.md has no {MAP_HEADING!r} section"
    block = text.split(MAP_HEADING, 1)[1].split("\n## ", 1)[0]
    named = {m.group(1) for m in re.finditer(r"(?m)^  (\S+)", block)}
    modules = package_modules()
    missing = sorted(modules - named)
    stale = {n for n in named if n not in modules}
    for m in re.finditer(r"(?<![\w/.])((?:[a-z_0-9]+/)+[a-z_0-9]+\.py)\b", block):
        if not (ROOT / m.group(1)).is_file():
            stale.add(m.group(1))
    for m in re.finditer(r"(?<![\w/.])((?:lasso_edit|tests|bench|docs)/[\w/.]*\w)", text):
        if not (ROOT.parent / m.group(1)).exists():
            stale.add(m.group(1))
    return missing, sorted(stale)


def test_design_md_names_every_module():
    """docs/design.md's module map stays true: every module of lasso_edit/ on a line of its own,
    and no name or path there that is gone (a module moved or deleted)."""
    missing, stale = design_md_gaps(DESIGN.read_text())
    assert not missing, f"docs/design.md's module map does not name: {missing}"
    assert not stale, f"docs/design.md names what is not there: {stale}"


def test_a_module_left_out_of_design_md_or_gone_is_named():
    text = DESIGN.read_text()
    line = next(line for line in text.splitlines() if line.startswith("  pipeline/refine.py "))
    missing, _ = design_md_gaps(text.replace(line + "\n", ""))
    assert "pipeline/refine.py" in missing
    _, stale = design_md_gaps(text.replace("  pipeline/refine.py ", "  refine.py         ").replace(
        "`tests/helpers.py`", "`tests/helper.py`"))
    assert {"refine.py", "tests/helper.py"} <= set(stale)
