"""Credentials never shown (redact) and never recorded (without_credentials)."""

from __future__ import annotations

import pytest

from slimline.errors import redact, without_credentials


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("get https://u:pw@host/x failed", "get https://***@host/x failed"),
        ("https://u:p@ss@host/a@b", "https://***@host/a@b"),  # an '@' in the password
        (
            "http://tok@h:8080?q=1 and git+https://a:b@g/r.git",
            "http://***@h:8080?q=1 and git+https://***@g/r.git",
        ),
        ("https://host/path@v1", "https://host/path@v1"),  # an '@' after the host is no userinfo
    ],
)
def test_redact_hides_every_userinfo(text: str, shown: str) -> None:
    assert redact(text) == shown


@pytest.mark.parametrize(
    ("url", "recorded"),
    [
        ("https://user:s3cret@files.invalid/d/x-1.0.whl", "https://files.invalid/d/x-1.0.whl"),
        ("https://u:p@ss@files.invalid/x", "https://files.invalid/x"),
        ("git+https://token@git.invalid/o/r.git", "git+https://git.invalid/o/r.git"),
        ("ssh://git@git.invalid/o/r.git", "ssh://git@git.invalid/o/r.git"),  # PEP 610 keeps a bare git@
        ("https://files.invalid/x", "https://files.invalid/x"),
    ],
)
def test_without_credentials_is_what_pep_610_records(url: str, recorded: str) -> None:
    assert without_credentials(url) == recorded
