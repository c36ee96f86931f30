"""The example apps of the comparisons and the working copies each side builds.

``APPS`` are the three apps of ``bench/compare.py``; ``COMPILED`` is the app with compiled
dependencies of ``bench/compiled.py``.

Each side gets its own copy of the app in the bench's work directory, so edits made for the
"one-line change" measurements never touch ``examples/``.  The Dockerfile side's copy names
the configured simple index as the project's Poetry source (see :func:`dockerfile_copy`).
"""

from __future__ import annotations

import re
import shutil
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _common import ROOT

from slimline.project import pyproject as project_mod


@dataclass(frozen=True)
class App:
    key: str  # short name used in tables, registry repositories and tags
    label: str
    directory: Path  # under examples/
    module: str  # imported by the smoke check
    edit: str  # the file the one-line change appends to (relative to the project)
    entry_module: str  # what `python -m` runs in the Dockerfile image

    def debian_packages(self) -> list[str]:
        """``[tool.slimline.debian] packages`` of the app (extra packages in slimline's base)."""
        return self._debian("packages")

    def build_packages(self) -> list[str]:
        """``[tool.slimline.debian] build-packages`` of the app (the -dev packages of its builds)."""
        return self._debian("build-packages")

    def _debian(self, key: str) -> list[str]:
        data = tomllib.loads((self.directory / "pyproject.toml").read_text())
        return list(data.get("tool", {}).get("slimline", {}).get("debian", {}).get(key, []))


APPS = (
    App(
        "fastapi",
        "FastAPI + uvicorn[standard] + requests",
        ROOT / "examples" / "fastapi-app",
        "hello.main",
        "src/hello/main.py",
        "uvicorn",
    ),
    App("cli", "click CLI", ROOT / "examples" / "cli-app", "tally.cli", "src/tally/cli.py", "tally"),
    App(
        "pandas",
        "numpy + pandas job",
        ROOT / "examples" / "pandas-job",
        "report.job",
        "src/report/job.py",
        "report",
    ),
)


# the app of bench/compiled.py: three dependencies the index has only as sdists for Linux
COMPILED = App(
    "compiled",
    "python-ldap + psycopg2 + mysqlclient, sdists only",
    ROOT / "examples" / "compiled-app",
    "dbclients.check",
    "src/dbclients/check.py",
    "dbclients",
)


_NONCE = time.time_ns()  # edits differ between bench runs too, so no cache of any tool has seen them


def one_line_change(project: Path, app: App, n: int) -> None:
    """Append one line to the app's source: a real code change that both tools must pick up."""
    path = project / app.edit
    path.write_text(path.read_text() + f"_BENCH_EDIT = {n}  # run {_NONCE}\n")


def lock_edit(project: Path, app: App, n: int) -> None:
    """A comment appended to poetry.lock (no package changes) and a line to the app: what
    invalidates a Dockerfile's dependency install."""
    lock = project / "poetry.lock"
    lock.write_text(lock.read_text() + f"# bench: lock changed ({n})\n")
    one_line_change(project, app, 1000 + n)


def slimline_copy(app: App, dest: Path) -> Path:
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(app.directory, dest, ignore=shutil.ignore_patterns("dist", "__pycache__"))
    return dest


def dockerfile_copy(app: App, dest: Path, index_url: str) -> Path:
    """A copy whose pyproject.toml and poetry.lock name ``index_url`` as the primary source.

    The example locks carry no source (as for packages from PyPI); Poetry then installs through
    PyPI's JSON API, which these machines do not reach.  A project behind such a network names
    the reachable simple index as its source, which is what this copy does: the same locked
    versions and hashes, each package marked as coming from that ``legacy`` source, and the
    content-hash recomputed (Poetry counts sources in it), so ``poetry install`` accepts the lock.
    """
    import tomlkit

    slimline_copy(app, dest)
    pyproject: Any = tomlkit.parse((dest / "pyproject.toml").read_text())
    source = tomlkit.table()
    source.update({"name": "bench-index", "url": index_url, "priority": "primary"})
    sources = tomlkit.aot()
    sources.append(source)
    pyproject["tool"]["poetry"]["source"] = sources
    (dest / "pyproject.toml").write_text(tomlkit.dumps(pyproject))
    lock: Any = tomlkit.parse((dest / "poetry.lock").read_text())
    for pkg in lock["package"]:
        if "source" not in pkg:
            table = tomlkit.table()
            table.update({"type": "legacy", "url": index_url, "reference": "bench-index"})
            pkg["source"] = table
    lock["metadata"]["content-hash"] = project_mod.load(dest).content_hash()
    (dest / "poetry.lock").write_text(tomlkit.dumps(lock))
    return dest


def repo_name(text: str) -> str:
    """A registry repository path component made from ``text``."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
