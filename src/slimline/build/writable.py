"""Writable directories (``writable = ["/app/data"]``): made in the project's layer, owned by
the user the image runs as.

:func:`plan` decides, once per full build, from the base's file system and the image's user:
the owner (numeric, from ``uid[:gid]`` or the names in the base's ``/etc/passwd`` and
``/etc/group``) and which parent directories the base lacks.  :func:`add` puts the directories
into a layer's tree: each writable directory 0755 owned by the user; a parent the tree already
has stays as it is; a parent the base has is not listed (the base's mode and owner stay); a
parent neither has is made root-owned, 0755.  A :class:`Writable` is a plain value the memo
records, so a rebuild from the memo adds the same entries without reading the base.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from slimline.errors import SlimlineError
from slimline.layers.filetree import Entry, FileTree, Kind, ancestors

if TYPE_CHECKING:
    from slimline.oci.image import Image

__all__ = ["Writable", "WritableError", "add", "plan"]

_DOING = "making the writable directories"
_MAX_ACCOUNTS = 16 << 20  # /etc/passwd, /etc/group: bigger ones are not read


class WritableError(SlimlineError):
    pass


@dataclass(frozen=True, slots=True)
class Writable:
    """The writable directories of one image (relative paths, as in a layer) and their owner."""

    dirs: tuple[str, ...]  # "app/data"
    uid: int
    gid: int
    absent: tuple[str, ...]  # parents the base lacks (made root-owned when the layer lacks them)

    def to_json(self) -> dict[str, object]:
        return {"dirs": list(self.dirs), "uid": self.uid, "gid": self.gid, "absent": list(self.absent)}

    @classmethod
    def from_json(cls, d: dict[str, object]) -> Writable:
        dirs, absent = d["dirs"], d["absent"]
        uid, gid = d["uid"], d["gid"]
        if not (isinstance(dirs, list) and isinstance(absent, list)):
            raise TypeError("writable: dirs and absent must be lists")
        if not (isinstance(uid, int) and isinstance(gid, int)):
            raise TypeError("writable: uid and gid must be integers")
        return cls(tuple(str(p) for p in dirs), uid, gid, tuple(str(p) for p in absent))


def plan(paths: Sequence[str], *, user: str, base: Image) -> Writable | None:
    """The directories ``paths`` (absolute, checked by the settings) for an image on ``base``
    running as ``user`` (the config's ``User``: "" is root); None when there are none."""
    if not paths:
        return None
    from slimline.layers.read import final_files

    accounts = ("etc/passwd", "etc/group")
    fs = final_files(base.layers, wanted=lambda p: p in accounts, max_size=_MAX_ACCOUNTS)
    dirs = tuple(p.strip("/") for p in paths)
    absent: list[str] = []
    for d in dirs:
        for parent in [*ancestors(d), d]:
            found = fs.get(parent)
            if found is None:
                if parent != d and parent not in absent:
                    absent.append(parent)
            elif found.kind is not Kind.DIR:
                kind = found.kind.value if found.kind else "device"
                raise WritableError(
                    f"/{parent} is not a directory in the base (it is a {kind})",
                    doing=_DOING,
                    hint="choose a writable path whose parents are directories in the base",
                )
    texts = {p: (e.data or b"").decode("utf-8", "replace") for p, e in fs.items() if p in accounts}
    uid, gid = _owner(user, texts.get("etc/passwd", ""), texts.get("etc/group", ""))
    return Writable(dirs, uid, gid, tuple(absent))


def add(tree: FileTree, w: Writable) -> FileTree:
    """``tree`` with the writable directories of ``w`` (see the module's contract)."""
    extra: dict[str, Entry] = {}
    for d in w.dirs:
        for parent in ancestors(d):
            if parent not in tree and parent in w.absent:
                extra.setdefault(parent, Entry(parent, Kind.DIR, 0o755))
        have = tree.get(d)
        if have is not None and have.kind is not Kind.DIR:
            raise WritableError(
                f"/{d} is a {have.kind.value} in the project's layer, not a directory",
                doing=_DOING,
                hint="rename the project's file, or choose another writable path",
            )
        extra[d] = Entry(d, Kind.DIR, have.mode if have else 0o755, w.uid, w.gid)
    return tree.merge(FileTree(extra))


def _owner(user: str, passwd: str, group: str) -> tuple[int, int]:
    """Numeric uid and gid of ``user`` ("name", "uid", "name:group", "uid:gid"; "" is root):
    names from ``passwd`` and ``group``; without a group, the user's own (else 0, as runtimes do)."""
    name, _, grp = user.partition(":")
    users = [line.split(":") for line in passwd.splitlines() if line.count(":") >= 3]
    uid = _id(name or "0", {u[0]: u[2] for u in users}, "user", "/etc/passwd")
    if grp:
        groups = {g[0]: g[2] for g in (line.split(":") for line in group.splitlines()) if len(g) >= 3}
        return uid, _id(grp, groups, "group", "/etc/group")
    own = next((u[3] for u in users if u[2] == str(uid)), "0")
    return uid, int(own) if own.isdigit() else 0


def _id(text: str, names: dict[str, str], what: str, where: str) -> int:
    value = text if text.isdigit() else names.get(text, "")
    if not value.isdigit():
        raise WritableError(
            f"the image runs as {what} {text!r}, which the base's {where} does not name",
            doing=_DOING,
            hint='name the user by number: user = "UID:GID" in [tool.slimline], or --user UID:GID',
        )
    return int(value)
