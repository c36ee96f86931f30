"""The pieces of ``bench/compare.py`` and ``bench/compiled.py`` whose mistakes would skew their
figures silently.

* the requirements exporter gives a complete, hash-pinned set that pip accepts with
  ``--require-hashes`` and resolves to exactly the locked versions;
* the Dockerfile side's project copy (the simple index named as the Poetry source) is a lock
  that the real Poetry accepts as fresh, with the same locked versions;
* the compiled app locks exactly the three sdist-only packages the benchmark is about, as a
  lock for the default index (no source tables);
* the step times of a real build in the builder are grouped into phases that add up to the
  build's time, with the compile found by the rules of ``bench/steps.py``.
"""

from __future__ import annotations

import importlib
import json
import sys
import time
import tomllib
from pathlib import Path
from types import ModuleType

import pytest

from slimline.project import lockfile
from tests.e2e_projects import write_c_extension
from tests.support import ROOT, VENV_BIN, index_url, poetry_env, poetry_lock, run, slimline, tool


def _bench(name: str) -> ModuleType:
    bench = str(ROOT / "bench")
    if bench not in sys.path:
        sys.path.insert(0, bench)
    return importlib.import_module(name)


@pytest.mark.parametrize("key", ["fastapi", "compiled"])
def test_dockerfile_copy_is_a_fresh_lock_with_the_same_versions(key: str, tmp_path: Path) -> None:
    apps = _bench("apps")
    app = next(a for a in (*apps.APPS, apps.COMPILED) if a.key == key)
    url = "http://127.0.0.1:9/simple/"  # never contacted: `poetry check --lock` reads files only
    copy = apps.dockerfile_copy(app, tmp_path / "project", url)
    run([tool("poetry"), "check", "--lock"], cwd=copy, env=poetry_env())
    sources = tomllib.loads((copy / "pyproject.toml").read_text())["tool"]["poetry"]["source"]
    assert sources == [{"name": "bench-index", "url": url, "priority": "primary"}]
    original, copied = lockfile.load(app.directory / "poetry.lock"), lockfile.load(copy / "poetry.lock")
    assert [(p.name, p.version, p.files) for p in copied.packages] == [
        (p.name, p.version, p.files) for p in original.packages
    ]
    assert {p.source.url if p.source else None for p in copied.packages} == {url}


@pytest.mark.network
def test_exported_requirements_install_the_locked_set_with_hashes(tmp_path: Path) -> None:
    export = _bench("export")
    project = ROOT / "examples" / "fastapi-app"
    target = export.host_target(Path(sys.executable))
    req = tmp_path / "requirements.txt"
    req.write_text(export.requirements(project, target))
    report = tmp_path / "report.json"
    pip: list[str | Path] = [VENV_BIN / "python", "-m", "pip", "install", "--dry-run", "--ignore-installed"]
    pip += ["--quiet", "--require-hashes", "--index-url", index_url(), "-r", req]
    run([*pip, "--no-deps", "--report", report], timeout=300)
    chosen = {
        i["metadata"]["name"].lower().replace("_", "-"): i["metadata"]["version"]
        for i in json.loads(report.read_text())["install"]
    }
    lock = lockfile.load(project / "poetry.lock")
    locked = {p.name: p.version for p in lock.packages}
    assert chosen and all(locked[name] == version for name, version in chosen.items())
    assert {"fastapi", "uvicorn", "requests", "uvloop"} <= set(chosen)
    # complete: pip with --require-hashes and without --no-deps would refuse a missing dependency
    run(pip, timeout=300)


def test_the_compiled_app_locks_three_sdist_only_packages_for_the_default_index() -> None:
    app = _bench("apps").COMPILED
    assert _bench("compiled").sdist_only(app.directory) == ["mysqlclient", "psycopg2", "python-ldap"]
    lock = lockfile.load(app.directory / "poetry.lock")
    assert lock.packages and all(p.source is None for p in lock.packages)
    assert {"libldap2-dev", "libpq-dev", "default-libmysqlclient-dev"} <= set(app.build_packages())


@pytest.mark.network
def test_step_phases_of_a_real_build_in_the_builder_add_up_to_its_time(tmp_path: Path) -> None:
    steps = _bench("steps")
    proj = write_c_extension(tmp_path / "fastcalc")
    poetry_lock(proj)
    t0 = time.perf_counter()
    proc = slimline("build", str(proj), "-v", "--to", f"oci:{tmp_path / 'out'}:t")
    total = time.perf_counter() - t0
    phases = steps.phases(proc.stderr, total)
    assert sum(seconds for seconds, _ in phases.values()) == pytest.approx(total)
    assert "building the project fastcalc " in proc.stderr
    compiled = [n for n in phases if n.startswith("compiling in the builder ")]
    assert len(compiled) == 1 and phases[compiled[0]][0] > 0, proc.stderr
    assert any(n.startswith("builder: ") for n in phases), proc.stderr
