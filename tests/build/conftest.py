"""Fixtures of the in-process build tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.artifacts.helpers import LocalIndex, make_wheel, serve


@pytest.fixture
def index() -> Iterator[LocalIndex]:
    """A local index on 127.0.0.1 serving the ``tinydep`` wheel the helpers' locks name."""
    wheel = make_wheel("tinydep", "0.3.0")
    with serve(LocalIndex(files={"tinydep": {"tinydep-0.3.0-py3-none-any.whl": wheel}})) as idx:
        yield idx
