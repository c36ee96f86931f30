"""The user's project: ``pyproject.toml`` read once into a typed, immutable :class:`Project`.

Both layouts Poetry accepts are understood: PEP 621 ``[project]`` (with ``[tool.poetry]``
enrichments and PEP 735 ``[dependency-groups]``) and the classic ``[tool.poetry]`` tables,
including ``package-mode = false``.  A project that is not a package is copied, not built:
``tool.poetry.package-mode = false``, else ``tool.uv.package = false``, else (uv's rule) a
project uv manages (``uv.lock``, no ``poetry.lock`` or ``[tool.poetry]``) that has no
``[build-system]`` (uv locks it as ``virtual``).
Poetry's version constraints (``^1.2``, ``~1.2``, ``1.*``, ``a || b``) are converted to PEP 440
specifiers and PEP 508 markers while reading (see :mod:`slimline.project.constraints`), so
nothing downstream needs Poetry's syntax; the dependency tables are read by
:mod:`slimline.project.groups`.
:meth:`Project.content_hash` is byte-for-byte Poetry 2.x's ``Locker._get_content_hash``.
:func:`head` reads only what a build needs first (name, version, ``[tool.slimline]``), with the
same checks and errors as :func:`load`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from slimline.project import groups as groups_mod
from slimline.project import toml
from slimline.project.constraints import poetry_constraint, python_marker
from slimline.project.groups import MAIN, Dependency, Group
from slimline.project.toml import FieldError, check_table, get, get_list, get_list_of, get_table, within

__all__ = [
    "MAIN",
    "Dependency",
    "Group",
    "Head",
    "PoetrySource",
    "Project",
    "ProjectError",
    "head",
    "load",
    "poetry_constraint",
    "python_marker",
]


class ProjectError(toml.TomlError):
    """``pyproject.toml`` is missing, not TOML, or has a field of the wrong shape."""

    fix = "fix pyproject.toml (see `poetry check`)"

    @classmethod
    def missing(cls, file: Path) -> Self:
        return cls(
            f"no pyproject.toml here: {file} does not exist",
            file=file,
            doing="reading the project",
            hint="run slimline in a Poetry project directory or pass its path",
        )


@dataclass(frozen=True, slots=True)
class PoetrySource:
    """A ``[[tool.poetry.source]]``; ``priority``: primary, supplemental, explicit (or default, secondary)."""

    name: str
    url: str
    priority: str


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


@dataclass(frozen=True, slots=True)
class Head:
    """What a build needs of pyproject.toml before the rest of it (:func:`head`)."""

    root: Path
    name: str  # project.name, else tool.poetry.name, as written; "" when neither is given
    version: str  # project.version, else tool.poetry.version; "" when neither is given
    package_mode: bool  # tool.poetry.package-mode, else tool.uv.package (see the module's contract)
    slimline: Mapping[str, Any]  # the raw [tool.slimline] table (checked by settings.load)
    data: Mapping[str, Any] = field(repr=False, compare=False)  # the whole parsed pyproject.toml

    @property
    def file(self) -> Path:
        return self.root / "pyproject.toml"


def head(root: Path) -> Head:
    """The name, version and ``[tool.slimline]`` of ``root/pyproject.toml``, the rest unread.

    Raises :class:`ProjectError` as :func:`load` does (which reads these the same way); unlike
    :func:`load` it accepts a project without a name (``name`` is then "").
    """
    file = root / "pyproject.toml"
    data = toml.load(file, error=ProjectError)
    with toml.raising(ProjectError, file):
        project = get_table(data, "project")
        tool = get_table(data, "tool")
        with within("tool"):
            poetry = get_table(tool, "poetry")
            slimline = get_table(tool, "slimline")
            uv = get_table(tool, "uv")
        with within("tool.uv"):
            uv_package = get(uv, "package", bool, default=_package_by_default(root, data))
        with within("tool.poetry"):
            package_mode = get(poetry, "package-mode", bool, default=uv_package)
        name = _either(project, poetry, "name")
        version = _either(project, poetry, "version")
    return Head(root, name, version, package_mode, slimline, data)


def _package_by_default(root: Path, data: Mapping[str, Any]) -> bool:
    """Whether a project that says nothing is a package: always for Poetry (which installs the
    root with its own builder); for a project uv manages (uv.lock, no poetry.lock, no
    ``[tool.poetry]``), only with a ``[build-system]`` (uv locks it ``virtual`` otherwise)."""
    tool = data.get("tool")
    poetry = isinstance(tool, Mapping) and "poetry" in tool
    uv_managed = (root / "uv.lock").is_file() and not (root / "poetry.lock").is_file() and not poetry
    return not uv_managed or "build-system" in data


def load(root: Path) -> Project:
    """Read ``root/pyproject.toml``.  Raises :class:`ProjectError` naming the bad field."""
    h = head(root)
    with toml.raising(ProjectError, h.file):
        return _project(h)


def _project(h: Head) -> Project:
    project = get_table(h.data, "project")
    with within("tool"):
        poetry = get_table(get_table(h.data, "tool"), "poetry")
    name = h.name
    if not name:
        if h.package_mode:
            raise FieldError("the project has no name", field="project.name")
        name = h.root.resolve().name
    python = _python(project, poetry)
    groups, extras = groups_mod.read(project, poetry, get_table(h.data, "dependency-groups"))
    return Project(
        root=h.root,
        name=name,
        version=h.version,
        package_mode=h.package_mode,
        requires_python=python[-1],
        python_alternatives=python,
        description=_either(project, poetry, "description"),
        authors=_authors(project, poetry),
        license=_license(project, poetry),
        urls=_urls(project, poetry),
        scripts=_scripts(project, poetry),
        sources=_sources(poetry),
        groups=groups,
        extras=extras,
        slimline=h.slimline,
        data=h.data,
    )


def _either(project: Mapping[str, Any], poetry: Mapping[str, Any], key: str) -> str:
    """The string ``project.<key>``, else ``tool.poetry.<key>``, else ""."""
    with within("tool.poetry"):
        fallback = get(poetry, key, str, default="")
    with within("project"):
        return get(project, key, str, default=fallback)


def _python(project: Mapping[str, Any], poetry: Mapping[str, Any]) -> tuple[SpecifierSet, ...]:
    """``project.requires-python``, else ``tool.poetry.dependencies.python``, else the main
    group's ``python`` (any alternative)."""
    if "requires-python" in project:
        with within("project.requires-python"):
            text = get(project, "requires-python", str, required=True)
            try:
                return (SpecifierSet(text),)
            except InvalidSpecifier as err:
                raise FieldError(str(err)) from err
    with within("tool.poetry"):
        py_text = get_table(poetry, "dependencies").get("python")
        if py_text is None:  # Poetry takes the main group's `python` too (as the lock records it)
            with within("group"), within("main"):
                main = get_table(get_table(get_table(poetry, "group"), "main"), "dependencies")
            py_text = main.get("python", "*")
    try:
        return poetry_constraint(py_text if isinstance(py_text, str) else "*")
    except (ValueError, InvalidVersion) as err:
        raise FieldError(str(err), field="tool.poetry.dependencies.python") from err


