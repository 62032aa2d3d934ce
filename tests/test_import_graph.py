"""kspec's modules import each other as a DAG (issue 12): every import statement of every
module, function-level ones included, parsed with ast; imports under `if TYPE_CHECKING:` do
not run and are left out. An edge goes to the module an import names (`from . import ir` to
kspec.ir, `from .binding import bind` to kspec.binding, `from .. import load` to kspec's
__init__); the package __init__ files Python runs first on the way to a submodule are not
edges, or every package that imports its children would be a cycle."""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "kspec"

Edges = dict[str, dict[str, str]]     # module -> {imported module: "file:line" of the import}

ALLOWED: frozenset[str] = frozenset()   # no cycle is allowed


def module_name(path: Path) -> tuple[str, bool]:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    is_package = parts[-1] == "__init__"
    return ".".join(parts[:-1] if is_package else parts), is_package


def _type_checking_nodes(tree: ast.Module) -> set[int]:
    skip: set[int] = set()
    for node in ast.walk(tree):
        test = getattr(node, "test", None)
        if isinstance(node, ast.If) and (getattr(test, "id", None) == "TYPE_CHECKING"
                                         or getattr(test, "attr", None) == "TYPE_CHECKING"):
            skip.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    return skip


def _imported(node: ast.AST, package: str, modules: set[str]) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    if node.level:
        base = package.split(".")[:len(package.split(".")) - (node.level - 1)]
        source = ".".join(base + ([node.module] if node.module else []))
    else:
        source = node.module or ""
    # `from pkg import sub` imports the submodule; `from mod import name` the module
    return [f"{source}.{a.name}" if f"{source}.{a.name}" in modules else source
            for a in node.names]


def import_graph() -> Edges:
    files = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
    modules = {name for name, _ in files}
    graph: Edges = {}
    for (name, is_package), path in files.items():
        tree = ast.parse(path.read_text(), str(path))
        skip = _type_checking_nodes(tree)
        package = name if is_package else name.rpartition(".")[0]
        edges = graph.setdefault(name, {})
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            for target in _imported(node, package, modules):
                if target in modules and target != name:
                    where = f"{path.relative_to(PACKAGE.parent)}:{node.lineno}"
                    edges.setdefault(target, where)
    return graph


def cycles(graph: Edges) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def one_cycle(graph: Edges, component: list[str]) -> str:
    """A cycle through the component's first module, each import with its file:line."""
    start, inside = component[0], set(component)
    paths = {start: [start]}
    frontier = [start]
    while frontier:       # breadth first: the shortest way back to start
        v = frontier.pop(0)
        for w in sorted(graph[v]):
            if w == start:
                path = paths[v] + [start]
                return "\n".join(f"  {a} -> {b}  ({graph[a][b]})" for a, b in zip(path, path[1:]))
            if w in inside and w not in paths:
                paths[w] = paths[v] + [w]
                frontier.append(w)
    return ""


def test_imports_form_a_dag() -> None:
    graph = import_graph()
    found = [c for c in cycles(graph) if not set(c) <= ALLOWED]
    report = "\n\n".join(f"{len(c)} modules in a cycle: {', '.join(c)}\n{one_cycle(graph, c)}"
                         for c in found)
    assert not found, f"kspec's imports are not a DAG:\n\n{report}"


def test_a_cycle_is_found_and_printed() -> None:
    graph = {"a": {"b": "a.py:1"}, "b": {"c": "b.py:2"}, "c": {"a": "c.py:3"}, "d": {"a": "d.py:4"}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert one_cycle(graph, ["a", "b", "c"]) == ("  a -> b  (a.py:1)\n  b -> c  (b.py:2)\n"
                                                  "  c -> a  (c.py:3)")


def test_function_level_imports_count_and_type_checking_ones_do_not() -> None:
    graph = import_graph()
    assert "kspec.torch_ops" in graph["kspec.api"]          # inside Kernel.op
    assert "kspec.api" not in graph["kspec.torch_ops"]      # under TYPE_CHECKING only
    assert "kspec.ir" in graph["kspec.binding"]             # from . import ir


def private_imports(root: Path = PACKAGE) -> list[str]:
    """Every `from <kspec module> import _name` (function-level ones included): a private
    name used outside its module. Dunders (__version__) and private aliases of public names
    (`import arch_info as _arch_info`) are not private names crossing."""
    found = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.ImportFrom) or node.module == "__future__":
                continue
            if not node.level and not (node.module or "").startswith("kspec"):
                continue
            for a in node.names:
                if a.name.startswith("_") and not a.name.startswith("__"):
                    found.append(f"{path.relative_to(root.parent)}:{node.lineno}: {a.name}")
    return found


def test_no_private_name_crosses_a_module() -> None:
    found = private_imports()
    assert not found, "private names imported across modules (make them public, with a " \
                      "docstring, or move them):\n" + "\n".join(found)


def test_a_private_import_is_found(tmp_path: Path) -> None:
    pkg = tmp_path / "kspec"
    pkg.mkdir()
    (pkg / "a.py").write_text("from __future__ import annotations\n"
                              "from .b import public, _hidden\n"
                              "from os import _exit\n"
                              "def f():\n    from kspec.b import _late\n")
    assert private_imports(pkg) == ["kspec/a.py:2: _hidden", "kspec/a.py:5: _late"]
