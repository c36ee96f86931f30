"""Offline tests of the Debian base pieces: versions, relations, resolution, refs, mirrors, .deb reading.

Inputs are generated here (indexes, .deb files, apt source files); no network.
"""

from __future__ import annotations

import hashlib
import lzma
from collections.abc import Mapping
from pathlib import Path

import pytest
from debian.deb822 import PkgRelation
from debian.debian_support import version_compare
from packaging.specifiers import SpecifierSet

from slimline.base.debian import assemble, deb, mirror, packages, policy
from slimline.base.debian.base import BaseSettings, DebianRef, debian_arch, suite_for
from slimline.base.debian.errors import (
    BadDebianRef,
    DebError,
    IndexError_,
    MirrorNotFound,
    NoSuitableSuite,
    ResolveError,
)
from slimline.base.debian.packages import Stanza
from slimline.base.debian.resolve import DEFAULT_EXCLUDES, _provided, closure, relation_holds, resolve
from slimline.errors import UnsafePath
from slimline.layers.filetree import Kind, TreeBuilder
from slimline.oci.image import Platform
from tests.base.debian.helpers import Member, ar_archive, make_deb, tar_bytes

# --- versions and relations ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lower", "higher"),
    [
        ("1.0~rc1", "1.0"),
        ("1.0", "1.0+b1"),
        ("1.0", "1.0-1"),
        ("2.0", "1:0.9"),
        ("2.36-9", "2.36-9+deb12u4"),
        ("1.0a", "1.0+"),
        ("1.0", "1.0.0"),
        ("1.9", "1.10"),
        ("1.0~~", "1.0~"),
        ("1.0~", "1.0"),
        ("3.11.2-6+deb12u8", "3.11.2-6+deb12u9"),
        ("1:1.2.13.dfsg-1", "1:1.3.dfsg+really1.3.1-1"),
        ("20230311", "20250419~deb12u2"),
    ],
)
def test_version_order(lower: str, higher: str) -> None:
    assert version_compare(lower, higher) < 0
    assert version_compare(higher, lower) > 0
    assert relation_holds(lower, "<<", higher) and relation_holds(higher, ">>", lower)
    assert not relation_holds(lower, ">=", higher) and not relation_holds(higher, "<=", lower)


def test_version_equal_forms() -> None:
    assert version_compare("0:1.0", "1.0") == 0
    assert relation_holds("1.0-1", "=", "0:1.0-1")
    assert relation_holds("1.0", ">=", "1.0") and relation_holds("1.0", "<=", "1.0")
    # obsolete spellings: "<" means "<=", ">" means ">="
    assert relation_holds("1.0", "<", "1.0") and relation_holds("1.0", ">", "1.0")
    with pytest.raises(ValueError, match="unknown version relation"):
        relation_holds("1.0", "~=", "1.0")


def st(name: str, version: str = "1.0", **fields: str) -> Stanza:
    return Stanza(
        name=name,
        version=version,
        architecture=fields.pop("architecture", "amd64"),
        filename=f"pool/main/{name}_{version}.deb",
        size=1,
        sha256="0" * 64,
        origin=0,
        **fields,  # type: ignore[arg-type]
    )


def index(*stanzas: Stanza) -> dict[str, Stanza]:
    return {s.name: s for s in stanzas}


def test_resolve_follows_pre_depends_and_depends_not_recommends() -> None:
    idx = index(
        st("app", depends="liba (>= 1.0), libb", pre_depends="libc6 (>= 2.36)"),
        st("liba", "1.2"),
        st("libb", depends="libc6"),
        st("libc6", "2.36-9"),
        st("unrelated"),
    )
    res = resolve(idx, ["app"], arch="amd64")
    assert [p.name for p in res.packages] == ["app", "liba", "libb", "libc6"]
    assert res.edges["app"] == ("liba", "libb", "libc6")
    assert closure(res, ["libb"]) == {"libb", "libc6"}
    assert res.left_out == ()


def test_resolve_version_constraint_unsatisfied_names_the_chain() -> None:
    idx = index(st("app", depends="libc6 (>= 2.41)"), st("libc6", "2.36-9"))
    with pytest.raises(ResolveError) as info:
        resolve(idx, ["app"], arch="amd64", suites="Debian test")
    err = info.value
    assert err.needed_by == "app 1.0"
    assert "libc6 (>= 2.41)" in str(err) and "libc6 2.36-9" in str(err)


