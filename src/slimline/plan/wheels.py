"""The best artifact of a locked package for a target: a wheel by tag priority, else an sdist.

Contract of :func:`choose`: among the wheels whose tags the target accepts, the one whose best
tag comes first in :meth:`Target.tags` wins (ties: the higher build number, then the file
name, so the choice is deterministic).  With no fitting wheel the sdist is returned (to be
built for the target later; ``.tar.gz`` preferred over other archive kinds), and with
neither, None.  Wheels are never matched against the host.
"""

from __future__ import annotations

from collections.abc import Sequence

from packaging.tags import Tag
from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from slimline.plan.model import Artifact
from slimline.target import Target

__all__ = ["choose", "rank", "wheel_rank"]

_cache: dict[Target, dict[Tag, int]] = {}


def rank(target: Target) -> dict[Tag, int]:
    """Tag -> priority for ``target`` (0 is best).  Memoised: targets are immutable."""
    got = _cache.get(target)
    if got is None:
        got = {}
        for i, tag in enumerate(target.tags()):
            got.setdefault(tag, i)
        _cache[target] = got
    return got


def wheel_rank(filename: str, target: Target) -> int | None:
    """The priority of a wheel file name for ``target``, or None when it does not fit (or is not a wheel)."""
    try:
        _, _, _, tags = parse_wheel_filename(filename)
    except InvalidWheelFilename:
        return None
    ranks = rank(target)
    return min((ranks[t] for t in tags if t in ranks), default=None)


def choose(files: Sequence[Artifact], target: Target) -> Artifact | None:
    """The artifact to install ``files``' package from on ``target`` (see module contract)."""
    best: tuple[int, int, str] | None = None
    chosen: Artifact | None = None
    for f in files:
        if f.kind != "wheel":
            continue
        r = wheel_rank(f.filename, target)
        if r is None:
            continue
        build = parse_wheel_filename(f.filename)[2]
        key = (r, -build[0] if build else 0, f.filename)
        if best is None or key < best:
            best, chosen = key, f
    if chosen is not None:
        return chosen
    sdists = sorted(
        (f for f in files if f.kind == "sdist"),
        key=lambda f: (not f.filename.endswith(".tar.gz"), f.filename),
    )
    return sdists[0] if sdists else None
