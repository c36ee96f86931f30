"""A ``debian:`` base holds CPython's whole standard library, minus the documented strip list.

Real bases are assembled from the Debian archive by the real command line and run by podman:
inside each, every module of ``sys.stdlib_module_names`` that exists on Linux is imported,
except :data:`slimline.base.debian.policy.STDLIB_LEFT_OUT`, which must be absent (so the list in
the README stays true).  On bookworm (3.11) that includes ``distutils`` and ``lib2to3``, which
Debian ships in packages of their own.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from slimline.base.debian.policy import STDLIB_LEFT_OUT
from tests.support import podman_run, slimline

pytestmark = [pytest.mark.network, pytest.mark.container]

# Modules of sys.stdlib_module_names built only for other systems (Windows, macOS, iOS).
NOT_ON_LINUX = frozenset(
    {"_msi", "_overlapped", "_scproxy", "_winapi", "_wmi", "msilib", "msvcrt", "nt", "winreg", "winsound"}
    | {"_ios_support"}  # 3.13: present as source, but it loads the Objective-C runtime
)

# Runs inside the image: argv[1] names the modules not to import, argv[2] the left-out ones.
PROBE = r"""
import importlib, importlib.util, json, sys, warnings
warnings.simplefilter("ignore")
skip, left_out = set(sys.argv[1].split(",")), sys.argv[2].split(",")
failed = {}
for name in sorted(sys.stdlib_module_names - skip):
    try:
        importlib.import_module(name)
    except Exception as err:
        failed[name] = f"{type(err).__name__}: {err}"
present = [name for name in left_out if importlib.util.find_spec(name) is not None]
print(json.dumps({"version": sys.version.split()[0], "failed": failed, "present": present}))
"""


def _probe(tmp_path: Path, suite: str, *extra: str) -> dict[str, object]:
    layout = tmp_path / suite
    slimline("base", f"debian:{suite}", "--to", f"oci:{layout}:base", "-q")
    left_out = sorted(STDLIB_LEFT_OUT)
    skip = ",".join(sorted(NOT_ON_LINUX | set(left_out)))
    out = podman_run(f"oci:{layout}:base", "-c", PROBE, skip, ",".join(left_out)).stdout
    result: dict[str, object] = json.loads(out.strip().splitlines()[-1])
    for statement in extra:
        podman_run(f"oci:{layout}:base", "-W", "ignore", "-c", statement)
    return result


@pytest.mark.parametrize("suite", ["bookworm", "trixie"])
def test_the_whole_standard_library_imports(tmp_path: Path, suite: str) -> None:
    # Debian 12's libpython3.11-stdlib has a stub distutils package; python3-distutils the rest
    apart = "import distutils.util, lib2to3; distutils.util.strtobool('yes')"
    result = _probe(tmp_path, suite, *((apart,) if suite == "bookworm" else ()))
    assert result["failed"] == {}, f"{suite}: {result}"
    assert result["present"] == [], f"{suite}: documented as left out but present: {result['present']}"
    assert str(result["version"]).startswith("3.11." if suite == "bookworm" else "3.13.")
