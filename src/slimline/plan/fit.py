"""Which Debian suite fits a lock: decided before anything is downloaded or built.  Pure.

Each candidate is a known suite with the target its base will have on each platform of the
build.  For each, the plan is selected (:func:`slimline.plan.select.select`) and every selected
package that gets no wheel is a :class:`Gap`, one of:

* *avoidable*: a wheel in the lock fits another candidate (same platform) whose Python
  satisfies ``requires-python`` (``markupsafe 2.1.2`` on 3.13: wheels up to cp311);
* *built anyway*: no wheel fits any candidate, but there is a source to build (an sdist; a
  path, git or url source): built whichever suite is chosen, so it decides nothing
  (``python-ldap``, sdist only);
* *uninstallable*: no wheel and no source; the suite cannot be used.

:func:`choose` (no base named): the newest candidate without avoidable gaps, else the newest
whose every package can at least be built, else :class:`FitError` listing per suite what is
missing.  :func:`check` (a known suite named): :class:`FitError` when the suite has a gap that
another candidate avoids and the user did not accept building it (``build-from-source``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from slimline.errors import ExitStatus, SlimlineError
from slimline.plan import select, wheels
from slimline.plan.model import Selected
from slimline.project.lockfile import Artifact, Lock
from slimline.project.pyproject import Project
from slimline.target import Target

__all__ = ["ALL", "Candidate", "Fit", "FitError", "Gap", "Wanted", "assess", "check", "choose"]

ALL = ":all:"  # in ``build-from-source``: every package


class FitError(SlimlineError):
    """No known suite can install the lock, or the named one lacks wheels another one has."""

    exit_status = ExitStatus.INPUT


@dataclass(frozen=True, slots=True)
class Wanted:
    """The groups and extras asked for (as :func:`slimline.plan.select.select` takes them)."""

    with_groups: tuple[str, ...] = ()
    without_groups: tuple[str, ...] = ()
    only_groups: tuple[str, ...] = ()
    extras: tuple[str, ...] = ()
    all_extras: bool = False


@dataclass(frozen=True, slots=True)
class Candidate:
    suite: str
    targets: tuple[Target, ...]  # one per platform of the build, in its order

    @property
    def python(self) -> str:
        return ".".join(map(str, self.targets[0].python_version))


@dataclass(frozen=True, slots=True)
class Gap:
    """A selected package without a wheel for one of a suite's targets."""

    name: str
    version: str
    platform: str
    cause: str  # what no wheel is made for: "Python 3.13", or "glibc 2.36" when a newer glibc has one
    buildable: bool  # there is a source to build it from
    elsewhere: tuple[str, ...]  # the other candidates with a wheel of it for this platform
    wheels_up_to: str = ""  # "3.10": its Linux wheels' newest CPython, when older than the target's

    @property
    def label(self) -> str:
        return f"{self.name} {self.version}"


@dataclass(frozen=True, slots=True)
class Fit:
    suite: str
    python: str  # "3.13.5"
    problem: str = ""  # why the suite cannot be used at all; "" when it can
    gaps: tuple[Gap, ...] = ()
    platforms: tuple[str, ...] = ()  # of the build
    error: SlimlineError | None = field(default=None, compare=False)  # the selection's error

    def avoidable(self, accepted: Iterable[str] = ()) -> tuple[Gap, ...]:
        """The gaps another candidate has wheels for, less the packages in ``accepted``."""
        ok = set(accepted)
        return tuple(g for g in self.gaps if g.elsewhere and ALL not in ok and g.name not in ok)

    @property
    def usable(self) -> bool:
        return not self.problem and all(g.buildable for g in self.gaps)

    @property
    def built(self) -> tuple[Gap, ...]:
        """The gaps that are built from source whichever candidate is chosen."""
        return tuple(g for g in self.gaps if g.buildable and not g.elsewhere)


_Plans = dict[str, tuple[tuple[Target, tuple[Selected, ...]], ...]]  # suite -> (target, selected)...


def assess(project: Project, lock: Lock, candidates: Sequence[Candidate], wanted: Wanted) -> tuple[Fit, ...]:
    """How each candidate fits (in the candidates' order)."""
    plans: _Plans = {}
    fits: dict[str, Fit] = {}
    spec = " || ".join(str(s) or "*" for s in project.python_alternatives)
    for c in candidates:
        if not project.allows_python(c.python):
            fits[c.suite] = Fit(
                c.suite, c.python, problem=f"Python {c.python} does not satisfy requires-python {spec}"
            )
            continue
        try:
            plans[c.suite] = tuple((t, _select(project, lock, t, wanted)) for t in c.targets)
        except select.SelectError as err:
            fits[c.suite] = Fit(c.suite, c.python, problem=err.problem, error=err)
    files = {(p.name, p.version): p.files for p in lock.packages}
    usable = [c for c in candidates if c.suite in plans]
    for c in usable:
        gaps = (
            _gap(p, t, files.get((p.name, p.version), ()), [o for o in usable if o is not c])
            for t, packages in plans[c.suite]
            for p in packages
        )
        platforms = tuple(str(t.platform) for t in c.targets)
        fits[c.suite] = Fit(
            c.suite, c.python, gaps=tuple(g for g in gaps if g is not None), platforms=platforms
        )
    return tuple(fits[c.suite] for c in candidates)