def test_resolve_alternatives_take_first_satisfiable_or_already_selected() -> None:
    idx = index(
        st("a", depends="missing | libold (>= 2) | libnew"),
        st("libold", "1.0"),
        st("libnew"),
        st("b", depends="libnew | libother"),
        st("libother"),
    )
    res = resolve(idx, ["a", "b"], arch="amd64")
    names = [p.name for p in res.packages]
    assert "libnew" in names and "libold" not in names and "libother" not in names


@pytest.mark.parametrize("read_back", [False, True], ids=["parsed", "read-back"])
def test_resolve_provides_versioned_and_unversioned(read_back: bool) -> None:
    idx: Mapping[str, Stanza] = index(
        st("app", depends="mail-transport-agent, libfoo-abi (>= 2)"),
        st("zmta", provides="mail-transport-agent"),
        st("amta", provides="mail-transport-agent"),
        st("libfoo2", provides="libfoo-abi (= 2.5)"),
        st("libfoo-unversioned", provides="libfoo-abi"),
    )
    if read_back:  # as a cold build with indexes parsed before reads them: stanzas parsed when asked for
        idx = packages.from_record(packages.to_record(idx))
    res = resolve(idx, ["app"], arch="amd64")
    names = {p.name for p in res.packages}
    assert "amta" in names and "zmta" not in names  # alphabetically first provider
    assert "libfoo2" in names and "libfoo-unversioned" not in names  # unversioned never satisfies (>= 2)
    assert any("mail-transport-agent" in n for n in res.notes)


def test_resolve_excludes_are_left_out_and_reported() -> None:
    idx = index(
        st("tzdata", depends="debconf (>= 0.5) | debconf-2.0", architecture="all"),
        st("debconf", architecture="all", pre_depends="perl-base"),
        st("cdebconf", provides="debconf-2.0"),
        st("readline-common", depends="dpkg (>= 1.15.4) | install-info"),
    )
    res = resolve(idx, ["tzdata", "readline-common"], arch="amd64")
    assert {p.name for p in res.packages} == {"tzdata", "readline-common"}
    left = {x.name: x for x in res.left_out}
    assert left["debconf"].needed_by == ("tzdata",)
    assert left["dpkg"].needed_by == ("readline-common",)
    assert left["debconf"].reason == DEFAULT_EXCLUDES["debconf"]


def test_explicit_root_wins_over_exclude() -> None:
    idx = index(st("bash", architecture="amd64"))
    res = resolve(idx, ["bash"], arch="amd64", excludes={})
    assert [p.name for p in res.packages] == ["bash"]


def test_resolve_arch_qualifiers() -> None:
    idx = index(st("app", depends="python3:any, libx:i386 | liby"), st("python3"), st("libx"), st("liby"))
    names = {p.name for p in resolve(idx, ["app"], arch="amd64").packages}
    assert names == {"app", "python3", "liby"}


def test_resolve_unknown_root() -> None:
    with pytest.raises(ResolveError, match="no such package"):
        resolve(index(st("a")), ["libpq5"], arch="amd64")


@pytest.mark.parametrize(
    "text",
    [
        "mail-transport-agent",
        "libfoo-abi (= 2.5), awk ,c-compiler:any",
        "python3-foo (= 1:2.0~rc1+dfsg-1)",
        "gcc-x86-64-linux-gnu (= 4:12.2.0-3), ",
        "odd (>= 1)",  # not Debian's shape: python-debian reads it
    ],
)
def test_provides_are_read_as_python_debian_reads_them(text: str) -> None:
    expected = []
    for group in PkgRelation.parse_relations(text):
        for alt in group:
            version = alt.get("version")
            expected.append((alt["name"], version[1] if version else None))
    assert _provided(text) == expected


def test_packages_merge_prefers_highest_version_and_arch() -> None:
    main = [st("python3.11-minimal", "3.11.2-6+deb12u8"), st("other", architecture="arm64")]
    security = [st("python3.11-minimal", "3.11.2-6+deb12u9")]
    merged = packages.merge([main, security], arch="amd64")
    assert merged["python3.11-minimal"].version == "3.11.2-6+deb12u9"
    assert "other" not in merged


