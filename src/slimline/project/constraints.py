"""Poetry's version-constraint syntax, converted once to PEP 440 specifiers and PEP 508 markers.

``^1.2`` -> ``>=1.2,<2.0``; ``~1.2`` -> ``>=1.2,<1.3``; ``1.*`` -> ``==1.*``; ``a || b`` gives
alternatives (any one may hold).  Nothing downstream of :mod:`slimline.project.pyproject`
needs Poetry's syntax.
"""

from __future__ import annotations

import re

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import Version

__all__ = ["and_markers", "poetry_constraint", "python_marker"]


_AND_SPLIT = re.compile(r"(?<!^)(?<![\^~=>< ,]) *(?<!-)[, ](?!-) *(?!,|$)")
_SINGLE = re.compile(r"^(?P<op>\^|~=|~|===|==|=|!=|>=|<=|>|<)?\s*v?(?P<version>[^\s,]*)$")


def _bump(version: Version, index: int) -> str:
    parts = list(version.release) + [0] * max(0, index + 1 - len(version.release))
    parts = parts[: index + 1]
    parts[index] += 1
    return ".".join(str(p) for p in parts)


def _single(text: str) -> list[str]:
    if re.fullmatch(r"(?i)v?[x*](\.[x*])*", text) or text == "":
        return []
    m = _SINGLE.match(text)
    if not m:
        raise ValueError(f"cannot read version constraint {text!r}")
    op, raw = m.group("op") or "==", m.group("version")
    raw = re.sub(r"(?i)\.[x*]$", ".*", raw)
    if op in ("^", "~", "~=") and raw.endswith(".*"):
        raise ValueError(f"cannot read version constraint {text!r}")
    if raw.endswith(".*"):
        Version(raw[:-2])
        return [("!=" if op == "!=" else "==") + raw]
    v = Version(raw)
    precision = len(v.release)
    if op == "^":
        index = next((i for i, p in enumerate(v.release) if p != 0), precision - 1)
        return [f">={raw}", f"<{_bump(v, min(index, precision - 1))}"]
    if op == "~":
        return [f">={raw}", f"<{_bump(v, 0 if precision == 1 else 1)}"]
    if op == "~=" and precision == 1:
        return [f">={raw}", f"<{_bump(v, 0)}"]
    return [f"{'==' if op == '=' else op}{raw}"]


def poetry_constraint(text: str) -> tuple[SpecifierSet, ...]:
    """Poetry's constraint syntax as alternatives of PEP 440 specifier sets (any one may hold).

    ``"*"`` and ``""`` give one empty set.  Raises ValueError for text that is neither.
    """
    text = text.strip()
    if text in ("", "*"):
        return (SpecifierSet(),)
    out = []
    for alt in re.split(r"\s*\|\|?\s*", text):
        alt = alt.rstrip(",").rstrip()
        parts = _AND_SPLIT.split(alt) if alt else []
        specs = [s for part in parts for s in _single(part.strip())]
        try:
            out.append(SpecifierSet(",".join(specs)))
        except InvalidSpecifier as err:
            raise ValueError(f"cannot read version constraint {text!r}: {err}") from err
    return tuple(out)


def python_marker(alternatives: tuple[SpecifierSet, ...]) -> str:
    """PEP 508 marker text equivalent to a python constraint ("" when it allows everything)."""
    ors = []
    for spec in alternatives:
        ands = []
        for s in sorted(spec, key=str):
            ver, op = s.version, s.operator
            if op == "~=":
                low = Version(ver)
                ands.append(f'{_py_var(ver)} >= "{ver}"')
                ands.append(f'{_py_var(ver)} < "{_bump(low, max(0, len(low.release) - 2))}"')
                continue
            if ver.endswith(".*"):
                ver = ver[:-2]
                ands.append(f'{_py_var(ver)} {op} "{ver}"')
                continue
            ands.append(f'{_py_var(ver)} {op} "{ver}"')
        if not ands:
            return ""
        ors.append(" and ".join(ands))
    if len(ors) == 1:
        return ors[0]
    return " or ".join(f"({o})" for o in ors)


def _py_var(version: str) -> str:
    return "python_version" if len(version.split(".")) <= 2 else "python_full_version"


def and_markers(*markers: str) -> str:
    parts = [m for m in markers if m]
    if len(parts) <= 1:
        return parts[0] if parts else ""
    return " and ".join(f"({m})" for m in parts)
