"""The shape of the code, checked: stages import only downward, modules and functions stay small.

The order below is the one ``docs/architecture.md`` draws.  A module may import modules of its
own level and of levels below it; an import from a lower level to a higher one (also one made
inside a function, or only for type checking) fails here with the line that makes it.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src" / "slimline"

# bottom to top; a name is a top-level module or a stage package of slimline
LEVELS: list[set[str]] = [
    {"__init__", "errors", "report", "once"},
    {"cache"},
    {"http"},
    {"context"},
    {"oci"},
    {"layers"},
    {"target"},
    {"project"},
    {"base"},
    {"plan"},
    {"artifacts"},
    {"trees"},
    {"attest"},
    {"inspect"},
    {"sign"},
    {"verify"},
    {"build"},
    {"cli", "__main__"},
]
MAX_MODULE_LINES = 420  # "about 400"
MAX_FUNCTION_LINES = 60
# argparse tables (``add`` of each command module): long by nature, one option after another
ARGUMENT_TABLES = {(f"cli/{m.stem}.py", "add") for m in (SRC / "cli").glob("*.py")}
MAX_TOP_LEVEL_MODULES = 8


def _level(unit: str) -> int:
    for i, names in enumerate(LEVELS):
        if unit in names:
            return i
    raise AssertionError(f"slimline.{unit} is in no level of tests/test_architecture.py: place it there")


def _unit(module: str) -> str:
    """``slimline.build.memo`` -> ``build``; ``slimline`` -> ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _modules() -> list[tuple[Path, str]]:
    out = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC.parent).with_suffix("")
        out.append((path, ".".join(rel.parts).removesuffix(".__init__")))
    return out


def _imports(path: Path, module: str) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "slimline":
                found += [(node.lineno, f"slimline.{a.name}") for a in node.names]
            elif node.module.startswith("slimline."):
                found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("slimline.")]
    return found


def test_no_import_runs_from_a_lower_stage_to_a_higher_one() -> None:
    upward = []
    for path, module in _modules():
        own = _level(_unit(module))
        for line, imported in _imports(path, module):
            name = imported.split(".")
            if name[-1] == "__version__":
                continue
            if _level(_unit(imported)) > own:
                upward.append(f"{path.relative_to(SRC)}:{line} imports {imported}")
    assert not upward, "imports from a lower level to a higher one:\n" + "\n".join(upward)


def test_modules_are_small() -> None:
    big = []
    for path, _ in _modules():
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > MAX_MODULE_LINES:
            big.append(f"{path.relative_to(SRC)}: {lines} lines")
    assert not big, f"modules over {MAX_MODULE_LINES} lines:\n" + "\n".join(big)


def test_functions_are_short() -> None:
    long = []
    for path, _ in _modules():
        rel = str(path.relative_to(SRC))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            if (rel, node.name) not in ARGUMENT_TABLES:
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long.append(f"{rel}:{node.lineno} {node.name}: {length} lines")
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines:\n" + "\n".join(long)


def test_the_top_level_holds_few_modules_beside_the_stages() -> None:
    top = sorted(p.stem for p in SRC.glob("*.py") if p.stem not in ("__init__", "__main__"))
    assert len(top) <= MAX_TOP_LEVEL_MODULES, top
    for package in (p for p in SRC.iterdir() if p.is_dir() and (p / "__init__.py").is_file()):
        doc = ast.get_docstring(ast.parse((package / "__init__.py").read_text(encoding="utf-8"))) or ""
        modules = [p.stem for p in package.glob("*.py") if p.stem not in ("__init__", "__main__")]
        unlisted = [m for m in modules if f"``{m}``" not in doc]
        assert not unlisted, f"slimline.{package.name}'s docstring does not list {unlisted}"
