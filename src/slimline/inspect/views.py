"""The two commands' work, from reference texts to the lines they print (and the page they write).

:func:`inspect` reads each image once (:func:`slimline.inspect.scan.scan`) and gives the
``--json`` document (:mod:`slimline.inspect.summary`), the terminal's lines
(:mod:`slimline.inspect.text`) and, with ``html``, writes the page (:mod:`slimline.inspect.page`)
atomically.  :func:`diff` reads both images with content hashes and compares them
(:mod:`slimline.inspect.compare`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from slimline.cache.store import atomic_write
from slimline.context import Context
from slimline.errors import SlimlineError, describe_os_error, os_hint
from slimline.inspect import compare, page, sizemap, source, summary, text
from slimline.inspect.scan import scan

__all__ = ["diff", "inspect"]


def _dump(doc: dict[str, Any]) -> list[str]:
    return [json.dumps(doc, indent=2, ensure_ascii=False)]


def inspect(
    ref: str, *, platforms: Sequence[str] | None, as_json: bool, html: Path | None, ctx: Context
) -> list[str]:
    """What ``slimline inspect REF`` prints; with ``html``, the page is written there first."""
    found: list[tuple[dict[str, Any], dict[str, Any]]] = []
    for image in source.read(ref, platforms=platforms, ctx=ctx):
        ctx.report.step(f"reading the layers of {ref} ({image.platform})")
        scanned = scan(image)
        facts, owner = summary.image_facts(image, scanned)
        found.append((facts, sizemap.tree(scanned, owner) if html is not None else {}))
    if html is not None:
        _write(html, page.render(ref, found))
        ctx.report.step(f"wrote {html}")
    if as_json:
        return _dump({"schema": summary.SCHEMA, "reference": ref, "images": [facts for facts, _ in found]})
    lines = [f"{ref}"]
    for facts, _ in found:
        lines += text.inspect_lines(facts)
    return lines


def _write(path: Path, content: str) -> None:
    try:
        with atomic_write(path) as f:
            f.write(content.encode())
    except OSError as err:
        raise SlimlineError(
            f"cannot write {path}: {describe_os_error(err)}", doing="writing the HTML page", hint=os_hint(err)
        ) from err


def diff(a: str, b: str, *, platform: str | None, as_json: bool, ctx: Context) -> list[str]:
    """What ``slimline diff A B`` prints: B compared with A, for one platform."""
    sides = []
    for ref in (a, b):
        (image,) = source.read(ref, platforms=[platform] if platform else None, ctx=ctx)
        ctx.report.step(f"reading the layers of {ref} ({image.platform})")
        sides.append((ref, image, scan(image, hashes=True)))
    doc = compare.diff(sides[0], sides[1])
    return _dump(doc) if as_json else text.diff_lines(doc)