PACKAGES = """Package: libfoo
Version: 1.0-1
Architecture: amd64
Depends: libc6 (>= 2.36)
Description: a library
 with a long description
 Package: not-a-field
Filename: pool/main/f/foo/libfoo_1.0-1_amd64.deb
Size: 1234
SHA256: {sha}

Package: tzdata
Version: 2026a-1
Architecture: all
Filename: pool/main/t/tzdata/tzdata_2026a-1_all.deb
Size: 10
SHA256: {sha}
"""


def test_packages_parse_reads_only_fields_not_continuations() -> None:
    out = list(packages.parse(PACKAGES.format(sha="a" * 64), origin=2, what="test"))
    assert [(s.name, s.version, s.origin) for s in out] == [("libfoo", "1.0-1", 2), ("tzdata", "2026a-1", 2)]
    assert out[0].depends == "libc6 (>= 2.36)" and out[0].size == 1234


def test_an_index_is_read_as_it_decompresses_and_reduced_per_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import lzma

    from slimline.base.debian.release import IndexFile

    other = (
        PACKAGES.format(sha="b" * 64)
        .replace("libfoo", "libbar")
        .replace("Architecture: amd64", "Architecture: arm64")
    )
    newer = PACKAGES.format(sha="c" * 64).replace("1.0-1", "1.1-1")
    text = PACKAGES.format(sha="a" * 64) + "\n" + other + "\n" + newer
    path = tmp_path / "Packages.xz"
    path.write_bytes(lzma.compress(text.encode()))
    index = IndexFile("main/binary-amd64/Packages.xz", "0" * 64, path.stat().st_size)
    got = packages.read_stanzas(path, index, origin=1, what="test", arch="amd64")
    assert got == packages.merge([packages.parse(text, origin=1, what="test")], arch="amd64")
    assert got["libfoo"].version == "1.1-1" and "libbar" not in got
    from slimline.http import PACKAGES_TEXT_CAP

    monkeypatch.setattr(packages, "PACKAGES_TEXT_CAP", type(PACKAGES_TEXT_CAP)(len(text) - 1, "test"))
    with pytest.raises(IndexError_, match="more than"):
        packages.read_stanzas(path, index, origin=1, what="test", arch="amd64")


@pytest.mark.parametrize(
    ("filename", "sha"),
    [
        ("../../etc/passwd", "a" * 64),
        ("/abs/x.deb", "a" * 64),
        ("pool/x.deb", "XYZ"),
        ("http://evil/x.deb", "a" * 64),
    ],
)
def test_packages_parse_refuses_unsafe_or_malformed(filename: str, sha: str) -> None:
    text = f"Package: x\nVersion: 1\nArchitecture: all\nFilename: {filename}\nSize: 1\nSHA256: {sha}\n"
    with pytest.raises(IndexError_):
        list(packages.parse(text, origin=0, what="test"))


# --- references, suites, platforms ----------------------------------------------------------


def test_debian_ref_parse() -> None:
    assert DebianRef.parse("debian:bookworm") == DebianRef("bookworm")
    assert DebianRef.parse("debian:trixie/python3.13") == DebianRef("trixie", "3.13")
    assert str(DebianRef.parse("debian:trixie/python3.13")) == "debian:trixie/python3.13"
    for bad in ("bookworm", "debian:", "debian:Bookworm", "debian:trixie/python2.7", "debian:a/b/c"):
        with pytest.raises(BadDebianRef):
            DebianRef.parse(bad)


def test_suite_for_requires_python() -> None:
    assert suite_for(SpecifierSet(">=3.9")).suite == "trixie"
    assert suite_for(SpecifierSet(">=3.11,<3.12")).suite == "bookworm"
    assert suite_for(SpecifierSet("")).suite == "trixie"
    with pytest.raises(NoSuitableSuite) as info:
        suite_for(SpecifierSet(">=3.14"))
    assert "registry base" in str(info.value)


def test_debian_arch() -> None:
    assert debian_arch(Platform.parse("linux/amd64")) == "amd64"
    assert debian_arch(Platform.parse("linux/arm64")) == "arm64"
    with pytest.raises(ResolveError):
        debian_arch(Platform.parse("windows/amd64"))


def test_settings_default_strips_stdlib() -> None:
    assert BaseSettings().strip_stdlib is True


# --- mirrors from apt sources ---------------------------------------------------------------


