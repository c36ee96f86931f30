"""Where packages come from: the default index URL and the credentials for a source.

Nothing here hard-codes a registry host.  The default index is found the way the user already
configured it for their tools:

1. the slimline setting (``[tool.slimline] index-url``), passed in as ``setting``;
2. ``SLIMLINE_INDEX_URL``;
3. ``PIP_INDEX_URL``, then uv's ``UV_DEFAULT_INDEX`` / ``UV_INDEX_URL``;
4. ``index-url`` in pip's configuration files (same files and precedence as pip: global, user,
   site, then ``PIP_CONFIG_FILE``; within a file ``[install]`` over ``[download]`` over ``[global]``);
5. pip's own built-in default (``pip._internal.models.index.PyPI.simple_url``), from the pip
   importable here or, failing that, from a ``python3``/``python`` on ``PATH`` that has pip.

Credentials are looked up the way Poetry does it (see :func:`credentials_for`), after those a
caller handed over in memory (:class:`~slimline.context.SourceAuth`: the Poetry plugin passes
Poetry's own).  They are returned as :class:`~slimline.http.BasicAuth` values and are never
logged or put in messages.
"""

from __future__ import annotations

import configparser
import netrc
import os
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

import platformdirs

from slimline.context import SourceAuth
from slimline.errors import ExitStatus, SlimlineError
from slimline.http import BasicAuth, strip_userinfo

__all__ = ["NoIndexConfigured", "credentials_for", "default_index_url", "pip_config_files"]

_ENV_INDEX = ("SLIMLINE_INDEX_URL", "PIP_INDEX_URL", "UV_DEFAULT_INDEX", "UV_INDEX_URL")
_PIP_SECTIONS = ("global", "download", "install")  # later sections win
_PIP_DEFAULT_SNIPPET = "from pip._internal.models.index import PyPI; print(PyPI.simple_url)"


class NoIndexConfigured(SlimlineError):
    exit_status = ExitStatus.INPUT

    def __init__(self) -> None:
        super().__init__(
            "no package index is configured and pip's built-in default could not be found",
            doing="finding the default package index",
            hint='set one: `[tool.slimline] index-url = "..."` in pyproject.toml, or the environment '
            "variable SLIMLINE_INDEX_URL (or PIP_INDEX_URL), or `index-url` in pip.conf "
            "(`pip config set global.index-url URL`); or install pip next to slimline",
        )


class BadCredentialsFile(SlimlineError):
    exit_status = ExitStatus.INPUT

    def __init__(self, *, path: Path, problem: str) -> None:
        super().__init__(
            problem,
            doing=f"reading credentials from {path}",
            hint="fix the file, or point NETRC / POETRY_CONFIG_DIR elsewhere",
        )
        self.path = path


def default_index_url(*, setting: str | None = None) -> str:
    """The URL of the default simple index (PEP 503/691), trailing slash stripped.

    May carry ``user:password@``: callers pass it through :func:`credentials_for` and
    :func:`slimline.errors.redact` before showing it.
    """
    for value in (setting, *(os.environ.get(name) for name in _ENV_INDEX)):
        if value and value.strip():
            return value.strip().rstrip("/")
    from_config = _pip_config_index_url()
    if from_config:
        return from_config.rstrip("/")
    builtin = _pip_builtin_default()
    if builtin:
        return builtin.rstrip("/")
    raise NoIndexConfigured()


def pip_config_files() -> list[Path]:
    """pip's configuration files in the order pip reads them (later files win).

    ``PIP_CONFIG_FILE=os.devnull`` turns them all off, as it does for pip.
    """
    env_file = os.environ.get("PIP_CONFIG_FILE")
    if env_file == os.devnull:
        return []
    xdg_dirs = os.environ.get("XDG_CONFIG_DIRS") or "/etc/xdg"
    files = [Path(d) / "pip" / "pip.conf" for d in reversed(xdg_dirs.split(os.pathsep)) if d]
    files.append(Path("/etc/pip.conf"))
    files.append(Path.home() / ".pip" / "pip.conf")
    xdg_home = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    files.append(Path(xdg_home) / "pip" / "pip.conf")
    files.append(Path(sys.prefix) / "pip.conf")
    if env_file:
        files.append(Path(env_file))
    return files


def _pip_config_index_url() -> str | None:
    found: str | None = None
    for path in pip_config_files():
        parser = configparser.RawConfigParser()
        try:
            parser.read(path, encoding="utf-8")
        except (configparser.Error, UnicodeDecodeError):
            continue  # pip itself refuses such a file; not ours to fix, and it holds no index for us
        for section in _PIP_SECTIONS:
            value = parser.get(section, "index-url", fallback=None) or parser.get(
                section, "index_url", fallback=None
            )
            if value and value.strip():
                found = value.strip()
    return found


