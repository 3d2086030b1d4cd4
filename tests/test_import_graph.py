"""No import cycle among the modules of `selfdistill` and `rewards` (static: read with `ast`, nothing imported).

What counts as an edge A -> B: any `import B` / `from B import x` / relative import in A's source, **including
imports inside functions**. A function-level import still makes A depend on B at run time; hiding a cycle
inside a function only defers it, and both modules can then no longer be read or tested apart. Not counted:
imports under `if TYPE_CHECKING:` (never executed), the implicit import of parent packages (our package
`__init__` files import nothing of ours eagerly) and `importlib.import_module` strings (the registries' lazy
``"module:attr"`` targets, which point from a registry to an implementation and never back).

    python -m pytest tests/test_import_graph.py -q
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("selfdistill", "rewards")


def module_files() -> dict[str, Path]:
    """Dotted module name -> source file, for every module of PACKAGES (a package is its `__init__.py`)."""
    out = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    """ids of every node under an `if TYPE_CHECKING:` block."""
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    return skip


def imported_names(module: str, path: Path, modules: set[str]) -> set[str]:
    """Every dotted name ``module`` imports, relative imports resolved; `from p import x` is p.x when that is
    one of ``modules`` (a submodule), else p."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = _type_checking_nodes(tree)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([node.module] if node.module else []))
            names.update(f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names)
    return names


def import_graph() -> dict[str, set[str]]:
    """module -> the modules of PACKAGES it imports (each name mapped to its longest known module prefix)."""
    files = module_files()
    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        targets = set()
        for name in imported_names(module, path, set(files)):
            while name and name not in files:
                name = name.rpartition(".")[0]
            if name and name != module:
                targets.add(name)
        graph[module] = targets
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return sorted(found)


def _describe(component: list[str], graph: dict[str, set[str]]) -> str:
    members = set(component)
    return "; ".join(f"{m} -> {', '.join(sorted(graph[m] & members))}" for m in component)


def test_no_import_cycles():
    graph = import_graph()
    assert len(graph) > 50, f"only {len(graph)} modules found under {ROOT}: the scan is broken"
    found = cycles(graph)
    assert not found, "import cycles (break them; see this file's docstring):\n" + "\n".join(
        _describe(c, graph) for c in found
    )


def test_the_scan_sees_function_level_and_relative_imports():
    """The graph is only as good as the scan: a known function-level relative import must be an edge."""
    graph = import_graph()
    assert "selfdistill.models.moe.routers" in graph["selfdistill.models.moe.tiny"]  # `from .routers import`
    assert "selfdistill.stages.sft" in graph["selfdistill.stages.distill"]
    assert "rewards.sandbox.config" in graph["rewards.sandbox.probe"]


def test_cycle_finder_reports_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(graph) == [["a", "b", "c"]]
