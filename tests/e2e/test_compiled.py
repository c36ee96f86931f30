"""Compiled dependencies built for the target in the builder, end to end.

Real Poetry locks, real sdists from the package index, the real Debian archive for the base and
the builder, images run with podman (arm64 ones under qemu-user through binfmt_misc).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest

from tests.artifacts.helpers import LocalIndex, serve
from tests.e2e_projects import C_EXTENSION_PYPROJECT, layer_files, sdist_bytes, write_c_extension
from tests.support import podman_run, poetry_env, poetry_lock, run, slimline, tool

pytestmark = [pytest.mark.network, pytest.mark.container]

CHECK = "import ldap, platform; print('ldap', ldap.__version__, platform.machine())"


def _project(root: Path, *, deps: list[str], build_packages: list[str], entry: str) -> Path:
    root.mkdir(parents=True)
    (root / "pyproject.toml").write_text(
        textwrap.dedent(
            f"""\
            [project]
            name = "{root.name}"
            version = "0.1.0"
            requires-python = ">=3.11,<3.12"
            dependencies = {json.dumps(deps)}

            [tool.poetry]
            package-mode = false

            [tool.slimline]
            entrypoint = ["/app/.venv/bin/python", "-c", {json.dumps(entry)}]

            [tool.slimline.debian]
            build-packages = {json.dumps(build_packages)}
            """
        )
    )
    poetry_lock(root)
    return root


@pytest.fixture(scope="module")
def ldap_only(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _project(
        tmp_path_factory.mktemp("locked") / "ldapapp",
        deps=["python-ldap==3.4.4"],
        build_packages=["libldap2-dev", "libsasl2-dev"],
        entry=CHECK,
    )


def _copy(src: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(src, tmp_path / src.name))


def _digest(stdout: str) -> str:
    return stdout.strip().splitlines()[-1]


def test_sdists_that_link_system_libraries_build_and_import(tmp_path: Path) -> None:
    proj = _project(
        tmp_path / "dbapp",
        deps=["python-ldap==3.4.4", "psycopg2==2.9.10"],
        build_packages=["libldap2-dev", "libsasl2-dev", "libpq-dev"],
        entry="import ldap, psycopg2 as pg; print('ldap', ldap.__version__, 'psycopg2', pg.__version__[:6])",
    )
    proc = slimline("build", str(proj), "--to", f"oci:{tmp_path / 'out'}:t")
    # (whether they are built now depends on the shared test cache: see the clean builds below)
    assert "libldap-2.5-0 (for python-ldap)" in proc.stderr and "libpq5 (for psycopg2)" in proc.stderr
    ran = podman_run(f"oci:{tmp_path / 'out'}:t")
    assert ran.stdout.strip().splitlines()[-1] == "ldap 3.4.4 psycopg2 2.9.10"

    again = slimline("build", str(proj), "--to", f"oci:{tmp_path / 'again'}:t", "--refresh", "-v")
    assert "in the builder" not in again.stderr  # the built wheels are cached: nothing is built
    assert _digest(again.stdout) == _digest(proc.stdout)


def test_the_same_sdist_builds_for_arm64_and_imports_under_qemu(ldap_only: Path, tmp_path: Path) -> None:
    proj = _copy(ldap_only, tmp_path)
    slimline("build", str(proj), "--platform", "linux/arm64", "--to", f"oci:{tmp_path / 'out'}:t")
    ran = podman_run(f"oci:{tmp_path / 'out'}:t", flags=["--arch", "arm64"], timeout=600)
    assert ran.stdout.strip().splitlines()[-1] == "ldap 3.4.4 aarch64"


def test_two_clean_builds_give_one_digest(ldap_only: Path, tmp_path: Path) -> None:
    digests = []
    for name in ("a", "b"):
        proj = _copy(ldap_only, tmp_path / name)
        env = {"SLIMLINE_CACHE_DIR": str(tmp_path / f"cache-{name}")}
        proc = slimline("build", str(proj), "-v", "--to", f"oci:{tmp_path / name / 'out'}:t", env=env)
        assert "building python-ldap 3.4.4 for linux/amd64 in the builder" in proc.stderr, proc.stderr
        # what no package build uses is not in the builder: the sanitizers' runtimes
        assert "left out libasan8 (needed by libgcc-12-dev)" in proc.stderr, proc.stderr
        digests.append(_digest(proc.stdout))
    assert digests[0] == digests[1]


def test_a_project_with_its_own_c_extension_builds_for_both_architectures(tmp_path: Path) -> None:
    proj = write_c_extension(tmp_path / "fastcalc")
    poetry_lock(proj)
    out = tmp_path / "out"
    proc = slimline(
        "build", str(proj), "--platform", "linux/amd64", "--platform", "linux/arm64", "--to", f"oci:{out}:t"
    )
    # (built for each platform in its builder, or found in the shared test cache: the runs say which)
    assert proc.returncode == 0
    for arch, machine in (("amd64", "x86_64"), ("arm64", "aarch64")):
        ran = podman_run(f"oci:{out}:t", flags=["--arch", arch], timeout=600)
        assert ran.stdout.strip().splitlines()[-2:] == ["compiled optimized", f"2+3 = 5 {machine}"]
    # Python's own flags (-O2, -DNDEBUG) kept, its -g overridden: no debug information
    libraries = _members(out, "/_fast.cpython-")
    assert len(libraries) == 2 and all(data[:4] == b"\x7fELF" for data in libraries)
    assert not any(b".debug_info" in data for data in libraries)


def _members(layout: Path, marker: str) -> list[bytes]:
    """The contents of every file in the layout's layers whose path holds ``marker``."""
    return [data for _, data in layer_files(layout, lambda path: marker in path)]


