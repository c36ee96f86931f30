"""Small Poetry projects for the end-to-end tests, each locked once per test session.

Fixtures imported into several modules are separate definitions, so the session scope alone
would lock once per module: each lock is remembered for the whole run in ``_LOCKED``.
"""

from __future__ import annotations

import io
import shutil
import tarfile
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support import ROOT, poetry_lock

_LOCKED: dict[str, Path] = {}


CLI_PYPROJECT = """\
[project]
name = "greet"
version = "1.0.0"
description = "a click CLI"
requires-python = ">=3.11"
dependencies = ["click (>=8.1,<9)"]

[project.optional-dependencies]
color = ["colorama (>=0.4)"]

[project.scripts]
greet = "greet.cli:main"

[tool.poetry]
packages = [{ include = "greet", from = "src" }]

[tool.poetry.group.dev.dependencies]
six = ">=1.16"

[build-system]
requires = ["poetry-core>=2.0,<3.0"]
build-backend = "poetry.core.masonry.api"
"""

CLI_MAIN = """\
import click

MESSAGE = "hello"


@click.command()
@click.option("--name", default="world")
def main(name: str) -> None:
    click.echo(f"{MESSAGE}, {name}!")
"""

SCRIPT_PYPROJECT = """\
[tool.poetry]
name = "scripty"
version = "0.1.0"
description = "a package-mode=false app"
authors = ["Someone <someone@example.invalid>"]
package-mode = false

[tool.poetry.dependencies]
python = ">=3.11,<4"
docopt = "0.6.2"
pywin32 = { version = ">=306", markers = "sys_platform == 'win32'" }
locallib = { path = "libs/locallib", develop = false }

[tool.slimline]
entrypoint = ["/app/.venv/bin/python", "/app/main.py"]
"""

SCRIPT_MAIN = """\
\"\"\"Usage: main.py [--count=N]\"\"\"
import docopt
import locallib

args = docopt.docopt(__doc__, argv=["--count=3"])
print("args", args["--count"], locallib.VALUE)
"""

LOCALLIB_PYPROJECT = """\
[project]
name = "locallib"
version = "0.2.0"
requires-python = ">=3.8"

[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"
"""

C_EXTENSION = """\
#define PY_SSIZE_T_CLEAN
#include <Python.h>

static PyObject *add(PyObject *self, PyObject *args) {
    long a, b;
    if (!PyArg_ParseTuple(args, "ll", &a, &b)) return NULL;
    return PyLong_FromLong(a + b);
}

static PyObject *flags(PyObject *self, PyObject *unused) {
#if defined(__OPTIMIZE__) && defined(NDEBUG)
    return PyUnicode_FromString("optimized");
#else
    return PyUnicode_FromString("NOT optimized");
#endif
}

static PyMethodDef methods[] = {
    {"add", add, METH_VARARGS, "a + b"},
    {"flags", flags, METH_NOARGS, "how it was compiled: optimized (-O, NDEBUG), or not"},
    {NULL, NULL, 0, NULL},
};
static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_fast", NULL, -1, methods};
PyMODINIT_FUNC PyInit__fast(void) { return PyModule_Create(&module); }
"""

C_EXTENSION_PYPROJECT = """\
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "fastcalc"
version = "1.0.0"
requires-python = ">=3.11"

[project.scripts]
fastcalc = "fastcalc:main"

[tool.setuptools]
packages = ["fastcalc"]
"""


def _write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def write_c_extension(root: Path) -> Path:
    """A setuptools project ``fastcalc`` (not locked) whose own C extension ``fastcalc._fast``
    adds two numbers; its ``fastcalc`` script prints ``compiled optimized`` (or ``NOT optimized``:
    built without -O or NDEBUG), then ``2+3 = 5`` and the machine.  Its C source
    carries a new comment each time, so no cache has built it: a build of it compiles."""
    unique = f"/* {uuid.uuid4().hex}: a source no cache has built */\n"
    return _write(
        root,
        {
            "fastcalc/__init__.py": (
                "import platform\nfrom fastcalc._fast import add, flags\n\n\ndef main() -> None:\n"
                "    print('compiled', flags())\n    print('2+3 =', add(2, 3), platform.machine())\n"
            ),
            "fastcalc/_fast.c": C_EXTENSION + unique,
            "setup.py": (
                "from setuptools import Extension, setup\n\n"
                "setup(ext_modules=[Extension('fastcalc._fast', ['fastcalc/_fast.c'])])\n"
            ),
            "pyproject.toml": C_EXTENSION_PYPROJECT,
        },
    )


@pytest.fixture(scope="session")
def locked_cli(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if "cli" in _LOCKED:
        return _LOCKED["cli"]
    root = _write(
        tmp_path_factory.mktemp("cli") / "greet",
        {
            "pyproject.toml": CLI_PYPROJECT,
            "src/greet/__init__.py": "",
            "src/greet/cli.py": CLI_MAIN,
            "README.md": "greet\n",
        },
    )
    poetry_lock(root)
    _LOCKED["cli"] = root
    return root


@pytest.fixture(scope="session")
def locked_script(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = _write(
        tmp_path_factory.mktemp("script") / "scripty",
        {
            "pyproject.toml": SCRIPT_PYPROJECT,
            "main.py": SCRIPT_MAIN,
            "libs/locallib/pyproject.toml": LOCALLIB_PYPROJECT,
            "libs/locallib/locallib/__init__.py": "VALUE = 'from-locallib'\n",
            ".dockerignore": "secrets.txt\n",
            "secrets.txt": "do not ship\n",
        },
    )
    poetry_lock(root)
    return root


@pytest.fixture(scope="session")
def locked_web(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("web") / "hello"
    shutil.copytree(ROOT / "examples" / "fastapi-app", root)
    if not (root / "poetry.lock").exists():
        poetry_lock(root)
    return root


def sdist_bytes(name: str, version: str, files: dict[str, str]) -> bytes:
    """An sdist (``NAME-VERSION.tar.gz``) holding ``files`` and the PKG-INFO an index serves."""
    files = {"PKG-INFO": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n", **files}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for rel, text in sorted(files.items()):
            data = text.encode()
            info = tarfile.TarInfo(f"{name}-{version}/{rel}")
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def layer_files(layout: Path, wanted: Callable[[str], bool]) -> list[tuple[str, bytes]]:
    """``(path, contents)`` of every regular file in the OCI layout's gzip layers whose path
    ``wanted`` accepts, blob by blob."""
    found = []
    for blob in sorted((layout / "blobs" / "sha256").iterdir()):
        try:
            with tarfile.open(blob) as tar:
                for member in tar:
                    handle = tar.extractfile(member) if member.isfile() and wanted(member.name) else None
                    if handle is not None:
                        found.append((member.name, handle.read()))
        except tarfile.ReadError:  # a manifest, config or index
            continue
    return found