def test_mirror_from_apt_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(mirror.ENV_MIRROR, raising=False)
    monkeypatch.delenv(mirror.ENV_SECURITY_MIRROR, raising=False)
    (tmp_path / "sources.list").write_text(
        "# comment\n"
        "deb-src http://src.example.invalid/debian bookworm main\n"
        "deb [arch=amd64 signed-by=/x.gpg] http://other.example.invalid/ubuntu noble main\n"
    )
    d = tmp_path / "sources.list.d"
    d.mkdir()
    (d / "a.sources").write_text(
        "Types: deb\nURIs: http://off.example.invalid/debian\nSuites: bookworm\nEnabled: no\n\n"
        "Types: deb\nURIs: http://mirror.example.invalid/debian\nSuites: bookworm bookworm-updates\n"
        "Components: main\nSigned-By:\n -----BEGIN PGP PUBLIC KEY BLOCK-----\n .\n abc\n\n"
        "Types: deb\nURIs: http://sec.example.invalid/debian-security/\nSuites: bookworm-security\n"
    )
    (d / "b.list.disabled").write_text("deb http://disabled.example.invalid/debian trixie main\n")
    found = mirror.find(mirror=None, security_mirror=None, etc_apt=tmp_path)
    assert found.archive == "http://mirror.example.invalid/debian"
    assert found.security == "http://sec.example.invalid/debian-security"
    assert found.archive_from.endswith("a.sources")

    override = mirror.find(mirror="http://set.example.invalid/d/", security_mirror="", etc_apt=tmp_path)
    assert (override.archive, override.security) == ("http://set.example.invalid/d", None)

    monkeypatch.setenv(mirror.ENV_MIRROR, "http://env.example.invalid/debian")
    assert mirror.find(mirror=None, security_mirror=None, etc_apt=tmp_path).archive.startswith("http://env.")


def test_mirror_not_found_names_the_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(mirror.ENV_MIRROR, raising=False)
    (tmp_path / "sources.list").write_text("deb cdrom:[x]/ bookworm main\n")
    with pytest.raises(MirrorNotFound) as info:
        mirror.find(mirror=None, security_mirror=None, etc_apt=tmp_path)
    text = str(info.value)
    assert "[tool.slimline.debian] mirror" in text and mirror.ENV_MIRROR in text
    assert str(tmp_path / "sources.list") in text


# --- policy ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "strip", "kept"),
    [
        ("usr/share/doc/libc6/copyright", True, True),
        ("usr/share/doc/libc6/changelog.Debian.gz", False, False),
        ("usr/share/doc/libc6", True, True),
        ("usr/share/man/man1/python3.11.1.gz", False, False),
        ("usr/share/locale/de/LC_MESSAGES/x.mo", False, False),
        ("usr/share/lintian/overrides/libc6", False, False),
        ("usr/lib/x86_64-linux-gnu/gconv/UTF-7.so", False, False),
        ("usr/lib/x86_64-linux-gnu/libc.so.6", True, True),
        ("usr/lib/python3.11/ensurepip/__init__.py", True, False),
        ("usr/lib/python3.11/ensurepip/__init__.py", False, True),
        ("usr/lib/python3.11/unittest/test/test_case.py", True, False),
        ("usr/lib/python3.11/unittest/case.py", True, True),
        ("usr/lib/python3.11/email/test.py", True, True),
        ("usr/lib/python3.11/lib-dynload/_testcapi.cpython-311-x86_64-linux-gnu.so", True, False),
        ("usr/lib/python3.11/lib-dynload/_ssl.cpython-311-x86_64-linux-gnu.so", True, True),
        ("etc/ssl/certs", True, True),
        ("usr/share/zoneinfo/right/Europe/Paris", False, False),
        ("usr/share/zoneinfo/Europe/Paris", True, True),
        ("usr/lib/python3.13/pydoc_data/topics.py", True, False),
        ("usr/lib/python3.11/lib2to3/pytree.py", True, True),  # CPython 3.11 ships it
        ("usr/lib/python3.11/lib2to3/tests/test_parser.py", True, False),
        ("usr/lib/python3.11/distutils/tests/test_util.py", True, False),
    ],
)
def test_policy_keep(path: str, strip: bool, kept: bool) -> None:
    assert policy.keep(path, strip_stdlib=strip) is kept


