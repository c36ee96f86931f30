"""The ``inspect`` and ``diff`` documents as lines for a terminal (sizes in KiB/MiB, long
tables cut at :data:`ROWS` rows with a line saying how many were left out)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["ROWS", "diff_lines", "human", "inspect_lines"]

ROWS = 25


def human(n: int | None) -> str:
    if n is None:
        return "-"
    size = float(abs(n))
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            text = f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
            return f"-{text}" if n < 0 else text
        size /= 1024
    raise AssertionError("unreachable")


def _cut(rows: Sequence[str], limit: int = ROWS) -> list[str]:
    out = list(rows[:limit])
    if len(rows) > limit:
        out.append(f"  ... and {len(rows) - limit} more (--json lists them all)")
    return out


def _config_lines(facts: dict[str, Any]) -> list[str]:
    c = facts["config"]
    out = [
        f"  entrypoint: {c['entrypoint']}",
        f"  cmd: {c['cmd']}",
        f"  user: {c['user'] or '(root)'}",
        f"  working dir: {c['working_dir'] or '/'}",
    ]
    out += [f"  env: {e}" for e in c["env"]]
    out += [f"  port: {p}" for p in c["ports"]]
    out += [f"  label: {k}={v}" for k, v in c["labels"].items()]
    base = facts["base"]
    if base:
        out.append(f"  base: {base['name']} {base['digest']}".rstrip())
    return out


def _layer_lines(facts: dict[str, Any]) -> list[str]:
    out = ["layers (compressed, unpacked, made by):"]
    for layer in facts["layers"]:
        made = layer["created_by"] or "(no history)"
        out.append(
            f"  {layer['index']:>3}  {human(layer['compressed']):>10}  {human(layer['unpacked']):>10}  "
            f"{layer['digest'][:19]}  {made[:100]}"
        )
    return out


def _deb_size(d: dict[str, Any]) -> int | None:
    """Measured from its files when it lists them, else as its control file declares."""
    size: int | None = d["size"] if d["size"] is not None else d["installed_size"]
    return size


def inspect_lines(facts: dict[str, Any]) -> list[str]:
    size = facts["size"]
    out = [
        f"{facts['platform']}  {facts['digest']}",
        f"  size: {human(size['compressed'])} compressed, {human(size['unpacked'])} unpacked, "
        f"{human(size['files'])} in the final file system, {human(size['wasted'])} wasted",
        *_config_lines(facts),
        *_layer_lines(facts),
        f"python distributions ({len(facts['python'])}, largest first):",
    ]
    out += _cut(
        [f"  {human(d['size']):>10}  {d['name']} {d['version']}  ({d['location']})" for d in facts["python"]]
    )
    slimmed = [d for d in facts["python"] if d.get("dropped")]
    if slimmed:
        out.append("dropped by slim mode (--json lists the files):")
        out += _cut(
            [
                f"  {d['name']} {d['version']}: {d['dropped']['files']} files, {human(d['dropped']['size'])}"
                for d in sorted(slimmed, key=lambda d: (-d["dropped"]["size"], d["name"]))
            ]
        )
    out.append(f"debian packages ({len(facts['debian'])}, largest first):")
    out += _cut([f"  {human(_deb_size(d)):>10}  {d['name']} {d['version']}" for d in facts["debian"]])
    out.append("largest files:")
    out += [
        f"  {human(f['size']):>10}  {f['path']}  (layer {f['layer']}) {f['package']}".rstrip()
        for f in facts["largest_files"]
    ]
    out.append(f"wasted ({human(size['wasted'])}: replaced or removed by a later layer):")
    out += [
        f"  {human(w['size']):>10}  {w['path']}  (layer {w['layer']}, {w['by']})" for w in facts["wasted"]
    ]
    return out


def _changes(title: str, changes: dict[str, Any]) -> list[str]:
    rows = [f"  + {d['name']} {d['version']}" for d in changes["added"]]
    rows += [f"  - {d['name']} {d['version']}" for d in changes["removed"]]
    rows += [f"  ~ {d['name']} {d['from']} -> {d['to']}" for d in changes["changed"]]
    return [
        f"{title}: {len(changes['added'])} added, {len(changes['removed'])} removed, "
        f"{len(changes['changed'])} changed",
        *_cut(rows),
    ]


def diff_lines(doc: dict[str, Any]) -> list[str]:
    size = doc["size"]
    out = [
        f"a: {doc['a']['reference']} {doc['a']['digest']}",
        f"b: {doc['b']['reference']} {doc['b']['digest']}",
        f"size: compressed {human(size['compressed']['delta'])} ({human(size['compressed']['a'])} -> "
        f"{human(size['compressed']['b'])}), unpacked {human(size['unpacked']['delta'])} "
        f"({human(size['unpacked']['a'])} -> {human(size['unpacked']['b'])})",
        *_changes("python distributions", doc["python"]),
        *_changes("debian packages", doc["debian"]),
        "layers (a -> b; compressed delta, unpacked delta):",
    ]
    for row in doc["layers"]:
        a, b = row["a"], row["b"]
        state = "reused" if row["reused"] else "new" if b else "dropped"
        names = f"{a['digest'][7:19] if a else '-'} -> {b['digest'][7:19] if b else '-'}"
        out.append(
            f"  {row['index']:>3}  {state:<7}  {names}  {human(row['delta']['compressed']):>10}  "
            f"{human(row['delta']['unpacked']):>10}  {(b or a or {}).get('created_by', '')[:70]}"
        )
    files = doc["files"]
    out.append(
        f"files: {len(files['added'])} added, {len(files['removed'])} removed, "
        f"{len(files['modified'])} modified"
    )
    rows = [f"  + {f['path']} ({human(f['size'])})" for f in files["added"]]
    rows += [f"  - {f['path']} ({human(f['size'])})" for f in files["removed"]]
    rows += [f"  ~ {f['path']} ({human(f['a_size'])} -> {human(f['b_size'])})" for f in files["modified"]]
    return out + _cut(rows)
