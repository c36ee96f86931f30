"""slimline's own settings: ``[tool.slimline]`` in pyproject.toml, overridden by the command line.

:func:`load` checks every key and value once and returns a frozen :class:`Settings`.  Keys are
kebab-case as in TOML (``all-extras``); overrides may use ``_`` or ``-`` and a nested key as
``debian.mirror`` (or ``debian`` with a table).  An unknown key is an error naming the key and
the closest known one; a wrong type is an error naming ``tool.slimline.<key>`` (or the option).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, cast

from packaging.utils import canonicalize_name

from slimline.errors import ExitStatus, SlimlineError
from slimline.oci.image import Platform
from slimline.project.toml import FieldError, check, check_list, check_table, within
from slimline.target import machine_of

__all__ = ["DebianSettings", "Settings", "SettingsError", "load"]

CompressionName = Literal["gzip", "zstd", "none"]


class SettingsError(SlimlineError):
    """A ``[tool.slimline]`` key or command-line option that is unknown or has a bad value."""

    exit_status = ExitStatus.INPUT

    def __init__(self, problem: str, *, key: str, hint: str = "") -> None:
        super().__init__(problem, doing=f"reading {key}", hint=hint)
        self.key = key


@dataclass(frozen=True, slots=True)
class DebianSettings:
    """``[tool.slimline.debian]``.

    ``strip_stdlib`` (default True) leaves out the standard-library parts a server never
    imports (ensurepip, idlelib, tkinter, turtledemo, test suites; see
    :mod:`slimline.base.debian.policy`).  ``keep_gconv`` keeps glibc's iconv modules (8 MB; off by default).
    ``check_valid_until`` refuses an expired Release (turn off only for snapshot mirrors).
    ``build_packages`` are added to the builder that compiles packages for the target (their
    ``-dev`` headers: ``libpq-dev``), never to the image; ``build_network`` lets those builds
    reach the network.  ``runtime`` is False for the builder itself: nothing is left out of it
    for being a runtime image's dead weight (shells, compilers' helpers, perl).
    """

    mirror: str | None = None  # None = from SLIMLINE_DEBIAN_MIRROR, else the host's apt sources
    security_mirror: str | None = None  # None = from env / host apt sources; "" = do not use
    packages: tuple[str, ...] = ()  # extra packages
    exclude: tuple[str, ...] = ()  # extra excludes
    strip_stdlib: bool = True
    keyring: Path | None = None  # None = the shipped Debian archive keys
    keep_gconv: bool = False
    check_valid_until: bool = True
    build_packages: tuple[str, ...] = ()
    build_network: bool = False
    runtime: bool = True  # not a setting: False for the builder (see slimline.base.builder)

    def for_image(self) -> DebianSettings:
        """These settings without what only the builder uses (so a base's pin ignores them)."""
        return replace(self, build_packages=(), build_network=False)


@dataclass(frozen=True, slots=True)
class Settings:
    base: str | None = None
    platforms: tuple[str, ...] = ("linux/amd64",)  # normalised by Platform.parse, e.g. "linux/arm64/v8"
    venv: str = "/app/.venv"
    workdir: str = "/app"
    entrypoint: tuple[str, ...] | None = None
    cmd: tuple[str, ...] | None = None
    user: str | None = None  # None: the base's non-root user
    env: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    ports: tuple[str, ...] = ()  # "8000/tcp"
    with_groups: tuple[str, ...] = ()  # canonical group names
    without_groups: tuple[str, ...] = ()
    only_groups: tuple[str, ...] = ()
    extras: tuple[str, ...] = ()  # canonical extra names
    all_extras: bool = False
    include: tuple[str, ...] = ()  # glob patterns (package-mode = false)
    exclude: tuple[str, ...] = ()
    compression: CompressionName = "gzip"
    compression_level: int | None = None  # None: the compressor's default for layers
    index_url: str | None = None
    tag: str | None = None  # "name:tag" for outputs
    bytecode: bool = False
    # a debian: base's standard library compiled ahead of time, in a layer above the base (fast start)
    stdlib_bytecode: bool = True
    # packages (canonical names, or ":all:") that may be built from source on a named base that
    # has no wheel for them though another known Debian suite has (see slimline.plan.fit)
    build_from_source: tuple[str, ...] = ()
    unverified: tuple[str, ...] = ()  # canonical names: url/file dependencies allowed without a lock hash
    plain_http: tuple[str, ...] = ()  # canonical names: url dependencies allowed over http://
    # the lock file: a file name in the project directory ([tool.slimline] lock), or an absolute
    # path (--lock); None: the one lock file the project has (slimline.project.locks.find)
    lock: str | None = None
    sbom: bool = True  # attach an SBOM and provenance to every image (slimline.attest)
    sbom_formats: tuple[str, ...] = ("cyclonedx",)  # "cyclonedx" and/or "spdx"
    builder_id: str | None = None  # provenance's builder id (None: SLIMLINE_BUILDER_ID, else local)
    writable: tuple[str, ...] = ()  # directories made in the project layer, owned by the image's user
    debug: bool = False  # also write IMAGE-debug: the image plus busybox (slimline.build.debug)
    slim: bool = False  # leave out of dependency layers what a running app does not read (trees.slim)
    slim_keep: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # canonical name -> patterns
    debian: DebianSettings = field(default_factory=DebianSettings)  # [tool.slimline.debian]
    # a registry repository holding a build cache shared by many machines (slimline.build.sharing)
    cache_repo: str | None = None
    cache_repo_readonly: bool = False  # read it, never write it (untrusted jobs)


# --- value checkers: value -> typed value, or FieldError (keyed by _apply) ---------------------

Check = Callable[[Any], Any]


def _bad(want: str, value: Any) -> FieldError:
    return FieldError(f"expected {want}, got {value!r}")


def _opt_str(value: Any) -> str | None:
    return None if value is None else check(value, str)


def _opt_path(value: Any) -> Path | None:
    return None if value is None else Path(check(value, str))


def _bool(value: Any) -> bool:
    return check(value, bool)


def _strs(value: Any) -> tuple[str, ...]:
    return check_list(value, str)


def _opt_strs(value: Any) -> tuple[str, ...] | None:
    return None if value is None else _strs(value)


def _names(value: Any) -> tuple[str, ...]:
    """Group or extra names: a list (or one string), each may hold several separated by , or spaces."""
    items = [value] if isinstance(value, str) else _strs(value)
    return tuple(
        dict.fromkeys(canonicalize_name(n) for item in items for n in re.split(r"[,\s]+", item) if n)
    )


def _packages(value: Any) -> tuple[str, ...]:
    """Distribution names (canonical), or ``":all:"``."""
    out = []
    for name in _strs(value):
        if name != ":all:" and not re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?", name):
            raise _bad('package names or ":all:"', name)
        out.append(name if name == ":all:" else canonicalize_name(name))
    return tuple(dict.fromkeys(out))


def _table(value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise _bad("a table of strings", value)
    return dict(value)


def _abs_path(value: Any) -> str:
    text = check(value, str)
    if not text.startswith("/") or "\0" in text:
        raise _bad("an absolute path inside the image", value)
    return text.rstrip("/") or "/"


def _lock(value: Any) -> str | None:
    """A lock file name beside pyproject.toml; the command line passes an absolute Path."""
    if value is None or (isinstance(value, Path) and value.is_absolute()):
        return None if value is None else str(value)
    text = check(value, str)
    if not text or Path(text).name != text or text in (".", ".."):
        raise _bad("a lock file name in the project directory (use --lock for another path)", value)
    return text


# where no writable directory may be: the system's own files, and links on Debian (/var/run)
_SYSTEM_DIRS = (
    "/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/proc", "/run",
    "/sbin", "/sys", "/usr", "/var/lib/dpkg", "/var/lock", "/var/run",
)  # fmt: skip


def _writable(value: Any) -> tuple[str, ...]:
    """Absolute, normalised directory paths (no ``.``, ``..`` or empty parts), none of them
    ``/``, ``/tmp`` (already writable by everyone) or in a system directory."""
    out = []
    for text in _strs(value):
        parts = text.split("/")[1:]
        if not text.startswith("/") or "\0" in text or any(p in ("", ".", "..") for p in parts):
            raise _bad("absolute directory paths without '.', '..' or '//' (such as /app/data)", text)
        system = next((d for d in _SYSTEM_DIRS if text == d or text.startswith(d + "/")), None)
        if system is not None or text == "/tmp":
            raise FieldError(
                f"{text} cannot be made writable: "
                + (
                    f"{system} holds the system's own files"
                    if system
                    else "it is writable by everyone already"
                ),
                hint="use a directory of the app's own, such as /app/data or /var/cache/APP",
            )
        out.append(text)
    return tuple(dict.fromkeys(out))


def _slim_keep(value: Any) -> dict[str, tuple[str, ...]]:
    """``{numpy = ["numpy/testing/**"]}``: per distribution (canonical name), patterns of paths
    relative to site-packages that slim mode keeps."""
    if not isinstance(value, Mapping):
        raise _bad(
            'a table of package names to lists of patterns, e.g. {numpy = ["numpy/testing/**"]}', value
        )
    out: dict[str, tuple[str, ...]] = {}
    for name, patterns in value.items():
        with within(str(name)):
            names = _packages([name])
            if names == (":all:",):
                raise _bad("a package name", name)
            out[names[0]] = _strs(patterns)
    return dict(sorted(out.items()))


def _platforms(value: Any) -> tuple[str, ...]:
    raw = [value] if isinstance(value, str) else _strs(value)
    items = [t for item in raw for t in re.split(r"[,\s]+", item) if t]  # "linux/amd64,linux/arm64"
    if not items:
        raise _bad("at least one platform", value)
    out = []
    for text in items:
        try:
            p = Platform.parse(text)
            machine_of(p)
        except ValueError as err:
            raise FieldError(str(err), hint="use e.g. linux/amd64 or linux/arm64") from err
        if p.os != "linux":
            raise _bad("a linux platform", text)
        out.append(str(p))
    return tuple(dict.fromkeys(out))


def _ports(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list | tuple):
        raise _bad('a list of ports (8000 or "8000/tcp")', value)
    out = []
    for p in value:
        text = str(p) if isinstance(p, int) and not isinstance(p, bool) else p
        m = re.fullmatch(r"(\d{1,5})(?:/(tcp|udp|sctp))?", text) if isinstance(text, str) else None
        if not m or not 0 < int(m.group(1)) < 65536:
            raise _bad('a port number or "PORT/tcp|udp|sctp"', p)
        out.append(f"{int(m.group(1))}/{m.group(2) or 'tcp'}")
    return tuple(dict.fromkeys(out))


def _compression(value: Any) -> str:
    if value not in ("gzip", "zstd", "none"):
        raise _bad('"gzip" or "zstd"', value)
    return cast(str, value)


def _level(value: Any) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 22:
        raise _bad("an integer level (gzip 1-9, zstd 1-22)", value)
    return value


def _sbom_formats(value: Any) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else _strs(value)
    if not items or any(f not in ("cyclonedx", "spdx") for f in items):
        raise _bad('a list of "cyclonedx" and "spdx"', value)
    return tuple(dict.fromkeys(items))


_DEBIAN: dict[str, tuple[str, Check]] = {
    "mirror": ("mirror", _opt_str),
    "security-mirror": ("security_mirror", _opt_str),
    "packages": ("packages", _strs),
    "exclude": ("exclude", _strs),
    "strip-stdlib": ("strip_stdlib", _bool),
    "keyring": ("keyring", _opt_path),
    "keep-gconv": ("keep_gconv", _bool),
    "check-valid-until": ("check_valid_until", _bool),
    "build-packages": ("build_packages", _strs),
    "build-network": ("build_network", _bool),
}

_KEYS: dict[str, tuple[str, Check]] = {
    "base": ("base", _opt_str),
    "platforms": ("platforms", _platforms),
    "venv": ("venv", _abs_path),
    "workdir": ("workdir", _abs_path),
    "entrypoint": ("entrypoint", _opt_strs),
    "cmd": ("cmd", _opt_strs),
    "user": ("user", _opt_str),
    "env": ("env", _table),
    "labels": ("labels", _table),
    "ports": ("ports", _ports),
    "with": ("with_groups", _names),
    "without": ("without_groups", _names),
    "only": ("only_groups", _names),
    "extras": ("extras", _names),
    "all-extras": ("all_extras", _bool),
    "include": ("include", _strs),
    "exclude": ("exclude", _strs),
    "compression": ("compression", _compression),
    "compression-level": ("compression_level", _level),
    "index-url": ("index_url", _opt_str),
    "tag": ("tag", _opt_str),
    "bytecode": ("bytecode", _bool),
    "stdlib-bytecode": ("stdlib_bytecode", _bool),
    "build-from-source": ("build_from_source", _packages),
    "unverified": ("unverified", _names),
    "plain-http": ("plain_http", _names),
    "lock": ("lock", _lock),
    "sbom": ("sbom", _bool),
    "sbom-format": ("sbom_formats", _sbom_formats),
    "builder-id": ("builder_id", _opt_str),
    "writable": ("writable", _writable),
    "debug": ("debug", _bool),
    "slim": ("slim", _bool),
    "slim-keep": ("slim_keep", _slim_keep),
    "cache-repo": ("cache_repo", _opt_str),
    "cache-repo-readonly": ("cache_repo_readonly", _bool),
}


def _unknown(key: str, known: Mapping[str, object], where: str) -> SettingsError:
    close = difflib.get_close_matches(key.rsplit(".", 1)[-1], list(known), n=1)
    hint = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(sorted(known))}"
    return SettingsError(f"unknown key {key!r}", key=where, hint=hint)


_ADDED_TO = {"env": "env", "labels": "label"}  # setting -> its command-line option (KEY=VALUE)


def _apply(
    values: dict[str, Any],
    source: Mapping[str, Any],
    known: Mapping[str, tuple[str, Check]],
    where: Callable[[str], str],
) -> None:
    for raw, value in source.items():
        key = raw.replace("_", "-")
        if key not in known:
            raise _unknown(raw, known, where(raw))
        attr, convert = known[key]
        with within(where(raw)):
            values[attr] = convert(value)


def load(table: Mapping[str, Any], *, overrides: Mapping[str, object] | None = None) -> Settings:
    """``[tool.slimline]`` (as parsed) with command-line ``overrides`` on top (None values are ignored)."""
    try:
        return _load(table, overrides or {})
    except FieldError as err:
        raise SettingsError(err.problem, key=err.field, hint=err.hint) from err


def _load(table: Mapping[str, Any], overrides: Mapping[str, object]) -> Settings:
    top: dict[str, Any] = {}
    deb: dict[str, Any] = {}
    tab = dict(table)
    with within("tool.slimline.debian"):
        debian_tab = check_table(tab.pop("debian", {}))
    _apply(top, tab, _KEYS, lambda k: f"tool.slimline.{k}")
    _apply(deb, debian_tab, _DEBIAN, lambda k: f"tool.slimline.debian.{k}")
    for raw, value in overrides.items():
        if value is None:
            continue
        key = raw.replace("_", "-")
        if key in _ADDED_TO and isinstance(value, Mapping):
            # tables: the command line's entries add to the setting's, and win over the same key
            attr, convert = _KEYS[key]
            with within(f"--{_ADDED_TO[key]}"):
                top[attr] = {**top.get(attr, {}), **convert(value)}
        elif key == "debian":
            with within("--debian"):
                debian_value = check_table(value)
            _apply(deb, debian_value, _DEBIAN, lambda k: f"--debian-{k}")
        elif key.startswith("debian."):
            _apply(deb, {key.removeprefix("debian."): value}, _DEBIAN, lambda k: f"--debian-{k}")
        else:
            _apply(top, {key: value}, _KEYS, lambda k: f"--{k.replace('_', '-')}")
    settings = Settings(**top, debian=DebianSettings(**deb))
    _check_writable(settings)
    return settings


def _check_writable(settings: Settings) -> None:
    """No writable directory inside the venv: its files are the dependencies' own."""
    venv = settings.venv
    for path in settings.writable:
        if path == venv or path.startswith(venv.rstrip("/") + "/") or venv.startswith(path + "/"):
            raise SettingsError(
                f"{path} cannot be made writable: it is or holds the virtual environment {venv}",
                key="tool.slimline.writable",
                hint="use a directory outside the venv, such as /app/data",
            )