def test_stdlib_parts_debian_ships_apart_follow_cpython() -> None:
    assert policy.stdlib_packages("3.11") == (
        ("python3-distutils", "python3.11-distutils"),
        ("python3-lib2to3", "python3.11-lib2to3"),
    )
    assert policy.stdlib_packages("3.12") == (("python3-lib2to3", "python3.12-lib2to3"),)
    assert policy.stdlib_packages("3.13") == ()
    python = policy.groups("3.11", (), ["python3-distutils"])[2]
    assert python.name == "python" and "python3-distutils" in python.roots


def test_usrmerge() -> None:
    assert policy.usrmerge("lib/x86_64-linux-gnu/libc.so.6") == "usr/lib/x86_64-linux-gnu/libc.so.6"
    assert policy.usrmerge("lib64") is None
    assert policy.usrmerge("usr/bin/python3") == "usr/bin/python3"
    assert policy.usrmerge("library/x") == "library/x"


# --- .deb reading ----------------------------------------------------------------------------


@pytest.mark.parametrize("compression", [".xz", ".zst", ".gz", ""])
def test_unpack_deb(tmp_path: Path, compression: str) -> None:
    path = make_deb(
        tmp_path / "demo.deb",
        [
            Member("./", "dir", mode=0o755),
            Member("./lib/", "dir", mode=0o755),
            Member("./lib/x86_64-linux-gnu/", "dir", mode=0o755),
            Member("./lib/x86_64-linux-gnu/libdemo.so.1.0", data=b"ELF", mode=0o4755),
            Member("./lib/x86_64-linux-gnu/libdemo.so.1", "symlink", target="libdemo.so.1.0"),
            Member("./lib/x86_64-linux-gnu/up", "symlink", target="../../usr/share/demo/data"),
            Member("./usr/share/demo/data", data=b"payload"),
            Member("./usr/share/demo/copy", "hardlink", target="./usr/share/demo/data"),
            Member("./usr/share/doc/demo/copyright", data=b"MIT"),
            Member("./usr/share/doc/demo/changelog.gz", data=b"x"),
            Member("./usr/share/demo/pipe", "fifo"),
        ],
        md5sums="abc  lib/x86_64-linux-gnu/libdemo.so.1.0\ndef  usr/share/doc/demo/changelog.gz\n",
        compression=compression,
    )
    builder = TreeBuilder()
    out = deb.unpack(
        path,
        builder,
        package="demo",
        keep=lambda p: policy.keep(p, strip_stdlib=True),
        rewrite=policy.usrmerge,
    )
    tree = builder.freeze()
    lib = tree.get("usr/lib/x86_64-linux-gnu/libdemo.so.1.0")
    assert lib is not None and lib.kind is Kind.FILE and lib.mode == 0o755  # setuid dropped
    assert "lib" not in tree and "lib/x86_64-linux-gnu/libdemo.so.1" not in tree
    link = tree.get("usr/lib/x86_64-linux-gnu/up")
    assert link is not None and link.target == "../../share/demo/data"  # still points at usr/share/demo/data
    copy = tree.get("usr/share/demo/copy")
    assert copy is not None and copy.kind is Kind.FILE and copy.source is not None
    assert copy.source.open().read() == b"payload"
    assert "usr/share/doc/demo/copyright" in tree and "usr/share/doc/demo/changelog.gz" not in tree
    assert out.skipped == ("usr/share/demo/pipe",) and out.dropped == 1

    control = deb.read_control(path, package="demo")
    assert control.control.startswith(b"Package: demo")
    assemble.status_entry(builder, "demo", control, out.paths)
    md5 = builder.get("var/lib/dpkg/status.d/demo.md5sums")
    assert md5 is not None and md5.source is not None
    assert (
        md5.source.open().read() == b"abc  lib/x86_64-linux-gnu/libdemo.so.1.0\n"
    )  # dropped files not listed
    # every regular file installed, by its path in the image, hashed from the .deb's bytes, sorted
    sums = builder.get("var/lib/dpkg/status.d/demo.sha256sums")
    assert sums is not None and sums.source is not None
    want = {
        "usr/lib/x86_64-linux-gnu/libdemo.so.1.0": b"ELF",
        "usr/share/demo/copy": b"payload",
        "usr/share/demo/data": b"payload",
        "usr/share/doc/demo/copyright": b"MIT",
    }
    assert sums.source.open().read() == b"".join(
        f"{hashlib.sha256(data).hexdigest()}  {path}\n".encode() for path, data in sorted(want.items())
    )

    # a builder's record (never an image, never verified): the md5sums that tell which package
    # ships a library, no sha256 of every file
    for_builder = TreeBuilder()
    assemble.status_entry(for_builder, "demo", control, out.paths, hashes=False)
    assert for_builder.get("var/lib/dpkg/status.d/demo.md5sums") is not None
    assert for_builder.get("var/lib/dpkg/status.d/demo.sha256sums") is None