def _pip_builtin_default() -> str | None:
    try:
        from pip._internal.models.index import PyPI
    except Exception:  # pip missing or its internals moved: ask a pip elsewhere
        pass
    else:
        return str(PyPI.simple_url)
    for name in ("python3", "python"):
        exe = shutil.which(name)
        if exe is None:
            continue
        try:
            out = subprocess.run(
                [exe, "-c", _PIP_DEFAULT_SNIPPET], capture_output=True, text=True, timeout=20, check=False
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if out.returncode == 0 and out.stdout.strip().startswith(("http://", "https://")):
            return out.stdout.strip()
    return None


def _env_key(source_name: str) -> str:
    return source_name.upper().replace("-", "_").replace(".", "_")


def _poetry_config_dir() -> Path:
    env = os.environ.get("POETRY_CONFIG_DIR")
    if env:
        return Path(env).expanduser()
    return Path(platformdirs.user_config_dir("pypoetry", appauthor=False, roaming=True))


def _poetry_file_auth(source_name: str) -> BasicAuth | None:
    """``[http-basic.<name>]`` from Poetry's auth.toml, else config.toml (auth.toml wins, as in Poetry)."""
    base = _poetry_config_dir()
    for filename in ("auth.toml", "config.toml"):
        path = base / filename
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            continue
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
            raise BadCredentialsFile(path=path, problem=f"not valid TOML: {err}") from err
        table = data.get("http-basic", {})
        entry = table.get(source_name) if isinstance(table, dict) else None
        if isinstance(entry, dict) and isinstance(entry.get("username"), str):
            password = entry.get("password")
            return BasicAuth(
                entry["username"],
                password if isinstance(password, str) else "",
                source=f"[http-basic.{source_name}] in {path}",
            )
    return None


def _netrc_auth(url: str) -> BasicAuth | None:
    host = urlsplit(url).hostname
    if not host:
        return None
    env = os.environ.get("NETRC")
    path = Path(env).expanduser() if env else Path.home() / ".netrc"
    if not path.is_file():
        return None
    try:
        entry = netrc.netrc(str(path)).authenticators(host)
    except (netrc.NetrcParseError, OSError) as err:
        # NetrcParseError names the file and line only, never a token's value.
        raise BadCredentialsFile(path=path, problem=f"cannot parse it: {type(err).__name__}") from err
    if entry is None:
        return None
    login, _account, password = entry
    if not login:
        return None
    return BasicAuth(login, password or "", source=f"{path} (machine {host})")


def _host(url: str) -> str:
    return urlsplit(url).netloc.rpartition("@")[2].lower()


def _path_match(source_url: str, url: str) -> tuple[int, bool]:
    """Leading path segments ``source_url`` shares with ``url``, and whether it shares them all."""
    own = [s for s in urlsplit(source_url).path.split("/") if s]
    other = [s for s in urlsplit(url).path.split("/") if s]
    shared = 0
    for a, b in zip(own, other, strict=False):
        if a != b:
            break
        shared += 1
    return shared, shared == len(own)


def _given_for(source_name: str, url: str, given: Sequence[SourceAuth]) -> BasicAuth | None:
    """The handed-over credentials for ``url``: its source's by name, else (as Poetry's
    authenticator does) those of the source on the same host whose path best matches ``url``'s
    (the first of equals).  Credentials given for an https source never go to another scheme."""
    scheme = urlsplit(url).scheme.lower()
    usable = [g for g in given if scheme == "https" or urlsplit(g.url).scheme.lower() != "https"]
    if source_name:
        named = [g for g in usable if g.name.lower() == source_name.lower()]
        if named:
            return named[0].auth
    host = _host(url)
    same_host = [g for g in usable if _host(g.url) == host]
    if not same_host:
        return None
    return max(same_host, key=lambda g: _path_match(g.url, url)).auth


def credentials_for(source_name: str, url: str, *, given: Sequence[SourceAuth] = ()) -> BasicAuth | None:
    """HTTP basic credentials for a source, found the way Poetry finds them.

    Order: credentials handed over in ``given`` (see :func:`_given_for`);
    ``POETRY_HTTP_BASIC_<NAME>_USERNAME``/``_PASSWORD`` (name upper-cased, ``-`` and ``.``
    turned into ``_``); ``[http-basic.<name>]`` in Poetry's ``auth.toml``/``config.toml``
    (``POETRY_CONFIG_DIR`` or the platform config dir); ``user:password@`` in ``url``; then the
    netrc file (``NETRC`` or ``~/.netrc``) entry for the URL's host.  ``source_name`` may be
    empty (the default index): the lookups by name are then skipped.
    """
    handed = _given_for(source_name, url, given)
    if handed is not None:
        return handed
    if source_name:
        key = _env_key(source_name)
        user = os.environ.get(f"POETRY_HTTP_BASIC_{key}_USERNAME")
        if user is not None:
            return BasicAuth(
                user,
                os.environ.get(f"POETRY_HTTP_BASIC_{key}_PASSWORD", ""),
                source=f"POETRY_HTTP_BASIC_{key}_USERNAME/_PASSWORD",
            )
        from_file = _poetry_file_auth(source_name)
        if from_file is not None:
            return from_file
    _, embedded = strip_userinfo(url)
    if embedded is not None:
        return embedded
    return _netrc_auth(url)
