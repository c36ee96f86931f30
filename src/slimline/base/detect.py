"""The :class:`~slimline.target.Target` of a base image, read from the image itself, never the host.

Fast path: a slimline-built base carries the ``LABEL_*`` labels of :mod:`slimline.target`.
Otherwise the image's final file system is read (:func:`slimline.layers.read.final_files`:
whiteouts and opaque directories applied as the OCI spec says), keeping the bytes of only the
few small files that tell the interpreter and libc versions:

* interpreter: ``python3`` (or the highest ``python3.X``) in the config's ``PATH`` directories,
  default ``/usr/local/bin:/usr/bin:/bin``; the path reported is the ``python3.X`` it names.
* version: ``PYTHON_VERSION`` in the config's env (official images), the dpkg database
  (``var/lib/dpkg/status`` or distroless ``status.d/``), the apk database, else patch 0.
* libc: musl when ``lib/ld-musl-*.so.1`` exists (version from the apk database or the loader);
  glibc from dpkg's ``libc6``, else the ``libc.so.6`` symlink name or the string inside it.

Pure given the image: callers may memoise by the image's config digest.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Mapping
from typing import Literal

from slimline.errors import SlimlineError
from slimline.layers.filetree import Kind
from slimline.layers.read import FinalEntry, final_files
from slimline.oci.image import Image
from slimline.target import LABEL_INTERPRETER, LABEL_LIBC, LABEL_PYTHON, Target

__all__ = ["DetectError", "detect", "target_from_labels"]

_PY = re.compile(r"python3\.(\d+)")
_KEEP = (
    re.compile(r"var/lib/dpkg/status"),
    re.compile(r"var/lib/dpkg/status\.d/[^/]+"),
    re.compile(r"lib/apk/db/installed"),
    re.compile(r"(usr/)?lib(64)?/([^/]+/)?libc\.so\.6"),
    re.compile(r"(usr/)?lib/ld-musl-[^/]+\.so\.1"),
)
_MAX_KEEP = 64 << 20  # a file bigger than this is not a database or a libc


class DetectError(SlimlineError):
    """The base image has no usable CPython, or its libc cannot be told."""

    def __init__(self, problem: str, *, image: str, hint: str) -> None:
        super().__init__(problem, doing=f"inspecting the base image {image}", hint=hint)
        self.image = image


def detect(image: Image) -> Target:
    """The target of ``image`` (see the module contract).  Raises :class:`DetectError`."""
    fast = target_from_labels(image)
    if fast is not None:
        return fast
    fs = _scan(image)
    name = image.digest[:19]
    interpreter = _interpreter(fs, image)
    if interpreter is None:
        raise DetectError(
            "the base image has no Python interpreter",
            image=name,
            hint="pick a Python base (e.g. debian:bookworm, a distroless python3 image or python:3.X-slim)",
        )
    m = _PY.fullmatch(posixpath.basename(interpreter))
    assert m is not None  # _interpreter only returns python3.X names
    minor = int(m.group(1))
    libc, libc_version = _libc(fs, name)
    return Target(
        platform=image.platform,
        python_version=(3, minor, _patch(fs, image, minor)),
        interpreter="/" + interpreter,
        libc=libc,
        libc_version=libc_version,
    )


def target_from_labels(image: Image) -> Target | None:
    """The target a slimline-built base declares in its labels, or None when they are absent or malformed."""
    labels = image.config.labels
    try:
        version = tuple(int(p) for p in labels[LABEL_PYTHON].split("."))
        family, _, lv = labels[LABEL_LIBC].partition("-")
        libc_version = tuple(int(p) for p in lv.split("."))
        interpreter = labels[LABEL_INTERPRETER]
    except (KeyError, ValueError):
        return None
    if len(version) != 3 or len(libc_version) != 2 or family not in ("glibc", "musl"):
        return None
    return Target(
        platform=image.platform,
        python_version=(version[0], version[1], version[2]),
        interpreter=interpreter,
        libc="glibc" if family == "glibc" else "musl",
        libc_version=(libc_version[0], libc_version[1]),
    )


# --- the merged file system ---------------------------------------------------------------------


def _norm(name: str) -> str:
    return posixpath.normpath("/" + name).lstrip("/")


def _scan(image: Image) -> Mapping[str, FinalEntry]:
    """path (no leading /) -> entry, for the image's final file system."""
    return final_files(image.layers, wanted=_kept, max_size=_MAX_KEEP)


def _kept(path: str) -> bool:
    return any(p.fullmatch(path) for p in _KEEP)


def _resolve(fs: Mapping[str, FinalEntry], path: str, *, follow_last: bool = True) -> str | None:
    """Follow symlinks in every component of ``path``; None when it does not exist (or loops)."""
    parts = [p for p in path.split("/") if p]
    done: list[str] = []
    hops = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if done:
                done.pop()
            continue
        current = "/".join([*done, part])
        node = fs.get(current)
        if node is None:
            return None
        if node.kind is Kind.SYMLINK and (parts or follow_last):
            hops += 1
            if hops > 40:
                return None
            start = [] if node.target.startswith("/") else done
            parts = [p for p in node.target.split("/") if p and p != "."] + parts
            done = list(start)
            continue
        done.append(part)
    return "/".join(done)


def _data(fs: Mapping[str, FinalEntry], path: str) -> bytes | None:
    real = _resolve(fs, path)
    node = fs.get(real) if real else None
    return node.data if node is not None else None  # a hard link carries its target's bytes