@pytest.mark.parametrize("name", ["./../../etc/evil", "../evil", "usr/../../evil"])
def test_unpack_refuses_escaping_paths(tmp_path: Path, name: str) -> None:
    path = make_deb(tmp_path / "evil.deb", [Member(name, data=b"x")])
    with pytest.raises(UnsafePath) as info:
        deb.unpack(path, TreeBuilder(), package="evil")
    assert info.value.path == name and "evil.deb" in info.value.archive


def test_unpack_refuses_escaping_hardlink_and_entries_below_symlinks(tmp_path: Path) -> None:
    hard = make_deb(tmp_path / "hard.deb", [Member("./x", "hardlink", target="../../etc/shadow")])
    with pytest.raises(UnsafePath):
        deb.unpack(hard, TreeBuilder(), package="hard")
    below = make_deb(
        tmp_path / "below.deb",
        [Member("./usr/share/evil", "symlink", target="/etc"), Member("./usr/share/evil/passwd", data=b"x")],
    )
    with pytest.raises(DebError, match="below the symlink"):
        deb.unpack(below, TreeBuilder(), package="below")


def test_broken_ar_archives(tmp_path: Path) -> None:
    (tmp_path / "magic.deb").write_bytes(b"PK\x03\x04 not an ar")
    with pytest.raises(DebError, match="bad magic"):
        deb.read_control(tmp_path / "magic.deb", package="magic")
    whole = ar_archive([("debian-binary", b"2.0\n"), ("data.tar.xz", b"x" * 100)])
    (tmp_path / "short.deb").write_bytes(whole[:-40])
    with pytest.raises(DebError, match="past the end"):
        deb.unpack(tmp_path / "short.deb", TreeBuilder(), package="short")
    (tmp_path / "nodata.deb").write_bytes(ar_archive([("debian-binary", b"2.0\n")]))
    with pytest.raises(DebError, match=r"no data\.tar member"):
        deb.unpack(tmp_path / "nodata.deb", TreeBuilder(), package="nodata")
    (tmp_path / "garbage.deb").write_bytes(ar_archive([("data.tar.xz", b"not xz at all")]))
    with pytest.raises(DebError, match=r"cannot read data\.tar"):
        deb.unpack(tmp_path / "garbage.deb", TreeBuilder(), package="garbage")


def _deb_with_data(path: Path, data_member: str, packed: bytes) -> Path:
    path.write_bytes(ar_archive([("debian-binary", b"2.0\n"), (data_member, packed)]))
    return path


def test_data_tar_in_several_xz_streams_or_padded_is_read_whole(tmp_path: Path) -> None:
    tar = tar_bytes([Member("./usr/share/a", data=b"A" * 5000), Member("./usr/share/b", data=b"B" * 7)])
    half = len(tar) // 2
    for name, packed in [
        ("two-streams", lzma.compress(tar[:half]) + lzma.compress(tar[half:])),
        ("padded", lzma.compress(tar) + b"\0" * 8),
    ]:
        path = _deb_with_data(tmp_path / f"{name}.deb", "data.tar.xz", packed)
        got = {info.name: data for info, data in deb.read_data(path, package=name)}
        assert got == {"./usr/share/a": b"A" * 5000, "./usr/share/b": b"B" * 7}, name


