"""``inspect --html``: one self-contained page (``page.html``: inline CSS and JavaScript, a
Content-Security-Policy that forbids every fetch) with each image's size map and tables.

Contract of :func:`render`: the result needs nothing but itself.  Text from the image (names,
paths, labels, history) is HTML-escaped in the tables and embedded in the map's JSON with
``<``, ``>`` and ``&`` escaped, so no image can add markup or script to the page.  The page
writes what it drew into ``#totals-K`` (``data-image-bytes``, ``data-leaf-bytes``,
``data-drawn-area``, ``data-map-area``...) for tests and other tools to read.
"""

from __future__ import annotations

import html
import json
import re
from importlib import resources
from typing import Any

from slimline.inspect.text import human

__all__ = ["render"]


def _table(head: list[str], rows: list[list[Any]], numeric: set[int] | None = None) -> str:
    numeric = numeric or set()

    def cls(i: int) -> str:
        return ' class="num"' if i in numeric else ""

    out = ["<table><tr>", *(f"<th{cls(i)}>{html.escape(h)}</th>" for i, h in enumerate(head)), "</tr>"]
    for row in rows:
        cells = (f"<td{cls(i)}>{html.escape(str(v))}</td>" for i, v in enumerate(row))
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</table>")
    return "".join(out)


def _config(facts: dict[str, Any]) -> str:
    c = facts["config"]
    rows: list[list[Any]] = [
        ["entrypoint", json.dumps(c["entrypoint"])],
        ["cmd", json.dumps(c["cmd"])],
        ["user", c["user"] or "(root)"],
        ["working dir", c["working_dir"] or "/"],
    ]
    rows += [["env", e] for e in c["env"]] + [["port", p] for p in c["ports"]]
    rows += [["label", f"{k}={v}"] for k, v in c["labels"].items()]
    if facts["base"]:
        rows.append(["base", f"{facts['base']['name']} {facts['base']['digest']}".strip()])
    return _table(["", ""], rows)


def _section(k: int, facts: dict[str, Any]) -> str:
    size = facts["size"]
    layers = [
        [x["index"], human(x["compressed"]), human(x["unpacked"]), x["digest"][:19], x["created_by"]]
        for x in facts["layers"]
    ]
    py = [[d["name"], d["version"], human(d["size"]), d["files"], d["location"]] for d in facts["python"]]
    deb = [[d["name"], d["version"], human(d["size"]), human(d["installed_size"])] for d in facts["debian"]]
    big = [[f["path"], human(f["size"]), f["layer"], f["package"]] for f in facts["largest_files"]]
    lost = [[w["path"], human(w["size"]), w["layer"], w["by"]] for w in facts["wasted"]]
    return "".join(
        [
            f"<section><h1>{html.escape(facts['platform'])}</h1>",
            f'<div class="sub"><code>{html.escape(facts["digest"])}</code><br>',
            f"{human(size['compressed'])} compressed, {human(size['unpacked'])} unpacked, ",
            f"{human(size['files'])} in the final file system, {human(size['wasted'])} wasted</div>",
            "<h2>Size map</h2>",
            '<div class="legend"><span>click a box to zoom in, a name above the map to zoom out</span>',
            '<span><i class="swatch box wasted" style="position:static"></i>',
            "replaced or removed by a later layer</span></div>",
            f'<div class="crumbs" id="crumbs-{k}"></div><div class="map" id="map-{k}"></div>',
            f'<div class="totals" id="totals-{k}"></div>',
            "<h2>Config</h2>",
            _config(facts),
            "<h2>Layers</h2>",
            _table(["#", "compressed", "unpacked", "digest", "made by"], layers, {0, 1, 2}),
            f"<h2>Python distributions ({len(py)})</h2>",
            _table(["name", "version", "size", "files", "location"], py, {2, 3}),
            f"<h2>Debian packages ({len(deb)})</h2>",
            _table(["name", "version", "size", "declared"], deb, {2, 3}),
            "<h2>Largest files</h2>",
            _table(["path", "size", "layer", "package"], big, {1, 2}),
            "<h2>Wasted: replaced or removed by a later layer</h2>",
            _table(["path", "size", "layer", "how"], lost, {1, 2}),
            "</section>",
        ]
    )


def _json(value: Any) -> str:
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


def render(reference: str, images: list[tuple[dict[str, Any], dict[str, Any]]]) -> str:
    """The page for ``images``: (facts as :func:`slimline.inspect.summary.image_facts` gives
    them, size map as :func:`slimline.inspect.sizemap.tree` gives it), one section each."""
    template = resources.files("slimline.inspect").joinpath("page.html").read_text(encoding="utf-8")
    body = f'<header class="sub">slimline inspect <code>{html.escape(reference)}</code></header>'
    body += "".join(_section(k, facts) for k, (facts, _) in enumerate(images))
    data = [{"unpacked": facts["size"]["unpacked"], "tree": tree} for facts, tree in images]
    parts = {"TITLE": html.escape(f"slimline inspect {reference}"), "BODY": body, "DATA": _json(data)}
    return re.sub(
        r"@@(TITLE|BODY|DATA)@@", lambda m: parts[m[1]], template
    )  # one pass: no text is read twice
