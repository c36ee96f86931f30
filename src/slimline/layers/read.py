"""Layer blobs back to streams of tar members, to in-memory trees, and to the final file
system of a stack of layers (:func:`final_files`, the one place OCI whiteouts are applied).

Whiteout names (OCI image-spec, "Whiteouts"), parsed here and nowhere else: ``d/.wh.X`` removes
``d/X`` and everything below it from lower layers; ``d/.wh..wh..opq`` (opaque) hides every entry
of lower layers below ``d``; other ``.wh..wh.*`` names are AUFS metadata; ``.wh.``, ``.wh..`` and
``.wh...`` name no entry (malformed).  None of them is ever a file of the image.
"""

from __future__ import annotations

import contextlib
import io
import posixpath
import tarfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import IO

from slimline.errors import SlimlineError
from slimline.layers.filetree import Bytes, Entry, FileTree, Kind
from slimline.oci.diffid import LayerError, uncompressed
from slimline.oci.image import Layer
from slimline.oci.whiteout import entry_path, is_opaque, is_whiteout, whiteout_target

__all__ = [
    "MAX_ENTRIES",
    "MAX_WANTED",
    "FinalEntry",
    "Seen",
    "Summarise",
    "TooLarge",
    "final_files",
    "members",
    "read_tree",
    "walk",
]

MAX_ENTRIES = 1_000_000  # paths of an image's file system held at once (some 250 bytes each: 250 MB)
MAX_WANTED = 256 << 20  # bytes of wanted files held at once, all together (see final_files)

# (path, the file's bytes as a stream) -> a small value kept on its entry (see final_files)
Summarise = Callable[[str, IO[bytes]], object]


class TooLarge(SlimlineError):
    """An image whose file system has more paths, or whose wanted files more bytes, than
    :func:`final_files` holds."""

    def __init__(self, problem: str, *, path: str) -> None:
        super().__init__(
            problem,
            doing="reading the files of the base image",
            hint="no real base holds this much; check where the image came from",
        )
        self.path = path


@contextlib.contextmanager
def members(layer: Layer) -> Iterator[tarfile.TarFile]:
    """Open a layer's blob as a streaming tar reader (members in archive order).  The blob is
    decompressed as :func:`slimline.oci.diffid.uncompressed` says; a blob that does not
    decompress or is not a tar raises :class:`~slimline.oci.diffid.LayerError`, also while the
    caller reads members."""
    doing = f"reading the files of layer {layer.digest}"
    with uncompressed(layer, doing=doing) as stream:
        try:
            with tarfile.open(fileobj=stream, mode="r|") as tar:
                yield tar
        except tarfile.TarError as err:
            raise LayerError(f"it is not a valid tar ({err})", layer=layer, doing=doing) from err


def read_tree(layer: Layer) -> FileTree:
    """A layer's members as an in-memory tree (file contents held as bytes): for small layers
    that are to be written again with a few files changed.  Whiteouts are kept as files."""
    out: dict[str, Entry] = {}
    with members(layer) as tar:
        for m in tar:
            path = m.name.removeprefix("./").lstrip("/").rstrip("/")
            if not path:
                continue
            mode = m.mode & 0o7777
            if m.isreg():
                f = tar.extractfile(m)
                data = f.read() if f is not None else b""
                out[path] = Entry(path, Kind.FILE, mode, m.uid, m.gid, len(data), Bytes(data))
            elif m.isdir():
                out[path] = Entry(path, Kind.DIR, mode, m.uid, m.gid)
            elif m.issym():
                out[path] = Entry(path, Kind.SYMLINK, mode, m.uid, m.gid, target=m.linkname)
            elif m.islnk():
                out[path] = Entry(path, Kind.HARDLINK, mode, m.uid, m.gid, target=m.linkname)
            else:
                raise SlimlineError(
                    f"{path}: unsupported member type in {layer.digest}", doing="reading a layer"
                )
    return FileTree(out)


def walk(layers: Iterable[Layer]) -> Iterator[tuple[str, tarfile.TarInfo, tarfile.TarFile]]:
    """Every member of ``layers`` (base first), as ``(path, member, tar)`` with ``path`` relative
    (no leading "./" or "/").  ``tar.extractfile(member)`` is valid until the next item."""
    for layer in layers:
        with members(layer) as tar:
            for member in tar:
                yield member.name.removeprefix("./").lstrip("/"), member, tar


