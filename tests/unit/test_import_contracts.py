"""The rooms' import rules hold, a room reaches another only through its public modules, no module
imports itself through others (late imports inside functions included: they hide circles, they do
not remove them), and no product module grows past what one reader takes in."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("contract", "executors", "models", "flows", "gateway")


def test_the_import_contracts_of_pyproject_hold() -> None:
    lint = Path(sys.executable).parent / "lint-imports"
    done = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout


#: Lines a product module may hold: past this, it is several modules in one file.
MAX_MODULE_LINES = 600


def test_no_product_module_is_several_modules_in_one_file() -> None:
    sizes = {
        str(path.relative_to(ROOT)): len(path.read_text(encoding="utf-8").splitlines())
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
    }
    assert sizes, "no product module found"
    assert {name: lines for name, lines in sizes.items() if lines > MAX_MODULE_LINES} == {}


def test_no_import_circles() -> None:
    graph = grimp.build_graph(*PACKAGES, exclude_type_checking_imports=True)
    circles = _strongly_connected(graph, sorted(graph.modules))
    assert circles == [], "import circles: " + "; ".join(" -> ".join(circle) for circle in circles)


def test_product_code_never_imports_tests_or_benchmarks() -> None:
    graph = grimp.build_graph(*PACKAGES, "tests", "bench", exclude_type_checking_imports=True)
    leaks = [
        (importer, imported)
        for package in PACKAGES
        for importer in graph.find_children(package) | {package}
        for imported in graph.find_modules_directly_imported_by(importer)
        if imported.split(".")[0] in ("tests", "bench")
    ]
    assert leaks == []


def test_a_room_reaches_another_only_through_its_public_modules() -> None:
    """A module whose name starts with ``_`` is its room's own business: another room that imports
    it pins what the owner may change."""
    graph = grimp.build_graph(*PACKAGES, exclude_type_checking_imports=True)
    reaches = [
        (importer, imported)
        for package in PACKAGES
        for importer in graph.find_children(package) | graph.find_descendants(package)
        for imported in graph.find_modules_directly_imported_by(importer)
        if imported.split(".")[0] != package and any(part.startswith("_") for part in imported.split(".")[1:])
    ]
    assert sorted(reaches) == []


def _strongly_connected(graph: grimp.ImportGraph, modules: list[str]) -> list[list[str]]:
    """Tarjan's algorithm, iteratively: the groups of two or more modules that import each other."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    circles: list[list[str]] = []
    counter = 0
    for start in modules:
        if start in index:
            continue
        work = [(start, iter(sorted(graph.find_modules_directly_imported_by(start))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.find_modules_directly_imported_by(child)))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    circles.append(sorted(group))
    return circles
