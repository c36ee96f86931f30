"""The progress side of the Reporter interface: the stages that move bytes report tasks whose
advances add up to their totals (a reporter that records them stands in for the terminal)."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from slimline import layers
from slimline.cache.store import Cache
from slimline.context import Context
from slimline.http import Http
from slimline.layers.filetree import TreeBuilder
from slimline.oci.reference import RegistryRef
from slimline.oci.registry import push
from slimline.report import Collect, Nested, Quiet, Stderr, Ticker, progress
from tests.artifacts.helpers import LocalIndex, make_wheel, serve, sha256
from tests.oci.registry_helpers import image, registry


class Recorder(Quiet):
    """A reporter that shows progress by recording it: task -> [total, advanced]."""

    def __init__(self) -> None:
        self.tasks: dict[str, list[int | None]] = {}
        self.open: set[str] = set()
        self._lock = threading.Lock()

    def progress(self, task: str, total: int | None = None) -> AbstractContextManager[Ticker]:
        return self._task(task, total)

    @contextmanager
    def _task(self, task: str, total: int | None) -> Iterator[Ticker]:
        record: list[int | None] = [total, 0]
        recorder = self

        class Bar:
            def advance(self, n: int) -> None:
                with recorder._lock:
                    done = record[1]
                    assert done is not None
                    record[1] = done + n

        with self._lock:
            self.tasks[task] = record
            self.open.add(task)
        try:
            yield Bar()
        finally:
            with self._lock:
                self.open.discard(task)


def test_reporters_without_progress_cost_nothing_and_nesting_passes_it_on() -> None:
    for quiet in (Quiet(), Stderr(stream=open(os.devnull, "w"))):  # noqa: SIM115
        with progress(quiet, "downloading x", 10) as bar:
            bar.advance(10)
    outer = Recorder()
    for inner in (Nested(outer), Collect(outer), Nested(Collect(outer))):
        with progress(inner, "pushing y", 5) as bar:
            bar.advance(5)
        assert outer.tasks.pop("pushing y") == [5, 5]


def test_layer_compression_reports_its_uncompressed_bytes(tmp_path: Path) -> None:
    tree = TreeBuilder()
    tree.data("a.bin", os.urandom(300_000))
    tree.data("dir/b.txt", b"hello" * 1000)
    frozen = tree.freeze()
    seen = Recorder()
    layers.write(frozen, cache=Cache(tmp_path / "cache"), report=seen, what="test files")
    assert seen.tasks == {"compressing test files (gzip)": [305_000, 305_000]} and not seen.open
    assert frozen.file_bytes() == 305_000


def test_a_download_reports_the_declared_length(tmp_path: Path) -> None:
    wheel = make_wheel("tinydep", "0.3.0", extra={"tinydep/data.bin": os.urandom(200_000)})
    seen = Recorder()
    with serve(LocalIndex(files={"tinydep": {"tinydep-0.3.0-py3-none-any.whl": wheel}})) as index:
        url = index.url.removesuffix("/simple") + "/files/tinydep-0.3.0-py3-none-any.whl"
        Http(report=seen).download(url, cache=Cache(tmp_path / "c"), sha256=sha256(wheel), what="tinydep.whl")
    assert seen.tasks == {"downloading tinydep.whl": [len(wheel), len(wheel)]} and not seen.open


def test_a_context_gives_its_client_the_reporter(tmp_path: Path) -> None:
    seen = Recorder()
    assert Context(Cache(tmp_path / "c"), Nested(seen)).http.report is not None


def test_a_push_reports_each_blob_it_uploads(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    img = image(cache)
    seen = Recorder()
    with registry(tmp_path / "reg") as reg:
        ref = RegistryRef(reg.host, "team/app", "1")
        push([img], ref, ctx=Context(cache, seen, insecure=(reg.host,)))
    pushed = {task: done for task, done in seen.tasks.items() if task.startswith("pushing")}
    sizes = sorted([layer.size for layer in img.layers] + [len(img.config_bytes)])
    assert sorted(total for total, _ in pushed.values() if total is not None) == sizes, seen.tasks
    assert all(total == done for total, done in pushed.values()), pushed
    assert not seen.open