@dataclass(frozen=True, slots=True)
class FinalEntry:
    """One path of an image's final file system, as :func:`final_files` sees it."""

    path: str
    kind: Kind | None  # None: a device node or a fifo
    target: str = ""  # a symlink's text as written; a hard link's target as an entry path
    size: int = 0  # a regular file's size (a hard link's: its target's, when known)
    data: bytes | None = None  # the bytes, when wanted and at most max_size (see final_files)
    layer: int = field(default=-1, compare=False)  # the index (base first) of the entry's layer
    summary: object = field(
        default=None, compare=False
    )  # what ``summarise`` said of a regular file's bytes (see final_files)


# (layer index from 0, entry, member, tar): see final_files's ``seen``
Seen = Callable[[int, FinalEntry, tarfile.TarInfo, tarfile.TarFile], None]


def final_files(
    layers: Iterable[Layer],
    *,
    wanted: Callable[[str], bool],
    max_size: int,
    max_total: int = MAX_WANTED,
    seen: Seen | None = None,
    summarise: Summarise | None = None,
) -> Mapping[str, FinalEntry]:
    """The file system a container of an image with ``layers`` (base first) sees: path -> entry,
    in no particular order (sort when order matters).

    Contract:

    * each layer is streamed once, member by member; only wanted bytes are held.  ``data`` is a
      regular file's bytes when ``wanted(path)`` and its size is at most ``max_size``, else None;
      a hard link shares its target's (so its target must be wanted).  Memory is bounded: when
      the wanted files read add up to more than ``max_total`` bytes, or the file system holds
      more than :data:`MAX_ENTRIES` paths, :class:`TooLarge` is raised.
    * whiteouts as the OCI image-spec says: ``d/.wh.X`` removes ``d/X`` and everything below
      it from lower layers, never from its own layer; ``d/.wh..wh..opq`` hides every lower-layer
      entry below ``d`` (``d`` itself and its own layer's entries stay, wherever they are in the
      tar); whiteout entries never appear; malformed whiteouts and AUFS metadata change nothing.
    * an entry that is not a directory hides what lower layers had below its path, as
      extracting it over a directory would.
    * a path with a ".." component raises :class:`~slimline.errors.UnsafePath` (as
      :func:`slimline.base.rootfs.unpack` does); paths are the layers' own: no symlink is
      followed (a caller that needs a link resolved does it on the result).
    * the root is not an entry; parent directories a layer implies but does not list are not
      made up; a path listed twice in one layer is what its later member says.
    * ``seen``, when given, is called once for every member that is not a whiteout, in archive
      order, with the entry as read (a hard link's target not yet resolved): it may read the
      rest of a regular file's bytes with ``tar.extractfile(member)`` when ``entry.data`` is
      None (a scan that hashes or sizes each layer's own members in the same single pass).
    * with ``summarise``, every regular file's bytes (of every layer, hidden later or not) are
      passed to it once, as a stream it reads and must not close, and its result is the entry's
      ``summary`` (a hard link gets its target's): how a caller hashes every file in the same
      single pass.  ``layer`` is the index of the entry's layer.
    ``seen`` and ``summarise`` both read files' bytes from the stream: pass one of them, not both.
    """
    if seen is not None and summarise is not None:
        raise ValueError("final_files: pass seen or summarise, not both")
    fs: dict[str, FinalEntry] = {}
    budget = _Budget(max_size, max_total)
    for index, layer in enumerate(layers):
        added, cut, opaque = _layer_entries(
            layer, fs, wanted=wanted, budget=budget, seen=_at(seen, index), summarise=summarise, index=index
        )
        if cut or opaque:
            fs = {p: e for p, e in fs.items() if not _hidden(p, cut, opaque)}
        fs.update(added)
    return fs


