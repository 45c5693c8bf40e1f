"""The package's imports run downward only and form no cycle: each module sits in one layer, and may
import its own layer or lower ones (every import counts, those inside functions too)."""
import ast
from helpers import REPO

PACKAGE = REPO / "convgru_zoo"

# Lowest first. A module's layer is that of the longest prefix listed.
LAYERS = [
    ("core", ["_checks", "_files", "machine", "specs", "online", "pretrained", "convert", "run_files",
              "_zoo_registration"]),
    ("frameworks", ["torch", "mindspore"]),
    ("data", ["data"]),
    ("models", ["models"]),
    ("training", ["train", "torch.train", "mindspore.train"]),
    ("evaluation", ["evaluation"]),
    ("deploy", ["deploy"]),
    ("publishing", ["publishing"]),
    ("entry points", ["cli", "__init__"]),
]
RANK = {prefix: rank for rank, (_, prefixes) in enumerate(LAYERS) for prefix in prefixes}


def module_name(path):
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" and len(parts) > 1 else parts)


def layer(name):
    parts = name.split(".")
    for n in range(len(parts), 0, -1):
        if ".".join(parts[:n]) in RANK:
            return RANK[".".join(parts[:n])]
    raise AssertionError(f"module convgru_zoo.{name} is in no layer of {LAYERS}")


def imports(path):
    """The package's modules that ``path`` imports (relative or absolute), as names inside the package."""
    name, is_package = module_name(path), path.name == "__init__.py"
    package = name.split(".") if is_package and name != "__init__" else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                target = base + (node.module.split(".") if node.module else [])
            elif node.module and node.module.split(".")[0] == "convgru_zoo":
                target = node.module.split(".")[1:]
            else:
                continue
            for alias in node.names:  # "from . import specs" imports the module specs
                sub = ".".join(target + [alias.name])
                found.add(sub if _exists(sub) else ".".join(target) or "__init__")
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".", 1)[1] for a in node.names
                         if a.name.startswith("convgru_zoo.") and _exists(a.name.split(".", 1)[1]))
    found.discard(name)
    return found


def _exists(name):
    path = PACKAGE.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


GRAPH = {module_name(p): imports(p) for p in PACKAGE.rglob("*.py")}


def test_every_import_runs_down_the_layers():
    upward = [f"{a} ({LAYERS[layer(a)][0]}) imports {b} ({LAYERS[layer(b)][0]})"
              for a, targets in GRAPH.items() for b in targets if b != "__init__" and layer(b) > layer(a)]
    assert not upward, "\n".join(upward)


def test_imports_form_no_cycle():
    done, path = set(), []

    def visit(name):
        if name in path:
            raise AssertionError("import cycle: " + " -> ".join(path[path.index(name):] + [name]))
        if name in done:
            return
        path.append(name)
        for target in sorted(GRAPH.get(name, ())):
            if target != "__init__":  # every submodule's import runs the package's __init__ first, by design
                visit(target)
        path.pop()
        done.add(name)

    for name in sorted(GRAPH):
        visit(name)
