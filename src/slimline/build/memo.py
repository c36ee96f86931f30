"""The memo of a build: everything it made but the project's own layer, for the next build.

Most rebuilds follow an edit to the app's own files.  Everything below the project layer (the
base, the dependency layers, the image config) depends only on the command line, the
project's ``pyproject.toml`` and lock file(s), a few environment variables and the base's
resolution.  So a build records it (:func:`keep`) under a key of exactly those inputs
(:func:`key`), and the next build with the same key reads it back (:func:`recall`) and makes
only the project layer (:func:`remake`), without parsing the lock, selecting wheels,
resolving the base or loading the modules that do.

Contract: ``remake`` returns the images a full build would make, or None; on None from
``recall`` or ``remake`` the caller runs the full build.  None comes when the memo is missing
or unreadable, when a base it used may have changed (a Debian pin older than its ``max_age``,
a registry tag, an OCI layout or archive on disk), when a recorded blob is gone from the
cache, and when the project's wheel would need its backend (:func:`slimline.artifacts.derive.known`).
With ``bytecode``, the project layer is compiled by the compiler a full build would choose now,
and the memo is not used when that is not the one the recorded build used (its identity is
part of every compiled layer's key).  Builds with local directory or file dependencies are
never memoised; ``--refresh`` and ``SLIMLINE_NO_LAYER_CACHE=1`` skip the memo.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from slimline import __version__, layers
from slimline.attest import vcs
from slimline.attest.documents import Made, ready
from slimline.build import assemble
from slimline.build.jobs import AppFiles, Placement, project_job
from slimline.build.result import Built, statuses
from slimline.build.writable import Writable
from slimline.cache import keys
from slimline.cache.store import Cache
from slimline.context import Context
from slimline.layers.filetree import Bytes, FileTree, Kind
from slimline.oci.image import Image, Layer
from slimline.oci.parse import image_from_json
from slimline.project import locks
from slimline.target import Target

if TYPE_CHECKING:
    from slimline.trees.compiler import Compiler

__all__ = ["FORMAT", "Compiled", "Recalled", "Recipe", "WheelRef", "keep", "key", "recall", "remake"]

FORMAT = 5  # 4: layer keys from slimline.cache.keys; 5: documents
_ENV_PREFIXES = ("SLIMLINE_", "PIP_", "POETRY_", "SOURCE_DATE_EPOCH")
# how long, not what; signing does not change the image (and a passphrase is hashed into nothing)
_ENV_IGNORED = frozenset(
    {
        "SLIMLINE_HTTP_DEADLINE",
        "SLIMLINE_DOWNLOAD_DEADLINE",
        "SLIMLINE_SIGNING_KEY",
        "SLIMLINE_SIGNING_PASSWORD",
    }
)


@dataclass(frozen=True, slots=True)
class WheelRef:
    sha256: str
    filename: str


@dataclass(frozen=True, slots=True)
class Compiled:
    """How a build with ``bytecode = true`` compiled its layers."""

    base: Image  # the base whose interpreter was asked (see slimline.trees.bytecode.compiler_for)
    assembled: bool  # a debian: base slimline assembled: its interpreter may run on this host
    identity: str  # the compiler's (slimline.trees.compiler.Compiler.identity)


@dataclass(frozen=True, slots=True)
class Recipe:
    """One platform's image as a build made it, and how to remake its last (project) layer."""

    image: Image  # the image the build made
    partial: Image  # the same without its last (project) layer and that layer's history line
    wheel: WheelRef | None  # the wheel the project layer was installed from (None: the project's files)
    name: str
    version: str
    venv: str
    target: Target
    app: AppFiles
    epoch: int
    compression: layers.Compression
    fresh_until: float  # time.time() after which the base must be resolved again
    compiled: Compiled | None  # bytecode = true: how the layers were compiled
    memoisable: bool  # False: the build had inputs the key does not capture
    documents: Made | None = None  # the SBOM and provenance to finish (None: sbom = false)
    base_layers: int | None = None  # how many of the image's layers are the base's (None: not recorded)
    writable: Writable | None = None  # the writable directories of the project layer
    debug_layer: Layer | None = None  # debug = true: the busybox layer of the debug variant

    @property
    def package(self) -> bool:
        return self.wheel is not None

    @property
    def project_layer(self) -> Layer:
        """The last layer of :attr:`image` (of a recalled recipe: the one the build made)."""
        return self.image.layers[-1]