# --- interpreter and versions ---------------------------------------------------------------------


def _interpreter(fs: Mapping[str, FinalEntry], image: Image) -> str | None:
    path_env = image.config.env_map().get("PATH", "/usr/local/bin:/usr/bin:/bin")
    for directory in [d for d in path_env.split(":") if d.startswith("/")]:
        real_dir = _resolve(fs, directory)
        if real_dir is None:
            continue
        link = fs.get(f"{real_dir}/python3")
        if link is not None and link.kind is Kind.SYMLINK:
            name = posixpath.basename(link.target)
            if _PY.fullmatch(name) and _resolve(fs, f"{real_dir}/{name}") is not None:
                return f"{_norm(directory)}/{name}"
        found = sorted(
            (int(m.group(1)), p)
            for p in fs
            if posixpath.dirname(p) == real_dir and (m := _PY.fullmatch(posixpath.basename(p)))
            if _resolve(fs, p) is not None
        )
        if found:
            return f"{_norm(directory)}/{posixpath.basename(found[-1][1])}"
    return None


def _stanzas(texts: Iterable[bytes]) -> Iterable[dict[str, str]]:
    for text in texts:
        for block in re.split(r"\n\s*\n", text.decode("utf-8", "replace")):
            fields = dict(re.findall(r"^([A-Za-z0-9-]+):[ \t]*(.*)$", block, flags=re.M))
            if fields:
                yield fields


def _dpkg(fs: Mapping[str, FinalEntry]) -> dict[str, str]:
    """Installed package -> version, from dpkg's status file or distroless's status.d/."""
    texts = [
        n.data for p, n in sorted(fs.items()) if n.data is not None and p.startswith("var/lib/dpkg/status")
    ]
    out = {}
    for s in _stanzas(texts):
        if "Package" in s and "Version" in s and "not-installed" not in s.get("Status", ""):
            out[s["Package"].split(":")[0]] = s["Version"]
    return out


def _apk(fs: Mapping[str, FinalEntry]) -> dict[str, str]:
    data = _data(fs, "lib/apk/db/installed")
    if data is None:
        return {}
    out = {}
    for block in re.split(r"\n\s*\n", data.decode("utf-8", "replace")):
        fields = dict(re.findall(r"^([A-Za-z]):(.*)$", block, flags=re.M))
        if "P" in fields and "V" in fields:
            out[fields["P"]] = fields["V"]
    return out


def _patch(fs: Mapping[str, FinalEntry], image: Image, minor: int) -> int:
    wanted = re.compile(rf"3\.{minor}\.(\d+)")
    env = image.config.env_map().get("PYTHON_VERSION", "")
    if m := wanted.match(env):
        return int(m.group(1))
    dpkg = _dpkg(fs)
    for pkg in (f"libpython3.{minor}-minimal", f"python3.{minor}-minimal", f"libpython3.{minor}-stdlib"):
        if pkg in dpkg and (m := wanted.match(dpkg[pkg].split(":")[-1])):
            return int(m.group(1))
    apk = _apk(fs)
    for pkg in ("python3", f"python3.{minor}"):
        if pkg in apk and (m := wanted.match(apk[pkg])):
            return int(m.group(1))
    return 0


def _libc(fs: Mapping[str, FinalEntry], name: str) -> tuple[Literal["glibc", "musl"], tuple[int, int]]:
    musl = sorted(p for p in fs if re.fullmatch(r"(usr/)?lib/ld-musl-[^/]+\.so\.1", p))
    if musl:
        apk = _apk(fs)
        m = re.match(r"(\d+)\.(\d+)", apk.get("musl", ""))
        if m is None:
            for p in musl:
                data = _data(fs, p) or b""
                m2 = re.search(rb"\x00(1\.\d+)\.\d+\x00", data)
                if m2:
                    m = re.match(r"(\d+)\.(\d+)", m2.group(1).decode())
                    break
        if m is None:
            raise DetectError(
                "the base image uses musl, but its version cannot be told",
                image=name,
                hint="use a base with an apk database (Alpine) or a slimline-built base",
            )
        return "musl", (int(m.group(1)), int(m.group(2)))
    version = _dpkg(fs).get("libc6", "")
    m = re.match(r"(?:\d+:)?(\d+)\.(\d+)", version)
    if m:
        return "glibc", (int(m.group(1)), int(m.group(2)))
    for p in sorted(fs):
        if not re.fullmatch(r"(usr/)?lib(64)?/([^/]+/)?libc\.so\.6", p):
            continue
        real = _resolve(fs, p) or ""
        if m3 := re.fullmatch(r"libc-(\d+)\.(\d+)\.so", posixpath.basename(real)):
            return "glibc", (int(m3.group(1)), int(m3.group(2)))
        data = _data(fs, p) or b""
        if m4 := re.search(rb"GNU C Library[^\n\x00]*? version (\d+)\.(\d+)", data):
            return "glibc", (int(m4.group(1)), int(m4.group(2)))
        found = [(int(a), int(b)) for a, b in re.findall(rb"GLIBC_(\d+)\.(\d+)", data)]
        if found:
            return "glibc", max(found)
    raise DetectError(
        "cannot tell the base image's C library (no libc.so.6, no musl loader)",
        image=name,
        hint="use a glibc or musl based Python image, or a slimline-built base",
    )
