"""``slimline inspect`` on synthetic images (layers and layouts written by slimline's writers),
run through the real command line in-process; every expected figure comes from the data the
image was made from or from Python's tarfile over the layout's blobs."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from slimline.cache.store import Cache
from slimline.cli.main import main
from slimline.oci import layout
from slimline.oci.image import Platform
from slimline.oci.reference import OciRef
from tests.inspect.images import Spec, build, dist_info, final_files, read_layout, status_stanza, write_layout

SITE = "app/.venv/lib/python3.11/site-packages"
LIBFOO = {
    "usr/lib/libfoo.so.1": b"F" * 3000,
    "usr/share/doc/libfoo/copyright": b"c" * 500,
    "usr/bin/foo": b"f" * 77,  # listed as /bin/foo: merged /usr, bin -> usr/bin
}
LIBBAR = {"usr/lib/libbar.so": b"B" * 2000}
ALPHA = {"alpha/__init__.py": b"a" * 4000, "alpha/core.py": b"b" * 700, "../../../bin/alpha": b"#!/bin/sh\n"}
BETA = {"beta.py": b"x" * 1000}


# as dpkg lists them: directories too; one file twice, through the absolute link lib -> /usr/lib;
# a hard link to one of its files (as perl-base's perl and perl5.36.0): its bytes count once;
# a file a later layer removes (not in its size, its bytes still its own in the size map)
FOO_LIST = [
    "/.",
    "/usr",
    "/usr/lib/libfoo.so.1",
    "/lib/libfoo.so.1",
    "/usr/share/doc/libfoo/copyright",
    "/bin/foo",
    "/usr/bin/foo-again",
    "/opt/big.bin",
]


def specs() -> list[Spec]:
    status = (
        status_stanza("libfoo", "1.2-3", kib=12)
        + "\n"
        + status_stanza("gone", "0.1", status="deinstall ok config-files")
    )
    base = {
        "var/lib/dpkg/status": status.encode(),
        "var/lib/dpkg/info/libfoo.list": "\n".join(FOO_LIST).encode(),
        "var/lib/dpkg/status.d/libbar": b"Package: libbar\nVersion: 0.9\nInstalled-Size: 4\n",
        # names only a hard link to its file: the file's bytes are the package's
        "var/lib/dpkg/status.d/libbar.md5sums": b"0123456789abcdef  usr/lib/libbar.so.0\n",
        "var/lib/dpkg/status.d/libpython3.11-minimal": b"Package: libpython3.11-minimal\nVersion: 3.11.2-6\n",
        **LIBFOO,
        **LIBBAR,
        "opt/big.bin": b"\0" * 50_000,
        "etc/motd": b"m" * 100,
        "opt/cache/a": b"a" * 300,
        "opt/cache/b": b"b" * 200,
    }
    venv = {
        **dist_info(SITE, "alpha", "1.0", ALPHA, dir_name="alpha"),
        **dist_info(SITE, "Beta-Pkg", "2.0", BETA, dir_name="beta_pkg"),
    }
    top = {"etc/motd": b"new motd\n", "opt/cache/c": b"c" * 10, "app/main.py": b"print('hi')\n"}
    return [
        Spec(
            base,
            links={"bin": "usr/bin", "lib": "/usr/lib"},
            hardlinks={"usr/bin/foo-again": "usr/bin/foo", "usr/lib/libbar.so.0": "usr/lib/libbar.so"},
            created_by="base: debian files",
        ),
        Spec(venv, created_by="slimline: python venv"),
        Spec(top, removes=("opt/big.bin",), opaque=("opt/cache",), created_by="slimline: app files"),
    ]


@pytest.fixture
def world(tmp_path: Path) -> tuple[str, Path, list[Spec]]:
    cache = Cache(tmp_path / "make")
    the_specs = specs()
    ref = write_layout(build(cache, the_specs, labels={"team": "x"}), tmp_path / "layout", "v1")
    return ref, tmp_path, the_specs


def inspect_json(capsys: pytest.CaptureFixture[str], ref: str, tmp_path: Path, *extra: str) -> dict[str, Any]:
    assert main(["inspect", ref, "--json", "-q", "--cache-dir", str(tmp_path / "cache"), *extra]) == 0
    doc: dict[str, Any] = json.loads(capsys.readouterr().out)
    return doc


def test_sizes_and_layers_agree_with_the_layout_blobs(
    world: tuple[str, Path, list[Spec]], capsys: Any
) -> None:
    ref, tmp_path, the_specs = world
    doc = inspect_json(capsys, ref, tmp_path)
    assert doc["schema"] == "slimline.inspect/1" and doc["reference"] == ref
    (img,) = doc["images"]
    blobs = read_layout(tmp_path / "layout", "v1")
    assert [x["compressed"] for x in img["layers"]] == blobs.compressed
    assert [x["unpacked"] for x in img["layers"]] == [sum(s for s, _ in m.values()) for m in blobs.layers]
    assert [x["created_by"] for x in img["layers"]] == [s.created_by for s in the_specs]
    final = final_files(the_specs)
    assert img["size"]["files"] == sum(len(d) for d in final.values())
    assert img["size"]["unpacked"] == sum(sum(s for s, _ in m.values()) for m in blobs.layers)
    assert img["size"]["compressed"] == sum(blobs.compressed)
    lost = {p: len(d) for s in the_specs[:-1] for p, d in s.files.items() if p not in final or final[p] != d}
    assert img["size"]["wasted"] == sum(lost.values()) > 0
    assert {(w["path"], w["size"]) for w in img["wasted"]} == {(f"/{p}", n) for p, n in lost.items()}
    by = {w["path"]: w["by"] for w in img["wasted"]}
    assert by["/opt/big.bin"] == "removed" and by["/etc/motd"] == "replaced"
    largest = sorted(((len(d), f"/{p}") for p, d in final.items()), key=lambda t: (-t[0], t[1]))
    assert [(f["size"], f["path"]) for f in img["largest_files"]] == largest[:20]
    assert img["largest_files"][0]["package"] == "python: alpha"


def test_config_base_and_packages(world: tuple[str, Path, list[Spec]], capsys: Any) -> None:
    ref, tmp_path, _ = world
    (img,) = inspect_json(capsys, ref, tmp_path)["images"]
    assert img["config"]["entrypoint"] == ["/app/.venv/bin/python", "-m", "app"]
    assert img["config"]["user"] == "65532" and img["config"]["ports"] == ["8000/tcp"]
    assert img["config"]["labels"] == {"team": "x"}
    assert img["base"] == {"name": "debian:bookworm", "digest": "sha256:" + "ab" * 32}
    assert img["platform"] == "linux/amd64"
    py = {d["name"]: d for d in img["python"]}
    assert set(py) == {"alpha", "Beta-Pkg"} and py["alpha"]["version"] == "1.0"
    meta = {
        n: len(d) for n, d in final_files(specs()).items() if n.startswith(f"{SITE}/alpha-1.0.dist-info/")
    }
    assert py["alpha"]["size"] == sum(len(d) for d in ALPHA.values()) + sum(meta.values())
    assert [d["name"] for d in img["python"]] == ["alpha", "Beta-Pkg"]  # largest first
    deb = {d["name"]: d for d in img["debian"]}
    assert set(deb) == {"libfoo", "libbar", "libpython3.11-minimal"}  # "gone" is not installed
    assert deb["libfoo"]["version"] == "1.2-3" and deb["libfoo"]["installed_size"] == 12 * 1024
    assert deb["libfoo"]["size"] == sum(len(d) for d in LIBFOO.values())
    assert deb["libbar"]["size"] == sum(len(d) for d in LIBBAR.values())
    assert deb["libpython3.11-minimal"]["size"] is None  # no file list


def test_text_output_names_what_matters(world: tuple[str, Path, list[Spec]], capsys: Any) -> None:
    ref, tmp_path, _ = world
    assert main(["inspect", ref, "-q", "--cache-dir", str(tmp_path / "cache")]) == 0
    out = capsys.readouterr().out
    for text in (
        "alpha 1.0",
        "libfoo 1.2-3",
        "/opt/big.bin",
        "removed",
        "slimline: python venv",
        "user: 65532",
    ):
        assert text in out, text


def test_a_single_platform_image_of_another_arch_is_inspected(tmp_path: Path, capsys: Any) -> None:
    image = build(Cache(tmp_path / "make"), [Spec({"a": b"1"})])
    ref = write_layout(replace(image, platform=Platform.parse("linux/s390x")), tmp_path / "l", "x")
    (img,) = inspect_json(capsys, ref, tmp_path)["images"]
    assert img["platform"] == "linux/s390x"


def test_an_index_gives_the_hosts_image_or_those_asked_for(tmp_path: Path, capsys: Any) -> None:
    cache = Cache(tmp_path / "make")
    amd = build(cache, [Spec({"a": b"1" * 10})])
    arm = replace(build(cache, [Spec({"a": b"2" * 20})]), platform=Platform.parse("linux/arm64"))
    layout.write([amd, arm], OciRef(tmp_path / "multi", "m"), name=None)
    ref = f"oci:{tmp_path / 'multi'}:m"
    host = str(Platform(architecture=os.uname().machine).normalised())
    assert [i["platform"] for i in inspect_json(capsys, ref, tmp_path)["images"]] == [host]
    both = inspect_json(capsys, ref, tmp_path, "--platform", "linux/arm64", "--platform", "linux/amd64")
    assert [(i["platform"], i["size"]["files"]) for i in both["images"]] == [
        ("linux/arm64/v8", 20),
        ("linux/amd64", 10),
    ]
    assert main(["inspect", ref, "--platform", "linux/ppc64le", "--cache-dir", str(tmp_path / "cache")]) == 1
    assert "it has linux/amd64, linux/arm64/v8" in capsys.readouterr().err


def test_a_debian_base_reference_is_refused_with_a_hint(tmp_path: Path, capsys: Any) -> None:
    assert main(["inspect", "debian:bookworm", "--cache-dir", str(tmp_path / "cache")]) == 1
    err = capsys.readouterr().err
    assert "slimline base debian:bookworm --to oci:" in err and "Traceback" not in err


def test_hostile_records_and_link_loops_stay_inside_and_end(tmp_path: Path, capsys: Any) -> None:
    """A RECORD naming paths above the root, a dpkg list through a symlink loop, and a layer
    that lists no directories: every package is found, nothing outside is counted, and it ends."""
    site = "usr/lib/python3/dist-packages"
    record = "evil/__init__.py,,\n../../../../../../etc/shadow,,\n/etc/passwd,,\n../../../../x\n"
    layer = {
        f"{site}/evil-6.6.dist-info/METADATA": b"Name: evil\nVersion: 6.6\n",
        f"{site}/evil-6.6.dist-info/RECORD": record.encode(),
        f"{site}/evil/__init__.py": b"e" * 10,
        "etc/passwd": b"p" * 5,
        "var/lib/dpkg/status": status_stanza("loopy", "1").encode(),
        "var/lib/dpkg/info/loopy.list": b"/loop/a/b/c\n/usr/bin/real\n",
        "usr/bin/real": b"r" * 9,
    }
    ref = write_layout(
        build(Cache(tmp_path / "make"), [Spec(layer, links={"loop": "loop2", "loop2": "/loop"})], dirs=False),
        tmp_path / "l",
        "x",
    )
    (img,) = inspect_json(capsys, ref, tmp_path)["images"]
    assert [(d["name"], d["size"], d["files"]) for d in img["python"]] == [
        ("evil", 10 + 5, 2)
    ]  # /etc/passwd is in the image
    assert [(d["name"], d["size"]) for d in img["debian"]] == [("loopy", 9)]
