"""``slimline inspect --html``: the page, opened in Debian's real headless chromium over the
DevTools protocol.  It must render without a console error or a single fetch, its size map
must cover exactly the image's unpacked bytes (the page writes what it drew into the DOM; the
expected total comes from Python's tarfile over the layout's blobs), each layer's box must
have its share of the map's area, and a click must zoom in.

The screenshot is kept at ``$SLIMLINE_TEST_ARTIFACTS/inspect/`` (default
``/tmp/slimline-test-artifacts``); the test prints the path (``pytest -s`` shows it).
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import pytest

from slimline.cache.store import Cache
from slimline.cli.main import main
from tests.inspect.chromium import Page, open_page
from tests.inspect.images import Spec, build, read_layout, write_layout
from tests.inspect.test_inspect import specs

HOSTILE = "app/</script><img src=x onerror=alert(1)>.py"  # a file name is text, never markup


def artifacts() -> Path:
    return Path(os.environ.get("SLIMLINE_TEST_ARTIFACTS") or "/tmp/slimline-test-artifacts") / "inspect"


def many_files() -> Spec:
    """A few hundred files of spread sizes in nested directories (seeded: the same every run)."""
    rng = random.Random(14)
    files = {HOSTILE: b"x" * 999}
    for i in range(400):
        depth = "/".join(f"d{rng.randrange(4)}" for _ in range(rng.randrange(1, 4)))
        files[f"srv/data/{depth}/f{i}.bin"] = bytes(rng.randrange(1, 40_000))
    return Spec(files, created_by="RUN make data")


def check_page(page: Page, expected_total: int) -> None:
    """What every rendered page must show (see the module's docstring)."""
    assert page.problems == [], page.problems
    assert page.requests == [page.evaluate("location.href")], page.requests
    totals = page.evaluate("({...document.getElementById('totals-0').dataset})")
    assert int(totals["imageBytes"]) == int(totals["treeBytes"]) == int(totals["leafBytes"]) == expected_total
    assert int(totals["drawnBytes"]) == expected_total and totals["depth"] == "0"
    assert float(totals["drawnArea"]) == pytest.approx(float(totals["mapArea"]), rel=1e-9)
    boxes = page.evaluate(
        "[...document.querySelectorAll('#map-0 > .top')].map(b => [+b.dataset.bytes, +b.dataset.area])"
    )
    assert sum(b for b, _ in boxes) == expected_total
    for size, area in boxes:
        assert area / float(totals["mapArea"]) == pytest.approx(size / expected_total, rel=1e-6, abs=1e-9)


@pytest.mark.slow  # a real chromium starts: seconds, not milliseconds
def test_the_page_renders_offline_and_its_map_adds_up(tmp_path: Path, capsys: Any) -> None:
    the_specs = [*specs(), many_files()]
    ref = write_layout(build(Cache(tmp_path / "make"), the_specs), tmp_path / "layout", "v1")
    html = tmp_path / "report.html"
    assert main(["inspect", ref, "-q", "--html", str(html), "--cache-dir", str(tmp_path / "cache")]) == 0
    capsys.readouterr()
    text = html.read_text()
    assert "<script src" not in text and "<link" not in text and "@import" not in text
    assert HOSTILE not in text  # escaped everywhere
    blobs = read_layout(tmp_path / "layout", "v1")
    total = sum(size for layer in blobs.layers for size, _ in layer.values())
    with open_page(html) as page:
        check_page(page, total)
        assert page.evaluate("document.querySelectorAll('#map-0 .inner').length") > 20  # nested boxes drawn
        shot = page.screenshot(artifacts() / "sizemap.png")
        biggest = max(range(len(blobs.layers)), key=lambda i: sum(s for s, _ in blobs.layers[i].values()))
        page.evaluate("document.querySelectorAll('#map-0 > .top')[0].click()")
        zoomed = page.evaluate("({...document.getElementById('totals-0').dataset})")
        assert zoomed["depth"] == "1"
        assert int(zoomed["drawnBytes"]) == sum(s for s, _ in blobs.layers[biggest].values())
        assert float(zoomed["drawnArea"]) == pytest.approx(float(zoomed["mapArea"]), rel=1e-9)
        page.screenshot(artifacts() / "sizemap-zoomed.png")
        assert page.problems == []
    assert shot.stat().st_size > 10_000
    with capsys.disabled():
        print(f"\nsize map screenshots: {shot} and {shot.with_name('sizemap-zoomed.png')}")
