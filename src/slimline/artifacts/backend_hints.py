"""What a PEP 517 backend's output says: a hint that follows the cause of a failure, and the
warnings of a build that worked.

:func:`hint_for` looks at the source tree and the backend's output for three causes that users
meet with their own project: a version taken from git (setuptools-scm, hatch-vcs,
poetry-dynamic-versioning, ...) in a tree that is no git checkout, a project with no
package for the backend to put in a wheel (an application: ``package-mode = false``), and a
readme that ``pyproject.toml`` names and the tree lacks (often an application never installed
as a package, ``poetry install --no-root``).  It
returns "" when neither applies, so the caller keeps its general hint.

:func:`warnings_in` picks the warnings out of a backend's output (Python warnings, compiler
warnings, ``WARNING:`` lines), each with the indented lines that belong to it.
:func:`relayed` collects the Python warnings raised on the calling thread while a backend runs
(pyproject_hooks relays the backend's that way): ``warnings.catch_warnings`` swaps process-wide
state and is not safe while builds run on several threads.

Pure except for reading ``pyproject.toml`` (at most 1 MiB) and checking for ``.git``.
"""

from __future__ import annotations

import contextlib
import re
import threading
import tomllib
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TextIO

__all__ = ["hint_for", "relayed", "summary", "warnings_in"]

# Build requirement (or build backend package) that takes the version from version control ->
# how to give it a version instead.
_FROM_VCS = {
    "setuptools-scm": "SETUPTOOLS_SCM_PRETEND_VERSION=1.2.3",
    "hatch-vcs": "SETUPTOOLS_SCM_PRETEND_VERSION=1.2.3",
    "flit-scm": "SETUPTOOLS_SCM_PRETEND_VERSION=1.2.3",
    "poetry-dynamic-versioning": "POETRY_DYNAMIC_VERSIONING_BYPASS=1.2.3",
    "uv-dynamic-versioning": "UV_DYNAMIC_VERSIONING_BYPASS=1.2.3",
    "versioningit": "",
    "setuptools-git-versioning": "",
    "dunamai": "",
    "versioneer": "",
    "pbr": "PBR_VERSION=1.2.3",
}
_VERSION_TROUBLE = re.compile(r"(?i)\b(version|git|vcs|scm)\b")
_NO_PACKAGE = re.compile(
    r"No file/folder found for (package|module) \S+"  # poetry-core, flit
    r"|Unable to determine which files to ship inside the wheel"  # hatchling
)
_WARNING = re.compile(r"(?i)warning:")
# Warnings that say nothing a user can act on: setuptools' "byte-compiling is disabled" (when
# PYTHONDONTWRITEBYTECODE is set, as in most CI and container environments).
_BENIGN = re.compile(r"byte-compiling is disabled")
_LOCATION = re.compile(r"^\S*?:\d+:(\d+:)?\s*")  # "/tmp/x/setuptools/dist.py:759: " or "a.c:3:5: "
_MAX_TOML = 1 << 20


def hint_for(source_dir: Path, output: str) -> str:
    """A hint for a failed build of ``source_dir`` whose backend wrote ``output``, or ""."""
    if _NO_PACKAGE.search(output):
        return (
            f"the backend found no package to put in the wheel of {source_dir}. If it is an "
            "application rather than a library, set package-mode = false under [tool.poetry] "
            "(slimline then copies its files into the image); else list its modules in "
            "[tool.poetry] packages"
        )
    missing = _missing_readme(source_dir)
    if missing is not None and Path(missing).name in output:
        return _readme_hint(source_dir, missing)
    tool = _vcs_versioning(source_dir)
    if tool is not None and not _in_git_checkout(source_dir) and _VERSION_TROUBLE.search(output):
        bypass = _FROM_VCS[tool]
        instead = f", or give the version with {bypass} in the environment" if bypass else ""
        return (
            f"{tool} takes the version from git, and {source_dir} is not in a git checkout (no .git): "
            f"build from a checkout with its history and tags{instead}"
        )
    return ""


def _missing_readme(source_dir: Path) -> str | None:
    """The readme ``pyproject.toml`` names (``project.readme``, ``tool.poetry.readme``) that is
    not a file in ``source_dir``, if any."""
    data = _pyproject(source_dir)
    project, tool = data.get("project", {}), data.get("tool", {})
    poetry = tool.get("poetry", {}) if isinstance(tool, dict) else {}
    named: list[object] = []
    for table in (project, poetry):
        value = table.get("readme") if isinstance(table, dict) else None
        named.extend(value if isinstance(value, list) else [value])
    for value in named:
        path = value.get("file") if isinstance(value, dict) else value
        if isinstance(path, str) and path and not (source_dir / path).is_file():
            return path
    return None


