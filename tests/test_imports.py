"""Imports: the package stays light to import, and no module imports another that imports it back.

The cycle check reads the source with :mod:`ast` (nothing is imported), so it also sees imports written
inside functions, which hide a cycle from the interpreter until the function runs, and imports under
``if TYPE_CHECKING:``, which never run but still tie two modules to each other's definitions.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]

#: Where module names start: the package at the repository root; the baselines run with their folder on
#: ``sys.path`` (``from finetune import main``) or as ``baselines.*``, so both spellings resolve.
SOURCE_ROOTS = (REPOSITORY / "covid_ct_scan_images", REPOSITORY / "baselines")


def module_name(path: Path) -> str:
    """Dotted name of a source file, counted from the repository root (``__init__`` names its package)."""
    parts = list(path.relative_to(REPOSITORY).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def source_modules() -> dict[str, Path]:
    """Every module of the package and the baselines, by dotted name."""
    return {module_name(path): path for root in SOURCE_ROOTS for path in sorted(root.rglob("*.py"))}


def _all_imports(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement under ``node``, at any depth (functions and ``TYPE_CHECKING`` blocks included)."""
    for child in ast.walk(node):
        if isinstance(child, ast.Import | ast.ImportFrom):
            yield child


def imported_modules(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The modules of ``modules`` that the file at ``path`` (module ``name``) imports."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]

    def known(candidate: str) -> str | None:
        for spelling in (candidate, f"baselines.{candidate}"):
            if spelling in modules:
                return spelling
        return None

    found: set[str] = set()
    for statement in _all_imports(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(statement, ast.Import):
            targets = [alias.name for alias in statement.names]
        else:
            base = statement.module or ""
            if statement.level:
                anchor = package.split(".")[: len(package.split(".")) - (statement.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            # ``from package import module`` imports the module; ``from module import name`` the module itself.
            targets = [f"{base}.{alias.name}" if known(f"{base}.{alias.name}") else base for alias in statement.names]
        found.update(module for module in map(known, targets) if module is not None and module != name)
    return found


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan), each sorted; a cycle lies within each."""
    index: dict[str, int] = {}
    lowest: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = lowest[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target in sorted(graph[module]):
            if target not in index:
                visit(target)
                lowest[module] = min(lowest[module], lowest[target])
            elif target in on_stack:
                lowest[module] = min(lowest[module], index[target])
        if lowest[module] == index[module]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return sorted(groups)


def import_graph() -> dict[str, set[str]]:
    """Which module of the package and the baselines imports which."""
    modules = source_modules()
    return {name: imported_modules(name, path, modules) for name, path in modules.items()}


def test_the_cycle_finder_sees_imports_inside_functions_and_type_only_ones(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("def f():\n    from .b import g\n    return g\n")
    (package / "b.py").write_text("from pkg import a\n\ndef g():\n    return a\n")
    (package / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import d\n")
    (package / "d.py").write_text("from .c import nothing\n")
    modules = {f"pkg.{path.stem}": path for path in package.glob("[abcd].py")}
    graph = {name: imported_modules(name, path, modules) for name, path in modules.items()}
    assert graph == {"pkg.a": {"pkg.b"}, "pkg.b": {"pkg.a"}, "pkg.c": {"pkg.d"}, "pkg.d": {"pkg.c"}}
    assert import_cycles(graph) == [["pkg.a", "pkg.b"], ["pkg.c", "pkg.d"]]


def test_the_graph_sees_the_package_and_the_baselines() -> None:
    graph = import_graph()
    assert "covid_ct_scan_images.builder" in graph["covid_ct_scan_images.api"]
    assert "covid_ct_scan_images.statistics" in graph["covid_ct_scan_images.shortcuts.probes"]
    assert "covid_ct_scan_images.statistics" in graph["baselines.metrics.covid_ct_metrics.covid_ct_metrics"]


def test_no_module_imports_another_that_imports_it_back() -> None:
    cycles = import_cycles(import_graph())
    assert cycles == [], "import cycles (each group imports itself through the others): " + "; ".join(
        " <-> ".join(group) for group in cycles
    )


def test_importing_the_package_loads_no_heavy_library() -> None:
    code = (
        "import sys, covid_ct_scan_images\n"
        "heavy = {'PIL', 'sklearn', 'torch', 'imagehash', 'scipy', 'xlrd', 'matplotlib', 'transformers'}\n"
        "print(sorted(heavy & {name.split('.')[0] for name in sys.modules}))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