def _authors(project: Mapping[str, Any], poetry: Mapping[str, Any]) -> tuple[str, ...]:
    if "authors" in project:
        with within("project"):
            return get_list_of(project, "authors", _author)
    with within("tool.poetry"):
        return get_list(poetry, "authors", str)


def _author(value: Any) -> str:
    """``{name = ..., email = ...}`` as ``name <email>``."""
    a = check_table(value)
    n, e = get(a, "name", str, default=""), get(a, "email", str, default="")
    return f"{n} <{e}>" if n and e else n or e


def _license(project: Mapping[str, Any], poetry: Mapping[str, Any]) -> str:
    lic = project.get("license")
    if isinstance(lic, Mapping):
        with within("project.license"):
            return get(lic, "text", str, default="") or get(lic, "file", str, default="")
    if lic is not None:
        with within("project"):
            return get(project, "license", str, default="")
    with within("tool.poetry"):
        return get(poetry, "license", str, default="")


_URL_NAMES = ("homepage", "repository", "documentation")  # kept lower-case whatever their spelling


def _urls(project: Mapping[str, Any], poetry: Mapping[str, Any]) -> dict[str, str]:
    out = {}
    with within("tool.poetry"):
        for key in _URL_NAMES:
            if key in poetry:
                out[key] = get(poetry, key, str, default="")
        poetry_urls = get_table(poetry, "urls")
    with within("project"):
        project_urls = get_table(project, "urls")
    for where, table in (("tool.poetry.urls", poetry_urls), ("project.urls", project_urls)):
        with within(where):
            for k in table:
                out[k.lower() if k.lower() in _URL_NAMES else k] = get(table, k, str, default="")
    return out


def _scripts(project: Mapping[str, Any], poetry: Mapping[str, Any]) -> dict[str, str]:
    out = {}
    with within("tool.poetry"):
        table = get_table(poetry, "scripts")
    for name, value in table.items():
        with within("tool.poetry.scripts"), within(name):
            if isinstance(value, str):
                out[name] = value
            elif isinstance(value, Mapping):
                if value.get("type", "console") == "console" and (
                    "reference" in value or "callable" in value
                ):
                    out[name] = get(
                        value, "reference" if "reference" in value else "callable", str, default=""
                    )
            else:
                raise FieldError("expected 'module:attr' or a table")
    with within("project"):
        table = get_table(project, "scripts")
    with within("project.scripts"):
        for name in table:
            out[name] = get(table, name, str, default="")
    return out


def _sources(poetry: Mapping[str, Any]) -> tuple[PoetrySource, ...]:
    """``[[tool.poetry.source]]``; ``priority`` defaults from the old ``default``/``secondary`` flags."""
    with within("tool.poetry"):
        return get_list_of(poetry, "source", _source)


def _source(value: Any) -> PoetrySource:
    s = check_table(value)
    prio = get(s, "priority", str, default="")
    if not prio:
        prio = "default" if s.get("default") else "secondary" if s.get("secondary") else "primary"
    return PoetrySource(get(s, "name", str, default=""), get(s, "url", str, default=""), prio.lower())
