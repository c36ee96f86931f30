"""The user's project: ``pyproject.toml`` read once into a typed, immutable :class:`Project`.

Both layouts Poetry accepts are understood: PEP 621 ``[project]`` (with ``[tool.poetry]``
enrichments and PEP 735 ``[dependency-groups]``) and the classic ``[tool.poetry]`` tables,
including ``package-mode = false``.  Poetry's version constraints (``^1.2``, ``~1.2``, ``1.*``,
``a || b``) are converted to PEP 440 specifiers and PEP 508 markers while reading (see
:mod:`slimline.project.constraints`), so nothing downstream needs Poetry's syntax.
:meth:`Project.content_hash` is byte-for-byte Poetry 2.x's ``Locker._get_content_hash``.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from slimline.errors import SlimlineError
from slimline.project.constraints import and_markers, poetry_constraint, python_marker

__all__ = [
    "MAIN",
    "Dependency",
    "Group",
    "PoetrySource",
    "Project",
    "ProjectError",
    "load",
    "poetry_constraint",
    "python_marker",
]

MAIN = "main"
DepKind = Literal["index", "path", "url", "git"]


class ProjectError(SlimlineError):
    """``pyproject.toml`` is missing, not TOML, or has a field of the wrong shape."""

    def __init__(self, problem: str, *, file: Path, field: str = "", hint: str = "") -> None:
        where = f"{file}" + (f" [{field}]" if field else "")
        super().__init__(
            problem, doing=f"reading {where}", hint=hint or "fix pyproject.toml (see `poetry check`)"
        )
        self.file = file
        self.field = field


@dataclass(frozen=True, slots=True)
class PoetrySource:
    """A ``[[tool.poetry.source]]``; ``priority``: primary, supplemental, explicit (or default, secondary)."""

    name: str
    url: str
    priority: str


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


@dataclass(frozen=True, slots=True)
class Project:
    root: Path
    name: str  # as written ("" never: falls back to the directory name)
    version: str  # "" when not given (package-mode = false)
    package_mode: bool
    requires_python: SpecifierSet  # for a Poetry union (``a || b``): the last alternative
    python_alternatives: tuple[SpecifierSet, ...]  # the full constraint: any alternative
    description: str
    authors: tuple[str, ...]
    license: str
    urls: Mapping[str, str]
    scripts: Mapping[str, str]  # console scripts: name -> "module:attr"
    sources: tuple[PoetrySource, ...]
    groups: Mapping[str, Group]  # canonical name -> group; always has "main"
    extras: Mapping[str, tuple[str, ...]]  # canonical extra -> canonical package names
    slimline: Mapping[str, Any]  # the raw [tool.slimline] table
    data: Mapping[str, Any] = field(repr=False, compare=False)  # the whole parsed pyproject.toml

    @property
    def homepage(self) -> str:
        return self.urls.get("homepage", "")

    @property
    def repository(self) -> str:
        return self.urls.get("repository", "")

    def allows_python(self, version: str) -> bool:
        v = Version(version)
        return any(spec.contains(v, prereleases=True) for spec in self.python_alternatives)

    def content_hash(self, *, with_dependency_groups: bool = True) -> str:
        """Poetry 2.x's ``content-hash`` of this pyproject.toml (``with_dependency_groups=False``
        gives the hash Poetry < 2.3 wrote)."""
        project = self.data.get("project", {})
        groups = self.data.get("dependency-groups", {}) if with_dependency_groups else {}
        poetry = self.data.get("tool", {}).get("poetry", {})
        legacy = ("dependencies", "source", "extras", "dev-dependencies")
        rel_project = {
            k: project[k]
            for k in ("requires-python", "dependencies", "optional-dependencies")
            if project.get(k) is not None
        }
        rel_poetry: dict[str, Any] = {}
        for key in (*legacy, "group"):
            value = poetry.get(key)
            if value is None and (key not in legacy or rel_project or groups):
                continue
            rel_poetry[key] = value
        relevant: dict[str, Any] = {}
        if rel_project:
            relevant["project"] = rel_project
        if groups:
            relevant["dependency-groups"] = groups
        if relevant:
            relevant["tool"] = {"poetry": rel_poetry}
        else:
            relevant = rel_poetry
        return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()


# --- reading ------------------------------------------------------------------------------------


class _Reader:
    def __init__(self, file: Path) -> None:
        self.file = file

    def fail(self, field: str, problem: str) -> ProjectError:
        return ProjectError(problem, file=self.file, field=field)

    def table(self, d: Mapping[str, Any], key: str, path: str) -> Mapping[str, Any]:
        value = d.get(key, {})
        if not isinstance(value, Mapping):
            raise self.fail(path, f"expected a table, got {type(value).__name__}")
        return value

    def str_(self, d: Mapping[str, Any], key: str, path: str, default: str = "") -> str:
        value = d.get(key, default)
        if not isinstance(value, str):
            raise self.fail(path, f"expected a string, got {type(value).__name__}")
        return value

    def strs(self, value: Any, path: str) -> tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(path, "expected a list of strings")
        return tuple(value)

    def pep508(self, text: Any, path: str, **extra: Any) -> Dependency:
        if not isinstance(text, str):
            raise self.fail(path, "expected a PEP 508 requirement string")
        try:
            req = Requirement(text)
        except InvalidRequirement as err:
            raise self.fail(path, f"not a PEP 508 requirement: {err}") from err
        kind: DepKind = "index"
        if req.url:
            kind = "git" if req.url.startswith("git+") else "path" if req.url.startswith("file:") else "url"
        return Dependency(
            name=canonicalize_name(req.name),
            extras=tuple(sorted(canonicalize_name(e) for e in req.extras)),
            specifier=str(req.specifier),
            marker=str(req.marker) if req.marker else "",
            kind=kind,
            **extra,
        )

    def poetry_deps(self, table: Mapping[str, Any], path: str) -> list[Dependency]:
        out = []
        for name, value in table.items():
            if name.lower() == "python":
                continue
            items = value if isinstance(value, list) else [value]
            for i, item in enumerate(items):
                p = f"{path}.{name}" + (f"[{i}]" if isinstance(value, list) else "")
                out.append(self.poetry_dep(name, item, p))
        return out

    def poetry_dep(self, name: str, value: Any, path: str) -> Dependency:
        if isinstance(value, str):
            value = {"version": value}
        if not isinstance(value, Mapping):
            raise self.fail(path, "expected a version string or an inline table")
        try:
            spec = poetry_constraint(str(value.get("version", "*")))
            py = poetry_constraint(str(value["python"])) if "python" in value else (SpecifierSet(),)
        except (ValueError, InvalidVersion) as err:
            raise self.fail(path, str(err)) from err
        platform = str(value.get("platform", ""))
        plat = " or ".join(
            f'sys_platform == "{p.strip()}"' for p in re.split(r"\s*\|\|?\s*", platform) if p.strip()
        )
        kind: DepKind = (
            "git" if "git" in value else "path" if "path" in value else "url" if "url" in value else "index"
        )
        extras = value.get("extras", [])
        return Dependency(
            name=canonicalize_name(name),
            extras=tuple(sorted(canonicalize_name(e) for e in self.strs(extras, f"{path}.extras"))),
            specifier=str(spec[-1]) if len(spec) == 1 else "",
            marker=and_markers(
                self.str_(value, "markers", f"{path}.markers"),
                python_marker(py),
                f"({plat})" if " or " in plat else plat,
            ),
            optional=bool(value.get("optional", False)),
            kind=kind,
        )


def load(root: Path) -> Project:
    """Read ``root/pyproject.toml``.  Raises :class:`ProjectError` naming the bad field."""
    file = root / "pyproject.toml"
    try:
        with file.open("rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError as err:
        raise ProjectError(
            "no pyproject.toml here", file=file, hint="run slimline in a Poetry project"
        ) from err
    except tomllib.TOMLDecodeError as err:
        raise ProjectError(f"not valid TOML: {err}", file=file) from err
    r = _Reader(file)
    project = r.table(data, "project", "project")
    tool = r.table(data, "tool", "tool")
    poetry = r.table(tool, "poetry", "tool.poetry")
    package_mode = poetry.get("package-mode", True)
    if not isinstance(package_mode, bool):
        raise r.fail("tool.poetry.package-mode", "expected true or false")
    name = r.str_(project, "name", "project.name", r.str_(poetry, "name", "tool.poetry.name"))
    if not name:
        if package_mode:
            raise r.fail(
                "project.name",
                "the project has no name",
            )
        name = root.resolve().name
    version = r.str_(project, "version", "project.version", r.str_(poetry, "version", "tool.poetry.version"))

    py_text = project.get("requires-python")
    python: tuple[SpecifierSet, ...]
    try:
        if py_text is not None:
            python = (SpecifierSet(r.str_(project, "requires-python", "project.requires-python")),)
        else:
            poetry_deps_tab = r.table(poetry, "dependencies", "tool.poetry.dependencies")
            py_text = poetry_deps_tab.get("python", "*")
            python = poetry_constraint(py_text if isinstance(py_text, str) else "*")
    except (ValueError, InvalidSpecifier, InvalidVersion) as err:
        raise r.fail(
            "project.requires-python" if "requires-python" in project else "tool.poetry.dependencies.python",
            str(err),
        ) from err

    groups, extras = _groups(r, project, poetry, r.table(data, "dependency-groups", "dependency-groups"))
    return Project(
        root=root,
        name=name,
        version=version,
        package_mode=package_mode,
        requires_python=python[-1],
        python_alternatives=python,
        description=r.str_(
            project,
            "description",
            "project.description",
            r.str_(poetry, "description", "tool.poetry.description"),
        ),
        authors=_authors(r, project, poetry),
        license=_license(r, project, poetry),
        urls=_urls(r, project, poetry),
        scripts=_scripts(r, project, poetry),
        sources=_sources(r, poetry),
        groups=groups,
        extras=extras,
        slimline=r.table(tool, "slimline", "tool.slimline"),
        data=data,
    )


def _groups(
    r: _Reader, project: Mapping[str, Any], poetry: Mapping[str, Any], dep_groups: Mapping[str, Any]
) -> tuple[dict[str, Group], dict[str, tuple[str, ...]]]:
    main: list[Dependency] = []
    extras: dict[str, tuple[str, ...]] = {}
    pep621 = project.get("dependencies") is not None or bool(project.get("optional-dependencies"))
    poetry_main = r.poetry_deps(
        r.table(poetry, "dependencies", "tool.poetry.dependencies"), "tool.poetry.dependencies"
    )
    if pep621:
        deps = project.get("dependencies") or []
        if not isinstance(deps, list):
            raise r.fail("project.dependencies", "expected a list of requirement strings")
        main = [r.pep508(d, f"project.dependencies[{i}]") for i, d in enumerate(deps)]
        for extra, reqs in r.table(project, "optional-dependencies", "project.optional-dependencies").items():
            if not isinstance(reqs, list):
                raise r.fail(
                    f"project.optional-dependencies.{extra}", "expected a list of requirement strings"
                )
            extra_c = canonicalize_name(extra)
            got = [
                r.pep508(
                    d, f"project.optional-dependencies.{extra}[{i}]", optional=True, in_extras=(extra_c,)
                )
                for i, d in enumerate(reqs)
            ]
            extras[extra_c] = tuple(d.name for d in got)
            main.extend(got)
        # [tool.poetry.dependencies] only enriches: its markers narrow same-named entries.
        enrich = {d.name: d for d in poetry_main}
        main = [_enriched(d, enrich.get(d.name)) for d in main]
    else:
        table = r.table(poetry, "extras", "tool.poetry.extras")
        members: dict[str, list[str]] = {}
        for extra, names in table.items():
            extra_c = canonicalize_name(extra)
            extras[extra_c] = tuple(
                canonicalize_name(n) for n in r.strs(names, f"tool.poetry.extras.{extra}")
            )
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
            for d in poetry_main
        ]

    groups: dict[str, Group] = {MAIN: Group(MAIN, False, tuple(main))}
    tool_groups = r.table(poetry, "group", "tool.poetry.group")
    tool_norm = {canonicalize_name(k): v for k, v in tool_groups.items()}
    for gname, items in dep_groups.items():
        path = f"dependency-groups.{gname}"
        if not isinstance(items, list):
            raise r.fail(path, "expected a list")
        deps, includes = [], []
        for i, item in enumerate(items):
            if isinstance(item, Mapping) and "include-group" in item:
                includes.append(
                    canonicalize_name(r.str_(item, "include-group", f"{path}[{i}].include-group"))
                )
            else:
                deps.append(r.pep508(item, f"{path}[{i}]"))
        cfg = tool_norm.get(canonicalize_name(gname), {})
        groups[canonicalize_name(gname)] = Group(
            canonicalize_name(gname), bool(cfg.get("optional", False)), tuple(deps), tuple(includes)
        )
    for gname, cfg in tool_groups.items():
        path = f"tool.poetry.group.{gname}"
        if not isinstance(cfg, Mapping):
            raise r.fail(path, "expected a table")
        key = canonicalize_name(gname)
        deps = r.poetry_deps(r.table(cfg, "dependencies", f"{path}.dependencies"), f"{path}.dependencies")
        includes = [
            canonicalize_name(n) for n in r.strs(cfg.get("include-groups", []), f"{path}.include-groups")
        ]
        old = groups.get(key)
        if old is not None and key != MAIN:
            # Poetry: a [dependency-groups] group with entries ignores same-group [tool.poetry] deps.
            groups[key] = Group(
                key, old.optional, old.dependencies or tuple(deps), (*old.includes, *includes)
            )
        else:
            groups[key] = Group(key, bool(cfg.get("optional", False)), tuple(deps), tuple(includes))
    if "dev-dependencies" in poetry:
        deps = r.poetry_deps(
            r.table(poetry, "dev-dependencies", "tool.poetry.dev-dependencies"),
            "tool.poetry.dev-dependencies",
        )
        old = groups.get("dev")
        groups["dev"] = Group(
            "dev",
            old.optional if old else False,
            (*(old.dependencies if old else ()), *deps),
            old.includes if old else (),
        )
    for g in groups.values():
        for inc in g.includes:
            if inc not in groups:
                where = next(
                    (f"dependency-groups.{k}" for k in dep_groups if canonicalize_name(k) == g.name),
                    f"tool.poetry.group.{g.name}",
                )
                raise r.fail(where, f"group {g.name!r} includes unknown group {inc!r}")
    return groups, extras


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


def _authors(r: _Reader, project: Mapping[str, Any], poetry: Mapping[str, Any]) -> tuple[str, ...]:
    if "authors" in project:
        out = []
        items = project["authors"]
        if not isinstance(items, list):
            raise r.fail("project.authors", "expected a list of tables")
        for i, a in enumerate(items):
            if not isinstance(a, Mapping):
                raise r.fail(f"project.authors[{i}]", "expected a table with name and/or email")
            n, e = (
                r.str_(a, "name", f"project.authors[{i}].name"),
                r.str_(a, "email", f"project.authors[{i}].email"),
            )
            out.append(f"{n} <{e}>" if n and e else n or e)
        return tuple(out)
    return r.strs(poetry.get("authors", []), "tool.poetry.authors")


def _license(r: _Reader, project: Mapping[str, Any], poetry: Mapping[str, Any]) -> str:
    lic = project.get("license")
    if isinstance(lic, Mapping):
        return r.str_(lic, "text", "project.license.text") or r.str_(lic, "file", "project.license.file")
    if lic is not None:
        return r.str_(project, "license", "project.license")
    return r.str_(poetry, "license", "tool.poetry.license")


def _urls(r: _Reader, project: Mapping[str, Any], poetry: Mapping[str, Any]) -> dict[str, str]:
    out = {}
    for key in ("homepage", "repository", "documentation"):
        if key in poetry:
            out[key] = r.str_(poetry, key, f"tool.poetry.{key}")
    for path, table in (
        ("tool.poetry.urls", r.table(poetry, "urls", "tool.poetry.urls")),
        ("project.urls", r.table(project, "urls", "project.urls")),
    ):
        for k in table:
            out[k.lower() if k.lower() in ("homepage", "repository", "documentation") else k] = r.str_(
                table, k, f"{path}.{k}"
            )
    return out


def _scripts(r: _Reader, project: Mapping[str, Any], poetry: Mapping[str, Any]) -> dict[str, str]:
    out = {}
    for name, value in r.table(poetry, "scripts", "tool.poetry.scripts").items():
        path = f"tool.poetry.scripts.{name}"
        if isinstance(value, str):
            out[name] = value
        elif isinstance(value, Mapping):
            if value.get("type", "console") == "console" and ("reference" in value or "callable" in value):
                out[name] = r.str_(value, "reference" if "reference" in value else "callable", path)
        else:
            raise r.fail(path, "expected 'module:attr' or a table")
    for name in r.table(project, "scripts", "project.scripts"):
        out[name] = r.str_(project["scripts"], name, f"project.scripts.{name}")
    return out


def _sources(r: _Reader, poetry: Mapping[str, Any]) -> tuple[PoetrySource, ...]:
    items = poetry.get("source", [])
    if not isinstance(items, list):
        raise r.fail("tool.poetry.source", "expected an array of tables ([[tool.poetry.source]])")
    out = []
    for i, s in enumerate(items):
        path = f"tool.poetry.source[{i}]"
        if not isinstance(s, Mapping):
            raise r.fail(path, "expected a table")
        prio = r.str_(s, "priority", f"{path}.priority", "")
        if not prio:
            prio = "default" if s.get("default") else "secondary" if s.get("secondary") else "primary"
        out.append(
            PoetrySource(r.str_(s, "name", f"{path}.name"), r.str_(s, "url", f"{path}.url"), prio.lower())
        )
    return tuple(out)