def key(root: Path, *, command: Mapping[str, Any], env: Mapping[str, str] | None = None) -> str | None:
    """The memo key of building ``root`` with the parsed command line ``command``; None when
    this build must not use the memo (no lock, ``--refresh``, ``SLIMLINE_NO_LAYER_CACHE=1``)."""
    env = os.environ if env is None else env
    if env.get("SLIMLINE_NO_LAYER_CACHE") == "1" or command.get("refresh"):
        return None
    chosen = command.get("lock")
    lock_files = [Path(chosen).resolve()] if chosen else locks.candidates(root)
    try:
        pyproject = (root / "pyproject.toml").read_bytes()
        lock_blobs = [f"{p.name}\0".encode() + p.read_bytes() for p in lock_files]
    except OSError:
        return None
    if not lock_blobs:
        return None
    h = hashlib.sha256()
    for part in (
        f"{FORMAT}|{__version__}|{sys.version}|{sys.executable}|{root}",
        json.dumps(dict(command), sort_keys=True, default=str),
        json.dumps(
            sorted((k, v) for k, v in env.items() if k.startswith(_ENV_PREFIXES) and k not in _ENV_IGNORED)
        ),
        # the documents have a slot for the git revision only when the project is in a checkout
        f"git checkout: {vcs.revision(root) is not None}",
    ):
        h.update(part.encode() + b"\0")
    for blob in (pyproject, *lock_blobs):  # every lock the choice is made from (locks.find)
        h.update(hashlib.sha256(blob).digest())
    return h.hexdigest()


def keep(memo_key: str, recipes: Sequence[Recipe], *, name: str, cache: Cache) -> None:
    """Record a finished build's recipes (one per platform) and the image name it chose."""
    if (
        not recipes
        or not all(r.memoisable for r in recipes)
        or min(r.fresh_until for r in recipes) <= time.time()
    ):
        return
    entries = []
    for r in recipes:
        entries.append(
            {
                **_image_record(r.partial),
                "wheel": None if r.wheel is None else [r.wheel.sha256, r.wheel.filename],
                "project_layer": layers.record(r.project_layer),
                "name": r.name,
                "version": r.version,
                "venv": r.venv,
                "target": r.target.to_json(),
                "app": {
                    "workdir": r.app.workdir,
                    "include": list(r.app.include),
                    "exclude": list(r.app.exclude),
                },
                "epoch": r.epoch,
                "base_layers": r.base_layers,
                "writable": None if r.writable is None else r.writable.to_json(),
                "debug_layer": None if r.debug_layer is None else layers.record(r.debug_layer),
                "compression": [r.compression.name, r.compression.level],
                "fresh_until": r.fresh_until if r.fresh_until != float("inf") else None,
                "documents": None
                if r.documents is None
                else [r.documents.key, list(r.documents.kinds), r.documents.revision],
                "compiled": None
                if r.compiled is None
                else {
                    **_image_record(r.compiled.base),
                    "assembled": r.compiled.assembled,
                    "identity": r.compiled.identity,
                },
            }
        )
    cache.write_meta(keys.MEMO, memo_key, json.dumps({"name": name, "images": entries}).encode())


@dataclass(frozen=True, slots=True)
class Recalled:
    """A memo read back (:func:`recall`), to remake its images with :func:`remake`."""

    name: str  # the image name the build chose
    recipes: tuple[Recipe, ...]  # their ``image`` is the partial one: the project layer is made anew


