"""Where a ``slimline build -v`` spent its time: its lines grouped into phases.

``slimline -v`` starts every line with the seconds since it started (``[ 12.34s] message``); a
step has one space after the bracket, its details more.  :func:`phases` gives each line the time
until the next line (the last one, until the process ended: ``total``) and adds it to the phase
of the first rule in :data:`RULES` that matches the line or, for a detail, the step it belongs
to; what no rule matches, and the start-up before the first line, is :data:`REST`.  An
``assembling base`` step belongs to the step before it (the builder, the base with libraries
added), if any.  So the phases add up to ``total`` exactly, whatever slimline prints; each also
says in how many steps it occurred (reading Debian's Packages indexes: once for the builder and
once for the base the built wheels' libraries are added to)."""

from __future__ import annotations

import re

__all__ = ["REST", "RULES", "phases"]

REST = (
    "the rest: start-up, the pinned base, the locked files downloaded (the builder's packages are "
    "resolved meanwhile), layers, the image written"
)
_LINE = re.compile(r"^\[\s*([0-9.]+)s\] (\s*)(\S.*)$")
# steps that do the work of the step before them (the builder's and the extended base's assembly)
_CONTINUES = re.compile(r"^assembling base ")

# (pattern on the line, pattern on its step or None, the phase's name: a template filled from
# the step's match), tried in order
Rule = tuple[re.Pattern[str] | None, re.Pattern[str] | None, str]
RULES: tuple[Rule, ...] = (
    (re.compile(r"^reading the Packages indexes"), None, "reading Debian's Packages indexes"),
    (re.compile(r"^\d+ wheels ready"), None, REST),
    (
        None,
        re.compile(r"^builder for .*: writing its files$"),
        "builder: its .debs downloaded, unpacked and written into its root file system",
    ),
    (None, re.compile(r"^builder for "), "builder: Release files verified, its packages resolved"),
    (
        None,
        re.compile(r"^building .+? for \S+ in the builder"),
        "compiling in the builder (the packages one per core at once, largest first)",
    ),
    (None, re.compile(r"^adding .* to the base$"), "base: the libraries the built wheels link added"),
)  # fmt: skip


def phases(log: str, total: float) -> dict[str, tuple[float, int]]:
    """Phase name -> (seconds, in how many steps it occurred) of the build that printed ``log``
    in ``total`` seconds, in the order the phases first appear (see the module's contract)."""
    lines = [(float(m[1]), not m[2], m[3]) for m in map(_LINE.match, log.splitlines()) if m]
    seconds: dict[str, float] = {REST: lines[0][0] if lines else total}
    seen: dict[str, set[str]] = {REST: {""}}
    step = ""
    for i, (at, is_step, text) in enumerate(lines):
        step = text if is_step and not _CONTINUES.search(text) else step
        until = lines[i + 1][0] if i + 1 < len(lines) else total
        name = _phase(text, is_step, step)
        seconds[name] = seconds.get(name, 0.0) + max(0.0, until - at)
        seen.setdefault(name, set()).add(step)
    return {name: (spent, len(seen[name])) for name, spent in seconds.items()}


def _phase(text: str, is_step: bool, step: str) -> str:
    for on_line, on_step, name in RULES:
        if on_line is not None and (is_step or on_line.search(text) is None):
            continue
        found = on_step.search(step) if on_step is not None else None
        if on_step is not None and found is None:
            continue
        return name.format(*(found.groups() if found else ()))
    return REST
