"""The house rule, read off the source: stages orchestrate, concepts are pure.

Every `import` of every module under src/changeover (at any depth: inside functions too) is read
with `ast`. Concepts never import stages; the records and errors every stage shares import no
other part of changeover; the engine imports nothing of the workspace, files, command line,
report, providers or signals; and no chain of imports comes back to where it started.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "changeover"

#: Shared by every layer; they import nothing else of changeover.
BASE = {"changeover.errors", "changeover.records"}
#: Pure: no workspace, no printing; they import only the base and each other.
CONCEPTS = (
    "changeover.study",
    "changeover.calls",
    "changeover.providers",
    "changeover.signals",
    "changeover.calibrate",
    "changeover.report",
    "changeover.agreement",
)
CALIBRATE_MUST_NOT_IMPORT = (
    "changeover.workspace",
    "changeover.io",
    "changeover.cli",
    "changeover.report",
    "changeover.providers",
    "changeover.signals",
)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(SRC.rglob("*.py"))}


MODULES = _modules()


def _resolve(name: str) -> str | None:
    """The module an imported name refers to: itself, or the module that defines it."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(module: str) -> set[str]:
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names = [f"{base}.{alias.name}" for alias in node.names] or [base]
        else:
            continue
        for name in names:
            if name.startswith("changeover"):
                target = _resolve(name)
                if target is not None and target != module:
                    found.add(target)
    return found


GRAPH = {module: _imports(module) for module in MODULES}


def _within(module: str, prefixes: tuple[str, ...] | set[str]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def _is_stage(module: str) -> bool:
    return not _within(module, BASE) and not _within(module, CONCEPTS)


def test_the_layers_cover_the_package() -> None:
    assert "changeover.calls" in MODULES and "changeover.generate" in MODULES
    assert _is_stage("changeover.workspace") and _is_stage("changeover.cli.fit")
    assert not _is_stage("changeover.calibrate.sampler")


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _within(m, CONCEPTS)))
def test_a_concept_never_imports_a_stage(module: str) -> None:
    stages = sorted(target for target in GRAPH[module] if _is_stage(target))
    assert not stages, f"{module} (a concept) imports the stage(s) {stages}"


@pytest.mark.parametrize("module", sorted(BASE))
def test_the_base_imports_only_the_base(module: str) -> None:
    assert GRAPH[module] <= BASE, f"{module} imports {sorted(GRAPH[module] - BASE)}"


def test_the_engine_imports_nothing_of_io_report_providers_or_signals() -> None:
    bad = sorted(
        f"{module} -> {target}"
        for module, targets in GRAPH.items()
        if _within(module, ("changeover.calibrate",))
        for target in targets
        if _within(target, CALIBRATE_MUST_NOT_IMPORT)
    )
    assert not bad


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle, or None (depth-first search with an explicit path)."""
    state: dict[str, int] = {}  # 1 on the current path, 2 finished

    def visit(module: str, path: list[str]) -> list[str] | None:
        state[module] = 1
        path.append(module)
        for target in sorted(graph.get(module, ())):
            if state.get(target) == 1:
                return path[path.index(target) :] + [target]
            if target not in state and (found := visit(target, path)) is not None:
                return found
        path.pop()
        state[module] = 2
        return None

    for module in sorted(graph):
        if module not in state and (found := visit(module, [])) is not None:
            return found
    return None


def test_no_import_cycle() -> None:
    # A package's __init__ that re-exports its own submodules is not a cycle: Python loads the
    # package first either way. Edges from a package to its own submodules are left out.
    graph = {
        module: {t for t in targets if not t.startswith(module + ".")}
        for module, targets in GRAPH.items()
    }
    cycle = _cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None
