"""``python -m bench.tools.layers``: the project's imports checked against its layers.

Every import of the project's own modules (at the top of a file or inside a function) is read
from the source (``ast``, nothing is imported) and three rules are checked:

- no cycles: no module reaches itself through the imports of project modules;
- layer order: a module imports only modules of its own layer or of lower ones (``LAYERS``,
  lowest first); ``bench.report`` imports only the store, the runtime and itself;
- no private names: no module imports another module's ``_name`` (or reads ``module._name``).
"""
from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("bench", "datasets", "models")

# Lowest first; a module's layer is the longest prefix of its dotted name listed here.
LAYERS = (
    ("models",),
    ("bench.runtime",),
    ("datasets.core",),
    ("datasets.registry",),
    ("datasets.synthetic", "datasets.files", "datasets.mmnist"),
    ("datasets.standard",),
    ("datasets", "datasets.examples"),
    ("bench.recipes",),
    ("bench.config", "bench.store"),
    ("bench.report",),
    ("bench.evaluation",),
    ("bench.train",),
    ("bench.cost",),
    ("bench.track",),
    ("bench.grid",),
    ("bench.launch", "bench.predict", "bench.verify"),
    ("bench.cli", "bench.tools", "bench.loop_bench", "bench"),
    ("run_bench",),
)
# Layers that may be imported only by the modules named here (and by themselves).
IMPORTED_ONLY_BY = {"bench.report": ("bench.cli", "bench.tools")}
# Layers whose modules may import nothing of the project but these (and themselves).
IMPORTS_ONLY = {"bench.report": ("bench.store", "bench.runtime")}


@dataclass(frozen=True)
class Import:
    source: str  # the importing module, dotted
    target: str  # the imported project module, dotted
    names: tuple[str, ...]  # names taken from it (``from target import a, b``), or ()
    line: int

    def where(self, root: Path) -> str:
        return f"{module_path(root, self.source).relative_to(root)}:{self.line}"


def module_path(root: Path, name: str) -> Path:
    path = root.joinpath(*name.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def project_modules(root: Path = ROOT) -> dict[str, Path]:
    """Dotted name -> file, for every module of the project's packages and ``run_bench``."""
    found = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    if (root / "run_bench.py").is_file():
        found["run_bench"] = root / "run_bench.py"
    return found


def _base(module: str, path: Path, node: ast.ImportFrom) -> str:
    """The dotted module ``from ... import`` names, with relative imports resolved."""
    if not node.level:
        return node.module or ""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    package = package[: len(package) - node.level + 1]
    return ".".join(package + ([node.module] if node.module else []))


def imports(root: Path = ROOT) -> list[Import]:
    """Every import of a project module by a project module."""
    modules = project_modules(root)
    found = []
    for module, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found += [Import(module, alias.name, (), node.lineno) for alias in node.names
                          if alias.name in modules]
            elif isinstance(node, ast.ImportFrom):
                base = _base(module, path, node)
                submodules = [a.name for a in node.names if f"{base}.{a.name}" in modules]
                names = tuple(a.name for a in node.names if a.name not in submodules)
                found += [Import(module, f"{base}.{name}", (), node.lineno) for name in submodules]
                if base in modules and (names or not submodules):
                    found.append(Import(module, base, names, node.lineno))
    return found


def layer(module: str) -> str:
    """The longest prefix of ``module`` that names a layer."""
    best = max((name for group in LAYERS for name in group
                if module == name or module.startswith(name + ".")), key=len, default=None)
    if best is None:
        raise ValueError(f"module {module!r} is in no layer; add it to LAYERS in {__name__}")
    return best


def rank(module: str) -> int:
    name = layer(module)
    return next(i for i, group in enumerate(LAYERS) if name in group)


def _within(module: str, prefixes) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def order_problems(found: list[Import], root: Path = ROOT) -> list[str]:
    problems = []
    for imp in found:
        source, target = layer(imp.source), layer(imp.target)
        if source == target:
            continue
        if rank(imp.target) > rank(imp.source):
            problems.append(f"{imp.where(root)}: {imp.source} ({source}) imports {imp.target} "
                            f"({target}), a higher layer")
        elif target in IMPORTED_ONLY_BY and not _within(imp.source, IMPORTED_ONLY_BY[target]):
            problems.append(f"{imp.where(root)}: {imp.source} imports {imp.target}; {target} is "
                            f"imported only by {', '.join(IMPORTED_ONLY_BY[target])}")
        elif source in IMPORTS_ONLY and not _within(imp.target, IMPORTS_ONLY[source]):
            problems.append(f"{imp.where(root)}: {imp.source} imports {imp.target}; {source} "
                            f"imports only {', '.join(IMPORTS_ONLY[source])}")
    return problems


def private_problems(found: list[Import], root: Path = ROOT) -> list[str]:
    """``from m import _name`` of another module, and ``m._name`` where ``m`` is an imported
    project module."""
    problems = [f"{imp.where(root)}: {imp.source} imports {imp.target}.{name}, a private name"
                for imp in found for name in imp.names if _private(name)]
    modules = project_modules(root)
    for module, path in modules.items():
        tree = ast.parse(path.read_text(), str(path))
        bound = _module_names(module, path, tree, modules)
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id in bound and _private(node.attr)
                    and bound[node.value.id] != module):
                problems.append(f"{path.relative_to(root)}:{node.lineno}: {module} reads "
                                f"{bound[node.value.id]}.{node.attr}, a private name")
    return problems


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _module_names(module: str, path: Path, tree: ast.Module, modules: dict) -> dict[str, str]:
    """Local name -> project module, for names an import binds to a module."""
    bound = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname and alias.name in modules:
                    bound[alias.asname] = alias.name
        elif isinstance(node, ast.ImportFrom):
            base = _base(module, path, node)
            for alias in node.names:
                if f"{base}.{alias.name}" in modules:
                    bound[alias.asname or alias.name] = f"{base}.{alias.name}"
    return bound


def cycles(found: list[Import]) -> list[list[str]]:
    """The import cycles: strongly connected groups of modules (Tarjan), each sorted."""
    graph: dict[str, set[str]] = {}
    for imp in found:
        graph.setdefault(imp.source, set()).add(imp.target)
        graph.setdefault(imp.target, set())
    index, low, stack, on_stack, groups = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1 or node in graph[node]:
                groups.append(sorted(group))

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10 * len(graph) + 100))
    try:
        for node in sorted(graph):
            if node not in index:
                visit(node)
    finally:
        sys.setrecursionlimit(limit)
    return sorted(groups)


def problems(root: Path = ROOT) -> list[str]:
    """Every broken rule, one line each (empty when the imports are in order)."""
    found = imports(root)
    return ([f"import cycle among: {', '.join(group)}" for group in cycles(found)]
            + order_problems(found, root) + private_problems(found, root))


def main(argv: list[str] | None = None) -> int:
    found = problems(Path(argv[0]) if argv else ROOT)
    for line in found:
        print(line)
    print(f"{len(found)} problem(s)" if found else "imports in order: no cycles, no upward or "
          "private imports", file=sys.stderr if found else sys.stdout)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