def _gap(p: Selected, target: Target, files: Sequence[Artifact], others: Sequence[Candidate]) -> Gap | None:
    """``p``'s gap on ``target`` (None when a wheel fits), with the ``others`` that have a wheel."""
    if (p.artifact is not None and p.artifact.kind == "wheel") or _has_wheel(p, files, target):
        return None
    platform = str(target.platform)
    elsewhere = tuple(
        o.suite
        for o in others
        if any(str(t.platform) == platform and _has_wheel(p, files, t) for t in o.targets)
    )
    newer_libc = replace(target, libc_version=(target.libc_version[0], 99))
    if _has_wheel(p, files, newer_libc):
        cause = f"{target.libc} {target.libc_version[0]}.{target.libc_version[1]}"
    else:
        cause = f"Python {target.python_xy}"
    return Gap(p.name, p.version, platform, cause, _buildable(p), elsewhere, _older_wheels(files, target))


def _older_wheels(files: Sequence[Artifact], target: Target) -> str:
    """The newest CPython X.Y the Linux wheels in ``files`` are for, when older than ``target``'s
    (a release that predates the target's Python), else ""."""
    found: set[tuple[int, int]] = set()
    for f in files:
        if f.kind != "wheel":
            continue
        try:
            tags = parse_wheel_filename(f.filename)[3]
        except InvalidWheelFilename:
            continue
        for t in tags:
            if "linux" in t.platform and (m := re.fullmatch(r"cp3(\d+)", t.interpreter)):
                found.add((3, int(m.group(1))))
    newest = max(found, default=None)
    if newest is None or newest >= target.python_version[:2]:
        return ""
    return f"{newest[0]}.{newest[1]}"


def _select(project: Project, lock: Lock, target: Target, w: Wanted) -> tuple[Selected, ...]:
    plan = select.select(
        project,
        lock,
        target,
        with_groups=w.with_groups,
        without_groups=w.without_groups,
        only_groups=w.only_groups,
        extras=w.extras,
        all_extras=w.all_extras,
    )
    return plan.packages


def _has_wheel(p: Selected, files: Sequence[Artifact], target: Target) -> bool:
    """Does a wheel of ``p`` (in the lock, or the file a url/path source names) fit ``target``?"""
    chosen = wheels.choose(files, target)
    if chosen is not None and chosen.kind == "wheel":
        return True
    named = p.origin.url.rsplit("/", 1)[-1]
    return p.origin.kind in ("url", "file") and not files and wheels.wheel_rank(named, target) is not None


def _buildable(p: Selected) -> bool:
    """Is there a source to build ``p`` from (an sdist, a tree, an archive that is no wheel)?"""
    if p.artifact is not None:
        return p.artifact.kind == "sdist"
    if p.origin.kind in ("directory", "git"):
        return True
    return p.origin.kind in ("url", "file") and not p.origin.url.endswith(".whl")


# --- deciding -------------------------------------------------------------------------------------


def choose(fits: Sequence[Fit], *, requires_python: str) -> tuple[Fit, str]:
    """The suite for a project that names no base, and why (one line; see the module contract)."""
    usable = [f for f in fits if f.usable]
    if not usable:
        raise _none_fits(fits, requires_python)
    best = next((f for f in usable if not f.avoidable()), usable[0])
    skipped = fits[: fits.index(best)]
    if skipped:
        why = "; ".join(_why_not(f, suite=True) for f in skipped)
    else:
        why = f"the newest known suite; Python {best.python} satisfies requires-python {requires_python}"
    if best.avoidable():
        why += f"; no suite has wheels for everything: builds {_labels(best.avoidable())} from source"
    if best.built:
        why += f"; {_built_text(best.built)}"
    return best, why