class _Budget:
    """What :func:`final_files` may still hold: bytes of wanted files (all read count, replaced
    ones too: an upper bound) and paths."""

    def __init__(self, max_size: int, max_total: int) -> None:
        self.max_size, self.max_total, self.held = max_size, max_total, 0

    def size_cap(self) -> int:
        return min(self.max_size, self.max_total - self.held)

    def take(self, path: str, m: tarfile.TarInfo, entry: FinalEntry, wanted: Callable[[str], bool]) -> None:
        if entry.data is not None:
            self.held += len(entry.data)
        elif m.isreg() and m.size <= self.max_size and wanted(path):  # wanted, small enough, no room
            raise TooLarge(
                f"the files slimline reads from the image add up to more than {self.max_total} bytes "
                f"(at {path}, {m.size} bytes)",
                path=path,
            )


def _at(seen: Seen | None, index: int) -> Callable[[FinalEntry, tarfile.TarInfo, tarfile.TarFile], None]:
    if seen is None:
        return lambda entry, m, tar: None
    return lambda entry, m, tar: seen(index, entry, m, tar)


def _layer_entries(
    layer: Layer,
    fs: Mapping[str, FinalEntry],
    *,
    wanted: Callable[[str], bool],
    budget: _Budget,
    seen: Callable[[FinalEntry, tarfile.TarInfo, tarfile.TarFile], None],
    summarise: Summarise | None = None,
    index: int = -1,
) -> tuple[dict[str, FinalEntry], set[str], set[str]]:
    """One layer's entries over the file system ``fs`` of the layers below: (entries it adds,
    lower paths it cuts with all below them, directories whose lower entries it hides)."""
    added: dict[str, FinalEntry] = {}
    cut: set[str] = set()
    opaque: set[str] = set()
    archive = f"layer {layer.digest}"
    with members(layer) as tar:
        for m in tar:
            path = entry_path(m.name, archive=archive)
            if not path:
                continue
            if is_whiteout(path):
                if is_opaque(path):
                    opaque.add(posixpath.dirname(path))
                elif (gone := whiteout_target(path)) is not None:
                    cut.add(gone)
                continue
            entry = _final_entry(path, m, tar, wanted=wanted, max_size=budget.size_cap(), summarise=summarise)
            budget.take(path, m, entry, wanted)
            seen(entry, m, tar)
            if m.islnk():
                source = added.get(entry.target, fs.get(entry.target))
                if source is not None:
                    entry = FinalEntry(
                        path, Kind.HARDLINK, entry.target, source.size, source.data, summary=source.summary
                    )
            entry = replace(entry, layer=index)
            lower = fs.get(path)
            if entry.kind is not Kind.DIR and lower is not None and lower.kind is Kind.DIR:
                cut.add(path)
            added[path] = entry
            if len(added) + len(fs) > MAX_ENTRIES:
                raise TooLarge(f"the image's file system has more than {MAX_ENTRIES} paths", path=path)
    return added, cut, opaque


def _final_entry(
    path: str,
    m: tarfile.TarInfo,
    tar: tarfile.TarFile,
    *,
    wanted: Callable[[str], bool],
    max_size: int,
    summarise: Summarise | None = None,
) -> FinalEntry:
    if m.isdir():
        return FinalEntry(path, Kind.DIR)
    if m.issym():
        return FinalEntry(path, Kind.SYMLINK, m.linkname)
    if m.islnk():
        return FinalEntry(path, Kind.HARDLINK, entry_path(m.linkname, archive=path))
    if not m.isreg():
        return FinalEntry(path, None)
    data = None
    if m.size <= max_size and wanted(path):
        f = tar.extractfile(m)
        data = f.read() if f is not None else b""
    summary = None
    if summarise is not None:
        if data is not None:
            summary = summarise(path, io.BytesIO(data))
        else:
            stream = tar.extractfile(m)
            summary = summarise(path, stream if stream is not None else io.BytesIO())
    return FinalEntry(path, Kind.FILE, size=m.size, data=data, summary=summary)


def _hidden(path: str, cut: set[str], opaque: set[str]) -> bool:
    """Whether a lower layer's ``path`` is gone: it or a parent was cut, or a parent is opaque."""
    if path in cut:
        return True
    head = path
    while head:
        head = head.rpartition("/")[0]
        if head in cut or head in opaque:
            return True
    return False
