"""What a full build decides from the project and its lock alone, before it downloads or builds.

:func:`settle` reports which dependency groups go in (Poetry installs every non-optional group
by default; slimline the main group alone), then settles the base: a project that names none
gets the known Debian suite that fits its lock (:func:`slimline.plan.fit.choose`), said in one
step line; a named ``debian:`` base of a known suite is checked against the lock
(:func:`slimline.plan.fit.check`), so that a base lacking wheels that another suite has fails
now, naming that suite, rather than after downloads and builds.  Other bases are not checked
here: their Python is known only once their image is read.
"""

from __future__ import annotations

from dataclasses import replace

from slimline.base.debian import ref as debian_ref
from slimline.base.debian.errors import NoSuitableSuite
from slimline.oci.image import Platform
from slimline.plan import fit, select
from slimline.plan.model import Plan
from slimline.project.lockfile import Lock
from slimline.project.pyproject import MAIN, Project
from slimline.project.settings import Settings
from slimline.report import Reporter
from slimline.target import Target

__all__ = ["groups_line", "selected", "settle"]


def settle(project: Project, lock: Lock, settings: Settings, *, report: Reporter) -> Settings:
    """``settings`` with ``base`` set (see the module contract); raises
    :class:`~slimline.plan.fit.FitError` for a named base that does not fit the lock."""
    report.step(groups_line(project, settings))
    named = settings.base
    if named is not None and not named.startswith("debian:"):
        return settings
    ref = debian_ref.DebianRef.parse(named) if named is not None else None
    if ref is not None and debian_ref.expected_target(ref, Platform.parse(settings.platforms[0])) is None:
        return settings  # a suite or Python slimline knows nothing of before reading the archive
    spec = " || ".join(str(s) or "*" for s in project.python_alternatives)
    if ref is None and not any(project.allows_python(v) for v in debian_ref.KNOWN_SUITES.values()):
        raise NoSuitableSuite(spec, dict(debian_ref.KNOWN_SUITES))
    fits = fit.assess(project, lock, _candidates(settings), _wanted(settings))
    if ref is not None:
        fit.check(ref.suite, fits, accepted=settings.build_from_source)
        return settings
    best, why = fit.choose(fits, requires_python=spec)
    report.step(f"base debian:{best.suite}: {why}")
    return replace(settings, base=f"debian:{best.suite}")


def groups_line(project: Project, settings: Settings) -> str:
    """``groups: main; not included: dev, postgres (use --with)``."""
    active = select.active_groups(
        project,
        with_groups=settings.with_groups,
        without_groups=settings.without_groups,
        only_groups=settings.only_groups,
    )
    chosen = sorted(active, key=lambda g: (g != MAIN, g))
    left = sorted(set(project.groups) - active, key=lambda g: (g != MAIN, g))
    text = f"groups: {', '.join(chosen) or '(none)'}"
    if left:
        text += f"; not included: {', '.join(left)} (use {'--only' if settings.only_groups else '--with'})"
    return text


def _candidates(settings: Settings) -> list[fit.Candidate]:
    """Each known suite (newest first) with the target its base will have on each platform."""
    platforms = [Platform.parse(p) for p in settings.platforms]
    out = []
    for suite in debian_ref.KNOWN_SUITES:
        targets = [debian_ref.expected_target(debian_ref.DebianRef(suite), p) for p in platforms]
        out.append(fit.Candidate(suite, tuple(t for t in targets if t is not None)))
    return out


def _wanted(settings: Settings) -> fit.Wanted:
    return fit.Wanted(
        with_groups=settings.with_groups,
        without_groups=settings.without_groups,
        only_groups=settings.only_groups,
        extras=settings.extras,
        all_extras=settings.all_extras,
    )


def selected(project: Project, lock: Lock, target: Target, s: Settings) -> Plan:
    """:func:`slimline.plan.select.select` with the settings' groups, extras and allowances (a
    build and ``--dry-run`` select alike)."""
    return select.select(
        project,
        lock,
        target,
        with_groups=s.with_groups,
        without_groups=s.without_groups,
        only_groups=s.only_groups,
        extras=s.extras,
        all_extras=s.all_extras,
        unverified=s.unverified,
        plain_http=s.plain_http,
    )
