"""Image references as skopeo and podman spell them, parsed once into typed values.

Forms (``role="base"`` reads an image, ``role="output"`` writes one):

    oci:PATH[:TAG]                  OCI image layout directory             base, output
    docker-archive:PATH[:NAME[:TAG]]  tar for ``docker load``/``podman load``  base, output
    docker://NAME[:TAG][@DIGEST]    registry (the ``docker://`` is optional) base, output
    docker-daemon:NAME[:TAG]        the local Docker/podman engine          base, output
    debian:SUITE[/pythonX.Y]        base assembled from Debian packages     base only

As in skopeo, ``PATH`` ends at the first ``:``; a path that contains ``:`` cannot be named.
``debian:`` always means slimline's Debian base; Docker Hub's ``debian`` image is
``docker://debian:bookworm``.

Names: registry and daemon names are normalised the way Docker does (``python:3.12`` ->
``docker.io/library/python:3.12``).  Names recorded in a docker-archive are normalised the way
podman names local images (``app:1.0`` -> ``localhost/app:1.0``), because a short name in an
archive's ``RepoTags`` is read as ``localhost/...`` by podman and as ``docker.io/library/...`` by
Docker: a fully qualified name means the same to both.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from slimline.errors import SlimlineError

__all__ = [
    "ArchiveRef",
    "DaemonRef",
    "DebianBaseRef",
    "ImageName",
    "OciRef",
    "Ref",
    "ReferenceError_",
    "RegistryRef",
    "parse",
    "parse_name",
]

Role = Literal["base", "output"]

FORMS = {
    "base": "debian:SUITE[/pythonX.Y], oci:PATH[:TAG], docker-archive:PATH[:NAME:TAG], "
    "docker://NAME[:TAG] (or just NAME[:TAG]), docker-daemon:NAME:TAG",
    "output": "oci:PATH[:TAG], docker-archive:PATH[:NAME:TAG], docker://NAME[:TAG] (or just NAME[:TAG]), "
    "docker-daemon:NAME:TAG",
}

# Other transports skopeo knows: named so that "containers-storage:x" is not taken for a registry name.
_UNSUPPORTED = ("containers-storage", "dir", "oci-archive", "ostree", "sif", "tarball", "docker-archive-gz")

DOCKER_HUB = "docker.io"
LOCALHOST = "localhost"

# distribution/reference grammar.
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_PATH_RE = re.compile(rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*")
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_RE = re.compile(rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?")
_TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_DIGEST_RE = re.compile(r"sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128}")
# The grammar of org.opencontainers.image.ref.name (what skopeo accepts after oci:PATH:).
_REF_NAME_COMPONENT = r"[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*"
_REF_NAME_RE = re.compile(rf"{_REF_NAME_COMPONENT}(?:/{_REF_NAME_COMPONENT})*")


class ReferenceError_(SlimlineError):  # the name ReferenceError is a builtin
    """``text`` is not a usable image reference; ``problem`` says why."""

    def __init__(self, text: str, problem: str, *, role: Role | None = None) -> None:
        hint = f"use one of: {FORMS[role]}" if role else ""
        super().__init__(f"{text!r}: {problem}", doing="reading an image reference", hint=hint)
        self.text = text
        self.reason = problem
        self.role = role


@dataclass(frozen=True, slots=True)
class ImageName:
    """A fully qualified image name: ``registry/repository[:tag][@digest]``."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """``registry/repository``, without tag or digest."""
        return f"{self.registry}/{self.repository}"

    def __str__(self) -> str:
        text = self.name
        if self.tag is not None:
            text += f":{self.tag}"
        if self.digest is not None:
            text += f"@{self.digest}"
        return text


@dataclass(frozen=True, slots=True)
class OciRef:
    path: Path
    tag: str | None = None

    def __str__(self) -> str:
        return f"oci:{self.path}" + (f":{self.tag}" if self.tag else "")


@dataclass(frozen=True, slots=True)
class ArchiveRef:
    """``name`` is fully qualified with a tag (``localhost/app:1.0``), or None (no RepoTags)."""

    path: Path
    name: str | None = None

    def __str__(self) -> str:
        return f"docker-archive:{self.path}" + (f":{self.name}" if self.name else "")


@dataclass(frozen=True, slots=True)
class RegistryRef:
    """``tag`` defaults to ``latest`` when neither a tag nor a digest is given; a digest wins over a tag."""

    registry: str  # "docker.io", "ghcr.io", "127.0.0.1:5000"
    repository: str  # "library/python"
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        return f"{self.registry}/{self.repository}"

    @property
    def reference(self) -> str:
        """What goes after ``/manifests/`` in the registry API: the digest if pinned, else the tag."""
        return self.digest or self.tag or "latest"

    def __str__(self) -> str:
        return str(ImageName(self.registry, self.repository, self.tag, self.digest))


@dataclass(frozen=True, slots=True)
class DaemonRef:
    """``name`` is Docker-normalised with a tag or digest (``docker.io/library/app:1.0``)."""

    name: str

    def __str__(self) -> str:
        return f"docker-daemon:{self.name}"


@dataclass(frozen=True, slots=True)
class DebianBaseRef:
    """The whole reference as written (``debian:bookworm/python3.11``); parsed by
    :mod:`slimline.base.debian`."""

    text: str

    def __str__(self) -> str:
        return self.text


Ref = OciRef | ArchiveRef | RegistryRef | DaemonRef | DebianBaseRef


def parse(text: str, *, role: Role) -> Ref:
    """Parse ``text`` as a reference usable as a ``role``; raise :class:`ReferenceError_` if it is not."""
    if not text or text != text.strip():
        raise ReferenceError_(text, "empty or surrounded by spaces", role=role)
    transport, sep, rest = text.partition(":")
    if sep and rest.startswith("//") and transport != "docker":
        raise ReferenceError_(text, f"unknown transport {transport}://", role=role)
    if transport == "oci" and sep:
        return _oci(text, rest, role)
    if transport == "docker-archive" and sep:
        return _archive(text, rest, role)
    if transport == "docker-daemon" and sep:
        return DaemonRef(str(_name(text, rest, role=role, default_registry=DOCKER_HUB)))
    if transport == "debian" and sep:
        if role != "base":
            raise ReferenceError_(text, "debian: names a base, it cannot be an output", role=role)
        if not rest:
            raise ReferenceError_(text, "the Debian suite is missing (debian:bookworm)", role=role)
        return DebianBaseRef(text)
    if transport in _UNSUPPORTED and sep:
        raise ReferenceError_(text, f"the {transport}: transport is not supported by slimline", role=role)
    body = rest if transport == "docker" and sep and rest.startswith("//") else text
    body = body.removeprefix("//")
    n = _name(text, body, role=role, default_registry=DOCKER_HUB)
    return RegistryRef(n.registry, n.repository, n.tag, n.digest)


def parse_name(text: str, *, default_registry: str = DOCKER_HUB) -> ImageName:
    """A Docker-style image name (``app:1.0``, ``ghcr.io/o/app@sha256:...``), qualified with
    ``default_registry`` when it names none (``docker.io`` adds ``library/`` to one-part names).
    The tag defaults to ``latest`` unless a digest is given."""
    return _name(text, text, role=None, default_registry=default_registry)


def _oci(text: str, rest: str, role: Role) -> OciRef:
    path, sep, tag = rest.partition(":")
    if not path:
        raise ReferenceError_(text, "the layout directory is missing (oci:PATH[:TAG])", role=role)
    if sep and not _REF_NAME_RE.fullmatch(tag):
        raise ReferenceError_(
            text, f"{tag!r} is not a valid tag (letters, digits and -._:@+/ between them)", role=role
        )
    return OciRef(Path(path).expanduser(), tag if sep else None)


def _archive(text: str, rest: str, role: Role) -> ArchiveRef:
    path, sep, name = rest.partition(":")
    if not path:
        raise ReferenceError_(text, "the archive path is missing (docker-archive:PATH[:NAME:TAG])", role=role)
    if not sep:
        return ArchiveRef(Path(path).expanduser(), None)
    n = _name(text, name, role=role, default_registry=LOCALHOST)
    if n.digest is not None:
        raise ReferenceError_(text, "an archive names images by NAME:TAG, not by digest", role=role)
    return ArchiveRef(Path(path).expanduser(), str(n))


def _name(text: str, body: str, *, role: Role | None, default_registry: str) -> ImageName:
    def bad(problem: str) -> ReferenceError_:
        return ReferenceError_(text, problem, role=role)

    if not body:
        raise bad("the image name is missing")
    remainder, at, digest = body.partition("@")
    if at and not _DIGEST_RE.fullmatch(digest):
        raise bad(f"{digest!r} is not a digest (sha256:<64 hex digits>)")
    slash = remainder.rfind("/")
    colon = remainder.rfind(":")
    tag: str | None = None
    if colon > slash:
        remainder, tag = remainder[:colon], remainder[colon + 1 :]
        if not _TAG_RE.fullmatch(tag):
            raise bad(
                f"{tag!r} is not a valid tag (up to 128 of A-Z a-z 0-9 _ . -, not starting with . or -)"
            )
    first, sep, after = remainder.partition("/")
    if sep and ("." in first or ":" in first or first == LOCALHOST or first.lower() != first):
        registry, path = first, after
        if not _DOMAIN_RE.fullmatch(registry):
            raise bad(f"{registry!r} is not a registry host[:port]")
        if registry == "index.docker.io":
            registry = DOCKER_HUB
    else:
        registry, path = default_registry, remainder
    if not _PATH_RE.fullmatch(path):
        raise bad(
            f"{path!r} is not a valid repository name (lowercase letters, digits and separators . _ __ -, "
            "components separated by /)"
        )
    if registry == DOCKER_HUB and "/" not in path:
        path = f"library/{path}"
    if len(registry) + 1 + len(path) > 255:
        raise bad("the name is longer than 255 characters")
    if tag is None and not at:
        tag = "latest"
    return ImageName(registry, path, tag, digest if at else None)
