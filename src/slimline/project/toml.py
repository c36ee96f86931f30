"""TOML files read once, and one typed reader for the values in them.

Contract:

- :func:`load` (:func:`read` also returns the text) reads a UTF-8 TOML file or raises the
  caller's :class:`TomlError` subclass naming the file and where it went wrong (missing, not
  UTF-8: the byte's line and column, not TOML: the parser's line and column).
- The getters (:func:`get`, :func:`get_table`, :func:`get_list`, :func:`get_list_of`) and the
  checks of a value in hand (:func:`check`, :func:`check_table`, :func:`check_list`, :func:`each`)
  raise :class:`FieldError` naming the key they read, relative to the table they were given.
  :func:`within` prefixes its key to every FieldError raised inside it, so an error arrives at
  the top as ``package[3].files[0].hash`` without anyone passing path strings down (the idea of
  pypa/packaging's ``pylock._get``).
- A reading module turns FieldError into its own :class:`TomlError` at its edge
  (:func:`raising`): FieldError never leaves :mod:`slimline.project`.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, Self, TypeVar, overload

from slimline.errors import ExitStatus, SlimlineError

__all__ = [
    "FieldError",
    "TomlError",
    "check",
    "check_list",
    "check_table",
    "each",
    "get",
    "get_list",
    "get_list_of",
    "get_table",
    "load",
    "raising",
    "read",
    "within",
]

T = TypeVar("T")


class TomlError(SlimlineError):
    """A TOML file that cannot be read (``field`` = ""), or a value in it of the wrong shape.

    Subclasses name the fix (``fix``, the default hint) and may say more for a missing file
    (:meth:`missing`).
    """

    exit_status = ExitStatus.INPUT

    fix = "correct the file"

    def __init__(self, problem: str, *, file: Path, field: str = "", hint: str = "", doing: str = "") -> None:
        where = f"{file}" + (f" [{field}]" if field else "")
        super().__init__(problem, doing=doing or f"reading {where}", hint=hint or self.fix)
        self.file = file
        self.field = field

    @classmethod
    def missing(cls, file: Path) -> Self:
        return cls("the file does not exist", file=file)


class FieldError(Exception):
    """A value of the wrong shape: ``field`` is its key path below the table being read
    ("" = the value in hand); the reading module re-raises it as its :class:`TomlError`."""

    def __init__(self, problem: str, *, field: str = "", hint: str = "") -> None:
        super().__init__(problem)
        self.problem = problem
        self.field = field
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.field}: {self.problem}" if self.field else self.problem


# --- files --------------------------------------------------------------------------------------


def read(path: Path, *, error: type[TomlError] = TomlError) -> tuple[str, dict[str, Any]]:
    """The text of the TOML file ``path`` and its parsed tables; failures raise ``error``."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError as err:
        raise error.missing(path) from err
    except OSError as err:
        raise error(f"cannot read it: {err.strerror or err}", file=path) from err
    try:
        text = raw.decode("utf-8")  # as tomllib.load: no newline translation
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        column = err.start - raw.rfind(b"\n", 0, err.start)
        raise error(
            f"not UTF-8 text: byte 0x{raw[err.start]:02x} at line {line}, column {column}", file=path
        ) from err
    try:
        return text, tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:  # its message ends "(at line L, column C)"
        raise error(f"not valid TOML: {err}", file=path) from err


def load(path: Path, *, error: type[TomlError] = TomlError) -> dict[str, Any]:
    """The parsed tables of the TOML file ``path``; failures raise ``error``."""
    return read(path, error=error)[1]


@contextmanager
def raising(error: type[TomlError], file: Path) -> Iterator[None]:
    """Re-raise a :class:`FieldError` from inside as ``error`` for ``file``, naming its field."""
    try:
        yield
    except FieldError as err:
        raise error(err.problem, file=file, field=err.field, hint=err.hint) from err


@contextmanager
def within(key: str | int) -> Iterator[None]:
    """Prefix ``key`` (a table key or key path, or a list index) to FieldErrors from inside."""
    try:
        yield
    except FieldError as err:
        head = f"[{key}]" if isinstance(key, int) else key
        if head and err.field:
            err.field = head + ("" if err.field.startswith("[") else ".") + err.field
        elif head:
            err.field = head
        raise


# --- values in hand -----------------------------------------------------------------------------

_NAMES: dict[type, tuple[str, str]] = {
    str: ("a string", "strings"),
    bool: ("true or false", "booleans"),
    int: ("an integer", "integers"),
    float: ("a number", "numbers"),
    list: ("an array", "arrays"),
    dict: ("a table", "tables"),
}


def _shown(value: object) -> str:
    if isinstance(value, Mapping):
        return "a table"
    if isinstance(value, list | tuple):
        return "an array"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check(value: object, kind: type[T], *, want: str = "") -> T:
    """``value`` if it is a ``kind`` (true/false is not an integer here); ``want`` names it."""
    if isinstance(value, kind) and not (isinstance(value, bool) and kind is not bool):
        return value
    name = want or _NAMES.get(kind, (kind.__name__, ""))[0]
    raise FieldError(f"expected {name}, got {_shown(value)}")


def check_table(value: object) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise FieldError(f"expected a table, got {_shown(value)}")
    return value


def check_list(value: object, item: type[T]) -> tuple[T, ...]:
    """``value`` as a tuple of ``item``s; a wrong item is named by its index (``[2]``)."""
    if not isinstance(value, list | tuple):
        plural = _NAMES.get(item, ("", f"{item.__name__} values"))[1]
        raise FieldError(f"expected an array of {plural}, got {_shown(value)}")
    return each(value, lambda v: check(v, item))


def each(items: Sequence[Any], parse: Callable[[Any], T]) -> tuple[T, ...]:
    """``parse`` of every item, its errors under the item's index."""
    out = []
    for i, item in enumerate(items):
        with within(i):
            out.append(parse(item))
    return tuple(out)


# --- values by key ------------------------------------------------------------------------------


@overload
def get(d: Mapping[str, Any], key: str, kind: type[T], *, default: T) -> T: ...
@overload
def get(d: Mapping[str, Any], key: str, kind: type[T], *, required: Literal[True]) -> T: ...
@overload
def get(d: Mapping[str, Any], key: str, kind: type[T]) -> T | None: ...
def get(
    d: Mapping[str, Any], key: str, kind: type[T], *, default: T | None = None, required: bool = False
) -> T | None:
    """``d[key]`` checked to be a ``kind``; ``default`` when absent, or an error when ``required``."""
    with within(key):
        if key not in d:
            if required:
                raise FieldError(f"missing: expected {_NAMES.get(kind, (kind.__name__, ''))[0]}")
            return default
        return check(d[key], kind)


def get_table(d: Mapping[str, Any], key: str, *, required: bool = False) -> Mapping[str, Any]:
    """The table ``d[key]``; an empty one when absent and not ``required``."""
    with within(key):
        if key not in d:
            if required:
                raise FieldError("missing: expected a table")
            return {}
        return check_table(d[key])


def get_list(d: Mapping[str, Any], key: str, item: type[T]) -> tuple[T, ...]:
    """The array ``d[key]`` of ``item``s; () when absent."""
    with within(key):
        return check_list(d.get(key, ()), item)


def get_list_of(d: Mapping[str, Any], key: str, parse: Callable[[Any], T]) -> tuple[T, ...]:
    """``parse`` of each item of the array ``d[key]`` (() when absent), errors under ``key[i]``."""
    with within(key):
        return each(check(d.get(key, []), list), parse)