def _readme_hint(source_dir: Path, missing: str) -> str:
    name = Path(missing).name.lower()
    parent = (source_dir / missing).parent
    try:
        near = sorted(e.name for e in parent.iterdir() if e.name.lower() == name)
    except OSError:
        near = []
    found = f" (it has {', '.join(near)}: file names are case-sensitive)" if near else ""
    return (
        f"pyproject.toml names the readme {missing}, which is not in {source_dir}{found}: add the "
        "file or correct `readme`. If the project is an application that is not meant to be "
        "installed as a package (as with `poetry install --no-root`), set package-mode = false "
        "under [tool.poetry] instead: slimline then copies its files into the image"
    )


def _vcs_versioning(source_dir: Path) -> str | None:
    """The tool of :data:`_FROM_VCS` the tree's build system uses, if any."""
    build_system = _pyproject(source_dir).get("build-system", {})
    if not isinstance(build_system, dict):
        return None
    requires = build_system.get("requires", [])
    names = [_name(r) for r in requires if isinstance(r, str)] if isinstance(requires, list) else []
    backend = build_system.get("build-backend")
    if isinstance(backend, str):
        names.append(_name(backend.split(".")[0]))
    return next((n for n in names if n in _FROM_VCS), None)


def _pyproject(source_dir: Path) -> dict[str, Any]:
    try:
        with (source_dir / "pyproject.toml").open("rb") as f:
            raw = f.read(_MAX_TOML + 1)
        return {} if len(raw) > _MAX_TOML else tomllib.loads(raw.decode("utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return {}


def _name(requirement: str) -> str:
    m = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    return re.sub(r"[-_.]+", "-", m.group(1)).lower() if m else ""


def _in_git_checkout(path: Path) -> bool:
    return any((p / ".git").exists() for p in (path.resolve(), *path.resolve().parents))


# -- warnings of a build that worked ----------------------------------------------------------


def warnings_in(
    outputs: Iterable[str], *, caught: Iterable[str] = (), most: int = 20, lines: int = 40
) -> list[list[str]]:
    """The warnings of a backend, in order and without repeats, each as its lines: first the
    Python warnings ``caught`` (their messages, as pyproject_hooks relays them), then those in
    ``outputs`` (each a stream's text): a warning's own line, then the indented, blank or
    ``!!`` lines that follow it (setuptools' boxes).  At most ``most`` warnings of at most
    ``lines`` lines; :data:`_BENIGN` ones are left out."""
    found: list[list[str]] = []
    seen: set[str] = set()

    def add(first: str) -> list[str] | None:
        key = _LOCATION.sub("", first.strip())
        if key in seen or len(found) >= most or _BENIGN.search(key):
            return None
        seen.add(key)
        found.append([first.rstrip()])
        return found[-1]

    for message in caught:
        message_lines = message.strip().splitlines() or [""]
        block = add(message_lines[0])
        if block is not None:
            block.extend(line.rstrip() for line in message_lines[1:lines])
    for output in outputs:
        block = None
        for line in output.splitlines():
            if _WARNING.search(line):
                block = add(line)
            elif block is not None and (not line.strip() or line[:1].isspace() or line.strip() == "!!"):
                if len(block) < lines:
                    block.append(line.rstrip())
            else:
                block = None
    for block in found:
        while block and not block[-1].strip():
            block.pop()
    return found


def summary(found: list[list[str]]) -> str:
    """``2 warnings from the backend, the first: "SetuptoolsDeprecationWarning: ..." (-v shows them)``."""
    first = _LOCATION.sub("", found[0][0].strip()) if found[0] else ""
    if len(first) > 120:
        first = first[:117] + "..."
    count = "1 warning" if len(found) == 1 else f"{len(found)} warnings"
    lead = "" if len(found) == 1 else ", the first"
    return f'{count} from the backend{lead}: "{first}" (-v shows the full text)'


# -- Python warnings raised on one thread -------------------------------------------------------

_local = threading.local()
_hook_lock = threading.Lock()
_hook_users = 0
_hook_previous: list[Any] = []


def _show(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    sink: list[str] | None = getattr(_local, "sink", None)
    if sink is not None:
        sink.append(str(message))
    else:
        _hook_previous[-1](message, category, filename, lineno, file, line)


@contextlib.contextmanager
def relayed() -> Iterator[list[str]]:
    """The messages of the Python warnings raised on this thread inside the block (shown nowhere
    else); warnings of other threads go where they went before."""
    global _hook_users
    with _hook_lock:
        if _hook_users == 0:
            _hook_previous.append(warnings.showwarning)
            warnings.showwarning = _show
        _hook_users += 1
    outer = getattr(_local, "sink", None)
    sink: list[str] = []
    _local.sink = sink
    try:
        yield sink
    finally:
        _local.sink = outer
        with _hook_lock:
            _hook_users -= 1
            if _hook_users == 0:
                warnings.showwarning = _hook_previous.pop()