def recall(memo_key: str, *, cache: Cache) -> Recalled | None:
    """The memo under ``memo_key`` if it can still serve a build: every base still fresh and
    every recorded blob still in the cache; else None."""
    raw = cache.read_meta(keys.MEMO, memo_key)
    if raw is None:
        return None
    try:
        data = json.loads(raw)
        name = str(data["name"])
        recipes = [_recipe(e, cache) for e in data["images"]]
    except (ValueError, KeyError, TypeError, IndexError):
        return None
    now = time.time()
    ready = tuple(r for r in recipes if r is not None and r.fresh_until > now)
    if len(ready) != len(recipes):
        return None
    return Recalled(name, ready)


def remake(
    recalled: Recalled, root: Path, *, also_exclude: Sequence[Path], ctx: Context
) -> list[Built] | None:
    """The images of the recalled build with only the project layer made anew from ``root``
    (whose outputs inside the project are ``also_exclude``), through the same tail as a full
    build (:func:`~slimline.build.jobs.project_job`, :func:`~slimline.layers.cache.realise`,
    :func:`~slimline.build.assemble.top`); None when the project's wheel needs its backend or
    the bytecode compiler a full build would choose now is not the recorded one.  Every layer
    below the project's is reported as reused (the base's as base)."""
    wheel = None
    if any(r.package for r in recalled.recipes):
        from slimline.artifacts import derive

        wheel = derive.known(root, cache=ctx.cache).wheel
        if wheel is None:
            return None
    images = []
    for r in recalled.recipes:
        started_at = time.perf_counter()
        compiler = _compiler(r.compiled, r.target, cache=ctx.cache) if r.compiled is not None else None
        if r.compiled is not None and compiler is None:
            return None
        place = Placement(r.venv, r.target, compiler)
        job = project_job(
            root, name=r.name, version=r.version, wheel=wheel if r.package else None, place=place,
            app=replace(r.app, also_exclude=tuple(also_exclude)), epoch=r.epoch, cache=ctx.cache,
            writable=r.writable,
        )  # fmt: skip
        try:
            found = layers.lookup(job.key, cache=ctx.cache, mtime=job.mtime, compression=r.compression)
            # a patched layer would keep the changed modules' old .pyc: compiled, it is made anew
            patched = None
            if found is None and wheel is not None and compiler is None:
                patched = _patched(r, wheel, cache=ctx.cache)
            jobs = [replace(job, make=patched) if patched else job]
            made = layers.realise(jobs, cache=ctx.cache, compression=r.compression, report=ctx.report)
        finally:
            if compiler is not None:
                compiler.close()
        image = assemble.top(r.partial, job, made.layers[0], epoch=r.epoch)
        how = "reused" if made.reused else "patched" if patched else "new"
        ctx.report.done(
            f"image {image.digest} ({r.target.platform}): {len(image.layers) - 1} layers as in the last "
            f"build (nothing but the project changed), project layer {how}"
        )
        below = len(r.partial.layers)
        base = min(r.base_layers or 0, below)
        status = statuses(base=base, made=(False,) * (below - base) + made.made)
        images.append(Built(image, status, time.perf_counter() - started_at))
    return images


def _compiler(compiled: Compiled, target: Target, *, cache: Cache) -> Compiler | None:
    """The compiler a full build would choose now, if it is the one the recorded build used
    (else None: the recorded layers are not what a full build would make)."""
    from slimline.trees.bytecode import BytecodeError, compiler_for

    try:
        compiler = compiler_for(compiled.base, target, cache=cache, run_image=compiled.assembled)
    except BytecodeError:
        return None  # the full build says why
    if compiler.identity != compiled.identity:
        compiler.close()
        return None
    return compiler


