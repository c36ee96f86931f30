"""slimline.once: a value made at most once, whoever asks first and however many ask at once."""

from __future__ import annotations

import threading

import pytest

from slimline.once import Once


def test_callers_at_the_same_time_get_the_one_value_made() -> None:
    started, release = threading.Event(), threading.Event()
    calls: list[str] = []

    def make() -> object:
        calls.append(threading.current_thread().name)
        started.set()
        release.wait(timeout=10)
        return object()

    once: Once[object] = Once(make, name="slimline-test")
    got: list[object] = []
    askers = [threading.Thread(target=lambda: got.append(once.get())) for _ in range(3)]
    for t in askers:
        t.start()
    assert started.wait(timeout=10)
    assert once.made is None  # still being made
    release.set()
    for t in askers:
        t.join(timeout=10)
    assert len(calls) == 1 and len(got) == 3 and all(v is got[0] for v in got)
    assert once.made is got[0] and once.get() is got[0]


def test_a_failure_is_kept_for_every_caller() -> None:
    calls: list[int] = []

    def make() -> int:
        calls.append(1)
        raise RuntimeError("no archive")

    once: Once[int] = Once(make, name="slimline-test")
    for _ in range(2):
        with pytest.raises(RuntimeError, match="no archive"):
            once.get()
    assert calls == [1] and once.made is None