def check(suite: str, fits: Sequence[Fit], *, accepted: Iterable[str]) -> None:
    """Raise :class:`FitError` when the named ``suite`` lacks wheels that another candidate has
    (and ``accepted`` does not name them), or has packages with neither wheel nor source."""
    chosen = next((f for f in fits if f.suite == suite), None)
    if chosen is None or chosen.problem:
        return  # not known here, or not usable at all: the build says why when it selects
    accepted = tuple(accepted)
    missing = [g for g in chosen.gaps if not g.buildable]
    avoidable = [g for g in chosen.avoidable(accepted) if g.buildable]
    if not missing and not avoidable:
        return
    better = [f for f in fits if f.suite != suite and f.usable and not f.avoidable(accepted)]
    use = f"use --base debian:{better[0].suite} (or name no base: slimline then picks it)" if better else ""
    if missing:
        problem = f"{_gap_text(missing, chosen, suite=True)}, and no source to build"
        other = "re-lock (poetry lock) so that the lock has a wheel or sdist for this base"
    else:
        have = sorted({f"debian:{s}" for g in avoidable for s in g.elsewhere})
        them = "it" if len({g.name for g in avoidable}) == 1 else "them"
        lacking = _gap_text(avoidable, chosen, suite=True)
        problem = f"{lacking}, while {_labels(have)} {_has(have)} wheels for {them}"
        listed = ", ".join(f'"{n}"' for n in dict.fromkeys(g.name for g in avoidable))
        other = f"have slimline build {them} from source: [tool.slimline] build-from-source = [{listed}]"
    raise FitError(
        problem,
        doing=f"checking the base debian:{suite} against poetry.lock, before downloading anything",
        hint=f"{use}, or {other}" if use else other,
    )


def _none_fits(fits: Sequence[Fit], requires_python: str) -> SlimlineError:
    errors = {str(f.error) for f in fits}
    if len(errors) == 1 and fits and fits[0].error is not None:
        return fits[0].error  # the same for every suite: not about the suite
    lines = [f"  {f.suite} (Python {f.python}): {_why_not(f, suite=False)}" for f in fits]
    return FitError(
        "no known Debian suite can install every selected package:\n" + "\n".join(lines),
        doing="choosing a Debian base for the project",
        hint="re-lock (poetry lock) so that the lock has wheels or sdists for one of these Pythons, "
        f"or name a base (--base) whose Python satisfies requires-python {requires_python}",
    )


def _why_not(f: Fit, *, suite: bool) -> str:
    """Why ``f`` was passed over: its problem, the packages it cannot install, or those it lacks
    wheels for; ``suite``: end with the suite's name (for a line about another suite)."""
    if f.problem:
        return f"{f.problem} ({f.suite})" if suite else f.problem
    missing = [g for g in f.gaps if not g.buildable]
    if missing:
        return f"{_gap_text(missing, f, suite=suite)} and no source to build"
    return _gap_text(f.avoidable(), f, suite=suite)


def _gap_text(gaps: Sequence[Gap], fit: Fit, *, suite: bool) -> str:
    """``markupsafe 2.1.2 has no wheel for Python 3.13 (trixie)``: the platforms are named for a
    gap that is not on every platform of the build."""
    platforms = set(fit.platforms)
    where: dict[tuple[str, str], list[str]] = {}
    for g in gaps:
        where.setdefault((g.label, g.cause), []).append(g.platform)
    grouped: dict[tuple[str, str], list[str]] = {}
    for (label, cause), on in where.items():
        text = "" if len(platforms) <= 1 or set(on) == platforms else " on " + ", ".join(on)
        grouped.setdefault((cause, text), []).append(label)
    tail = f" ({fit.suite})" if suite else ""
    return "; ".join(
        f"{_labels(labels)} {_has(labels)} no wheel for {cause}{on}{tail}"
        for (cause, on), labels in grouped.items()
    )


def _built_text(gaps: Sequence[Gap]) -> str:
    """``builds python-ldap 3.4.4 from source (no wheels)``, and for releases whose wheels are
    for older Pythons only ``builds greenlet 1.1.2 from source (its wheels stop at CPython 3.10)``."""
    parts = []
    sdist_only = [g for g in gaps if not g.wheels_up_to]
    if sdist_only:
        parts.append(f"builds {_labels(sdist_only)} from source (no wheels)")
    older = [g for g in gaps if g.wheels_up_to]
    if older:
        newest = max(older, key=lambda g: tuple(map(int, g.wheels_up_to.split(".")))).wheels_up_to
        whose = "its" if len({g.label for g in older}) == 1 else "their"
        parts.append(f"builds {_labels(older)} from source ({whose} wheels stop at CPython {newest})")
    return "; ".join(parts)


def _has(items: Sequence[object]) -> str:
    return "has" if len(items) == 1 else "have"


def _labels(items: Iterable[Gap | str], most: int = 3) -> str:
    """``a``, ``a and b``, ``a, b and c``, ``a, b, c and 2 more``."""
    labels = list(dict.fromkeys(i if isinstance(i, str) else i.label for i in items))
    if len(labels) > most:
        return f"{', '.join(labels[:most])} and {len(labels) - most} more"
    return labels[0] if len(labels) == 1 else f"{', '.join(labels[:-1])} and {labels[-1]}"