def _patched(r: Recipe, wheel: Path, *, cache: Cache) -> Callable[[], FileTree] | None:
    """How to make the project layer for ``wheel`` from the one the recorded build made from
    its own wheel, when the two wheels differ only in the contents of modules: those files
    replaced and the installed RECORD updated, everything else (scripts, metadata, modes,
    order) as installed before.  None when that does not hold; the layer is then installed."""
    from slimline.artifacts import derive
    from slimline.artifacts.wheelcache import stored_wheel

    if r.wheel is None or not r.project_layer.path.is_file():
        return None
    old = stored_wheel(cache, r.wheel.sha256, r.wheel.filename, package=r.name)
    if old is None or old.name != wheel.name:
        return None
    changes = derive.module_changes(old, wheel)
    if changes is None:
        return None
    site = f"{r.venv.strip('/')}/lib/python{r.target.python_xy}/site-packages"
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
    record = derive.record_member(names)
    tree = layers.read_tree(r.project_layer)
    entries = {f"{site}/{m}": tree.get(f"{site}/{m}") for m in [*changes, record or ""]}
    if record is None or any(
        e is None or e.kind is not Kind.FILE or e.source is None for e in entries.values()
    ):
        return None
    new = {f"{site}/{m}": data for m, data in changes.items()}
    installed = entries[f"{site}/{record}"]
    assert installed is not None and installed.source is not None
    with installed.source.open() as f:
        new[f"{site}/{record}"] = derive.new_record(f.read(), changes)
    patch = {}
    for path, data in new.items():
        e = entries[path]
        assert e is not None
        patch[path] = replace(e, size=len(data), source=Bytes(data))
    result = tree.merge(FileTree(patch))
    return lambda: result


def _recipe(d: Mapping[str, Any], cache: Cache) -> Recipe | None:
    """A recorded recipe whose blobs are all still in the cache, else None.  Its ``image`` is
    the partial image plus the project layer the recorded build made (history as the partial's)."""
    partial = _image(d, cache)
    debug_layer = None if d.get("debug_layer") is None else layers.from_record(d["debug_layer"], cache=cache)
    if not all(layer.path.is_file() for layer in partial.layers) or (
        debug_layer and not debug_layer.path.is_file()
    ):
        return None
    app = d["app"]
    name, level = d["compression"]
    if name not in ("gzip", "zstd", "none"):
        return None
    wheel = None if d["wheel"] is None else WheelRef(str(d["wheel"][0]), str(d["wheel"][1]))
    project = layers.from_record(d["project_layer"], cache=cache)
    made = None
    if d["documents"] is not None:
        key, kinds, revision = d["documents"]
        made = Made(str(key), tuple(str(k) for k in kinds), bool(revision))
        if not ready(made, cache=cache):
            return None
    return Recipe(
        image=replace(partial, layers=(*partial.layers, project)),
        partial=partial,
        wheel=wheel,
        name=str(d["name"]),
        version=str(d["version"]),
        venv=str(d["venv"]),
        target=Target.from_json(d["target"]),
        app=AppFiles(
            str(app["workdir"]),
            tuple(app["include"]),
            tuple(app["exclude"]),
            (),  # the outputs of the build at hand: see remake()
        ),
        epoch=int(d["epoch"]),
        compression=layers.Compression(name, int(level)),
        fresh_until=float("inf") if d["fresh_until"] is None else float(d["fresh_until"]),
        compiled=None if d["compiled"] is None else _compiled(d["compiled"], cache),
        memoisable=True,
        documents=made,
        base_layers=None if d.get("base_layers") is None else int(d["base_layers"]),
        writable=None if d.get("writable") is None else Writable.from_json(d["writable"]),
        debug_layer=debug_layer,
    )


def _compiled(d: Mapping[str, Any], cache: Cache) -> Compiled:
    return Compiled(base=_image(d, cache), assembled=bool(d["assembled"]), identity=str(d["identity"]))


def _image_record(image: Image) -> dict[str, str]:
    """How the memo records an image: its manifest and config (its blobs stay in the cache)."""
    return {"manifest": image.manifest_bytes.decode(), "config": image.config_bytes.decode()}


def _image(d: Mapping[str, Any], cache: Cache) -> Image:
    """The image :func:`_image_record` recorded, its blobs in ``cache`` (which may since have gone)."""
    manifest, config = str(d["manifest"]).encode(), str(d["config"]).encode()
    return image_from_json(manifest, config, blob_path=cache.digest_path)
