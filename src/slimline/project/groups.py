"""The dependencies a project declares, by group: :class:`Dependency`, :class:`Group` and :func:`read`.

Read from PEP 621 ``[project]`` (dependencies, optional-dependencies), PEP 735
``[dependency-groups]`` and Poetry's ``[tool.poetry]`` tables (dependencies, extras, group,
dev-dependencies), with Poetry's precedence between them.  Poetry's version constraints become
PEP 440 specifiers and PEP 508 markers here (:mod:`slimline.project.constraints`).  Errors are
:class:`~slimline.project.toml.FieldError` with the full key path (``tool.poetry.group.dev...``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion

from slimline.project.constraints import and_markers, poetry_constraint, python_marker
from slimline.project.toml import FieldError, check, each, get, get_list, get_table, within

__all__ = ["MAIN", "DepKind", "Dependency", "Group", "read"]

MAIN = "main"
DepKind = Literal["index", "path", "url", "git"]


@dataclass(frozen=True, slots=True)
class Dependency:
    """A dependency the project itself declares.

    ``specifier``: PEP 440 text ("" = any).  ``marker``: PEP 508 marker text ("" = always);
    Poetry's ``python``/``platform`` keys are folded into it.  ``in_extras``: for optional
    dependencies, the root extras that request it.
    """

    name: str
    extras: tuple[str, ...] = ()
    specifier: str = ""
    marker: str = ""
    optional: bool = False
    in_extras: tuple[str, ...] = ()
    kind: DepKind = "index"


@dataclass(frozen=True, slots=True)
class Group:
    name: str  # canonical; "main" holds the project's own (and optional) dependencies
    optional: bool
    dependencies: tuple[Dependency, ...]
    includes: tuple[str, ...] = ()  # canonical names of included groups


def read(
    project: Mapping[str, Any], poetry: Mapping[str, Any], dep_groups: Mapping[str, Any]
) -> tuple[dict[str, Group], dict[str, tuple[str, ...]]]:
    """The groups (canonical name -> group, always with "main") and the root extras (canonical
    extra -> canonical package names) of the ``[project]``, ``[tool.poetry]`` and
    ``[dependency-groups]`` tables."""
    with within("tool.poetry"):
        poetry_main = _poetry_deps(poetry, "dependencies")
    if project.get("dependencies") is not None or bool(project.get("optional-dependencies")):
        with within("project"):
            main, extras = _pep621(project)
        # [tool.poetry.dependencies] only enriches: its markers narrow same-named entries.
        enrich = {d.name: d for d in poetry_main}
        main = [_enriched(d, enrich.get(d.name)) for d in main]
    else:
        with within("tool.poetry"):
            main, extras = _poetry_main(poetry, poetry_main)

    groups: dict[str, Group] = {MAIN: Group(MAIN, False, tuple(main))}
    with within("tool.poetry"):
        tool_groups = get_table(poetry, "group")
    tool_norm = {canonicalize_name(k): v for k, v in tool_groups.items()}
    for gname, items in dep_groups.items():
        with within("dependency-groups"), within(gname):
            cfg = tool_norm.get(canonicalize_name(gname), {})
            optional = bool(cfg.get("optional", False)) if isinstance(cfg, Mapping) else False
            groups[canonicalize_name(gname)] = _pep735(canonicalize_name(gname), items, optional=optional)
    for gname, cfg in tool_groups.items():
        with within("tool.poetry.group"), within(gname):
            key = canonicalize_name(gname)
            table = check(cfg, dict, want="a table")
            deps = _poetry_deps(table, "dependencies")
            includes = [canonicalize_name(n) for n in get_list(table, "include-groups", str)]
        old = groups.get(key)
        if old is not None and key != MAIN:
            # Poetry: a [dependency-groups] group with entries ignores same-group [tool.poetry] deps.
            groups[key] = Group(
                key, old.optional, old.dependencies or tuple(deps), (*old.includes, *includes)
            )
        else:
            groups[key] = Group(key, bool(table.get("optional", False)), tuple(deps), tuple(includes))
    if "dev-dependencies" in poetry:
        with within("tool.poetry"):
            deps = _poetry_deps(poetry, "dev-dependencies")
        old = groups.get("dev")
        groups["dev"] = Group(
            "dev",
            old.optional if old else False,
            (*(old.dependencies if old else ()), *deps),
            old.includes if old else (),
        )
    _check_includes(groups, dep_groups)
    return groups, extras


def _pep621(project: Mapping[str, Any]) -> tuple[list[Dependency], dict[str, tuple[str, ...]]]:
    """``[project]``'s dependencies and optional dependencies, and its extras."""
    deps = project.get("dependencies") or []
    with within("dependencies"):
        main = list(each(check(deps, list, want="a list of requirement strings"), _pep508))
    extras: dict[str, tuple[str, ...]] = {}
    for extra, reqs in get_table(project, "optional-dependencies").items():
        extra_c = canonicalize_name(extra)
        with within("optional-dependencies"), within(extra):
            items = check(reqs, list, want="a list of requirement strings")
            got = each(items, partial(_pep508, optional=True, in_extras=(extra_c,)))
        extras[extra_c] = tuple(d.name for d in got)
        main.extend(got)
    return main, extras


