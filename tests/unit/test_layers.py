"""The package's layers point down: no module imports, at any depth (top level, inside a function, or for type
checking only), a module that imports it back."""

import ast
from pathlib import Path

import mechgrok

PACKAGE = Path(mechgrok.__file__).parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Module -> the mechgrok modules it imports anywhere in its source (``from . import x`` counts as x)."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = package.split(".")
                base = base[: len(base) - node.level + 1] if node.level else []
                target = ".".join(base + ([node.module] if node.module else []))
                for alias in node.names:
                    child = f"{target}.{alias.name}"
                    found.add(child if child in modules else target)
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
        graph[name] = {m for m in found if m in modules and m != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected component of more than one module (Tarjan)."""
    index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def _without_packages(graph):
    """Package __init__ files re-export their modules; an edge into one is read as an edge into what it re-exports."""
    packages = {m for m in graph if (PACKAGE.parent / m.replace(".", "/") / "__init__.py").exists()}
    return {m: {t for t in targets if t not in packages} for m, targets in graph.items() if m not in packages}


def test_the_import_graph_has_no_circle():
    assert cycles(_without_packages(import_graph())) == []


def test_the_checker_finds_a_circle_when_there_is_one():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_lower_layers_know_nothing_of_the_analysis():
    graph = import_graph()
    for low in ("mechgrok.groups", "mechgrok.lens", "mechgrok.tasks", "mechgrok.run", "mechgrok.train",
                "mechgrok.tables", "mechgrok.model", "mechgrok.config"):
        assert not any(m.startswith(("mechgrok.analysis", "mechgrok.experiments", "mechgrok.sweep"))
                       for m in graph[low]), (low, graph[low])


def test_only_the_hooked_module_imports_transformer_lens():
    """TransformerLens 3 and 4 differ (HookedTransformer vs TransformerBridge): one module owns the difference."""
    importers = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([node.module or ""] if isinstance(node, ast.ImportFrom)
                     else [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            if any(n.split(".")[0] == "transformer_lens" for n in names):
                importers.add(_module_name(path))
    assert importers == {"mechgrok.hooked"}, importers