def _build_app(proj: Path, package: str, version: str, sdist: bytes) -> subprocess.CompletedProcess[str]:
    """An app (package-mode = false, Python 3.11) that depends on ``package==version``, whose only
    artifact is ``sdist`` on a local index, locked by Poetry and built (it may fail)."""
    with serve(LocalIndex(files={package: {f"{package}-{version}.tar.gz": sdist}})) as index:
        proj.mkdir()
        (proj / "pyproject.toml").write_text(
            f'[project]\nname = "{proj.name}"\nversion = "0.1.0"\nrequires-python = ">=3.11,<3.12"\n'
            f'dependencies = ["{package}=={version}"]\n\n[tool.poetry]\npackage-mode = false\n\n'
            f'[[tool.poetry.source]]\nname = "local"\nurl = "{index.url}/"\npriority = "primary"\n'
        )
        run([tool("poetry"), "lock"], cwd=proj, env=poetry_env(), timeout=300)
        return slimline("build", str(proj), "--to", f"oci:{proj.parent / 'out'}:t", check=False)


def test_a_release_that_does_not_compile_for_the_image_python_says_what_to_do(tmp_path: Path) -> None:
    # greenlet 1.1.2 (locked by a public FastAPI app) does not compile for Python 3.11 or 3.13;
    # the hint used to say that "this host" needs compilers, which a build in the builder does not
    sdist = sdist_bytes(
        "oldext",
        "1.0",
        {
            "pyproject.toml": C_EXTENSION_PYPROJECT.replace("fastcalc", "oldext").replace(
                '\n[project.scripts]\noldext = "oldext:main"\n', ""
            ),
            "setup.py": "from setuptools import Extension, setup\n\n"
            "setup(ext_modules=[Extension('oldext._old', ['oldext/_old.c'])])\n",
            "oldext/__init__.py": "",
            "oldext/_old.c": '#error "written for the Python of its day"\n',
        },
    )
    proc = _build_app(tmp_path / "oldapp", "oldext", "1.0", sdist)
    assert proc.returncode == 5, proc.stderr
    failed = "building a wheel of oldext 1.0: its build backend failed (build_wheel) in the builder"
    assert failed in proc.stderr
    assert "written for the Python of its day" in proc.stderr  # the compiler's output
    assert "[tool.slimline.debian] build-packages" in proc.stderr
    assert "a release older than Python 3.11 often does not compile for it" in proc.stderr
    assert "(poetry update oldext)" in proc.stderr
    assert "on this host" not in proc.stderr


def test_a_setup_py_older_than_cython_3_is_told_as_such(tmp_path: Path) -> None:
    # PyYAML 6.0 (a public mkdocs project's lock 1.1): its unpinned Cython requirement now
    # installs Cython 3, whose build_ext lacks cython_sources; the message named libyaml-dev
    setup = (
        "from setuptools import Extension, setup\n"
        "from Cython.Distutils import build_ext as _build_ext\n\n\n"
        "class build_ext(_build_ext):\n"
        "    def get_source_files(self):\n"
        "        return self.cython_sources(['yamlish/_y.pyx'], None)\n\n\n"
        "setup(packages=['yamlish'], cmdclass={'build_ext': build_ext},\n"
        "      ext_modules=[Extension('yamlish._y', ['yamlish/_y.c'])])\n"
    )
    build_system = '[build-system]\nrequires = ["setuptools", "Cython"]\n'
    build_system += 'build-backend = "setuptools.build_meta"\n\n[project]\nname = "pyyaml"\nversion = "6.0"\n'
    sdist = sdist_bytes(
        "pyyaml",
        "6.0",
        {"pyproject.toml": build_system, "setup.py": setup, "yamlish/__init__.py": "", "yamlish/_y.c": ""},
    )
    proc = _build_app(tmp_path / "docsapp", "pyyaml", "6.0", sdist)
    assert proc.returncode == 5, proc.stderr
    assert "its setup.py predates Cython 3, which its build requirements now install" in proc.stderr
    assert "libyaml-dev" not in proc.stderr
    assert "(poetry update pyyaml)" in proc.stderr