def test_data_tar_cut_short_or_too_large_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tar = tar_bytes([Member("./usr/share/a", data=bytes(range(256)) * 40)])
    cut = _deb_with_data(tmp_path / "cut.deb", "data.tar.xz", lzma.compress(tar[:3000]))  # a whole xz stream
    with pytest.raises(DebError, match=r"cut: its data\.tar ends inside './usr/share/a'"):
        deb.read_data(cut, package="cut")
    truncated = _deb_with_data(tmp_path / "trunc.deb", "data.tar.xz", lzma.compress(tar)[:-30])
    with pytest.raises(DebError, match=r"trunc: cannot read data\.tar"):
        deb.read_data(truncated, package="trunc")
    monkeypatch.setattr(deb, "MAX_DATA", 4096)
    for suffix, packed in [(".xz", lzma.compress(tar)), ("", tar)]:
        big = _deb_with_data(tmp_path / f"big{suffix}.deb", f"data.tar{suffix}", packed)
        with pytest.raises(DebError, match=r"its data\.tar holds more than 4096 bytes"):
            deb.read_data(big, package="big")


# --- hand-made maintainer-script effects -----------------------------------------------------


def test_static_files_and_ca_bundle() -> None:
    b = TreeBuilder()
    assemble.static_files(b, version="12.15", codename="bookworm", merged=policy.loader_dirs("amd64"))
    b.data(
        "usr/share/ca-certificates/mozilla/B.crt",
        b"-----BEGIN CERTIFICATE-----\nbbb\n-----END CERTIFICATE-----",
    )
    b.data(
        "usr/share/ca-certificates/mozilla/A.crt",
        b"-----BEGIN CERTIFICATE-----\naaa\n-----END CERTIFICATE-----\n",
    )
    b.data("usr/share/ca-certificates/mozilla/README", b"not a cert")
    assert assemble.ca_bundle(b) == 2
    tree = b.freeze()
    bundle = tree.get(assemble.CA_BUNDLE)
    assert bundle is not None and bundle.source is not None
    assert bundle.source.open().read().startswith(b"-----BEGIN CERTIFICATE-----\naaa")
    tmp = tree.get("tmp")
    assert tmp is not None and tmp.mode == 0o1777
    home = tree.get("home/nonroot")
    assert home is not None and (home.uid, home.gid, home.mode) == (65532, 65532, 0o700)
    lib64 = tree.get("lib64")
    assert lib64 is not None and lib64.kind is Kind.SYMLINK and lib64.target == "usr/lib64"
    passwd = tree.get("etc/passwd")
    assert passwd is not None and passwd.source is not None
    assert b"nonroot:x:65532:65532:" in passwd.source.open().read()
    release = assemble.os_release(version="12.15", codename="bookworm")
    assert 'VERSION_ID="12"' in release and "ID=debian" in release and "VERSION_CODENAME=bookworm" in release
    assert "loader" not in policy.loader_dirs("arm64") and "lib64" not in policy.loader_dirs("arm64")


def test_merged_indexes_survive_their_record_and_a_bad_record_is_refused() -> None:
    parsed = list(packages.parse(PACKAGES.format(sha="b" * 64), origin=1, what="test"))
    merged = packages.merge([parsed], arch="amd64")
    assert packages.from_record(packages.to_record(merged)) == merged
    record = packages.to_record(merged)
    with pytest.raises(ValueError):
        packages.from_record(record.replace(b"b" * 64, b"z" * 64, 1))  # bytes that are not the ones written
    with pytest.raises((ValueError, KeyError, TypeError)):
        packages.from_record(b'{"fields": ["name"], "stanzas": []}')  # another version's fields


def test_prefetch_keeps_the_order_and_unpacks_the_same_tree(tmp_path: Path) -> None:
    files = {f"p{i}": [Member(f"./usr/share/p{i}/data", data=bytes([i]) * 1000)] for i in range(7)}
    debs = [(name, make_deb(tmp_path / f"{name}.deb", members)) for name, members in files.items()]
    one_by_one, ahead = TreeBuilder(), TreeBuilder()
    for name, path in debs:
        deb.unpack(path, one_by_one, package=name)
    fetched = list(deb.prefetch(debs, workers=2))
    assert [name for name, _ in fetched] == [name for name, _ in debs]
    for name, members in fetched:
        deb.install(members, ahead, package=name)
    assert one_by_one.freeze() == ahead.freeze()


def test_prefetch_raises_the_broken_package_by_name(tmp_path: Path) -> None:
    good = make_deb(tmp_path / "good.deb", [Member("./usr/share/good", data=b"ok")])
    broken = tmp_path / "broken.deb"
    broken.write_bytes(good.read_bytes()[:-40])  # data.tar cut short
    with pytest.raises(DebError, match="broken"):
        list(deb.prefetch([("good", good), ("broken", broken), ("good2", good)], workers=2))