def _poetry_main(
    poetry: Mapping[str, Any], deps: list[Dependency]
) -> tuple[list[Dependency], dict[str, tuple[str, ...]]]:
    """Classic Poetry: ``deps`` (``[tool.poetry.dependencies]``) with ``[tool.poetry.extras]``."""
    table = get_table(poetry, "extras")
    extras: dict[str, tuple[str, ...]] = {}
    members: dict[str, list[str]] = {}
    for extra in table:
        extra_c = canonicalize_name(extra)
        with within("extras"):
            extras[extra_c] = tuple(canonicalize_name(n) for n in get_list(table, extra, str))
        for n in extras[extra_c]:
            members.setdefault(n, []).append(extra_c)
    main = [
        Dependency(
            d.name,
            d.extras,
            d.specifier,
            d.marker,
            d.optional,
            tuple(members.get(d.name, ())) if d.optional else (),
            d.kind,
        )
        for d in deps
    ]
    return main, extras


def _pep735(name: str, items: Any, *, optional: bool) -> Group:
    """One ``[dependency-groups]`` entry: requirement strings and ``{include-group = "..."}``."""
    deps, includes = [], []
    for i, item in enumerate(check(items, list, want="a list")):
        with within(i):
            if isinstance(item, Mapping) and "include-group" in item:
                includes.append(canonicalize_name(get(item, "include-group", str, default="")))
            else:
                deps.append(_pep508(item))
    return Group(name, optional, tuple(deps), tuple(includes))


def _check_includes(groups: Mapping[str, Group], dep_groups: Mapping[str, Any]) -> None:
    for g in groups.values():
        for inc in g.includes:
            if inc not in groups:
                where = next(
                    (f"dependency-groups.{k}" for k in dep_groups if canonicalize_name(k) == g.name),
                    f"tool.poetry.group.{g.name}",
                )
                raise FieldError(f"group {g.name!r} includes unknown group {inc!r}", field=where)


def _pep508(text: Any, *, optional: bool = False, in_extras: tuple[str, ...] = ()) -> Dependency:
    try:
        req = Requirement(check(text, str, want="a PEP 508 requirement string"))
    except InvalidRequirement as err:
        raise FieldError(f"not a PEP 508 requirement: {err}") from err
    kind: DepKind = "index"
    if req.url:
        kind = "git" if req.url.startswith("git+") else "path" if req.url.startswith("file:") else "url"
    return Dependency(
        name=canonicalize_name(req.name),
        extras=tuple(sorted(canonicalize_name(e) for e in req.extras)),
        specifier=str(req.specifier),
        marker=str(req.marker) if req.marker else "",
        optional=optional,
        in_extras=in_extras,
        kind=kind,
    )


def _poetry_deps(d: Mapping[str, Any], key: str) -> list[Dependency]:
    """The Poetry dependency table ``d[key]`` (``python`` left out): name -> constraint(s)."""
    out: list[Dependency] = []
    table = get_table(d, key)
    for name, value in table.items():
        if name.lower() == "python":
            continue
        with within(key), within(name):
            if isinstance(value, list):
                out.extend(each(value, partial(_poetry_dep, name)))
            else:
                out.append(_poetry_dep(name, value))
    return out


def _poetry_dep(name: str, value: Any) -> Dependency:
    if isinstance(value, str):
        value = {"version": value}
    if not isinstance(value, Mapping):
        raise FieldError("expected a version string or an inline table")
    try:
        spec = poetry_constraint(str(value.get("version", "*")))
        py = poetry_constraint(str(value["python"])) if "python" in value else (SpecifierSet(),)
    except (ValueError, InvalidVersion) as err:
        raise FieldError(str(err)) from err
    platform = str(value.get("platform", ""))
    plat = " or ".join(
        f'sys_platform == "{p.strip()}"' for p in re.split(r"\s*\|\|?\s*", platform) if p.strip()
    )
    kind: DepKind = (
        "git" if "git" in value else "path" if "path" in value else "url" if "url" in value else "index"
    )
    return Dependency(
        name=canonicalize_name(name),
        extras=tuple(sorted(canonicalize_name(e) for e in get_list(value, "extras", str))),
        specifier=str(spec[-1]) if len(spec) == 1 else "",
        marker=and_markers(
            get(value, "markers", str, default=""),
            python_marker(py),
            f"({plat})" if " or " in plat else plat,
        ),
        optional=bool(value.get("optional", False)),
        kind=kind,
    )


def _enriched(dep: Dependency, poetry: Dependency | None) -> Dependency:
    if poetry is None or not poetry.marker:
        return dep
    return Dependency(
        dep.name,
        dep.extras,
        dep.specifier,
        and_markers(dep.marker, poetry.marker),
        dep.optional,
        dep.in_extras,
        dep.kind,
    )
