"""The simple-index client and downloads against a real HTTP server on 127.0.0.1 (offline)."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from slimline.artifacts.buildenv import BuildEnvs
from slimline.artifacts.fetch import fetch
from slimline.artifacts.index import Index, IndexPageError
from slimline.cache.store import Cache
from slimline.context import Context, SourceAuth
from slimline.http import BasicAuth, Http, HttpError
from slimline.plan.model import Artifact
from tests.artifacts.helpers import LocalIndex, index_pkg, make_wheel, plan_of, serve, sha256

WHEEL = make_wheel("tinypkg", "1.0")
WHEEL_NAME = "tinypkg-1.0-py3-none-any.whl"
SDIST_NAME = "tinypkg-1.0.tar.gz"


def _index(**kw: object) -> LocalIndex:
    return LocalIndex(files={"tinypkg": {WHEEL_NAME: WHEEL, SDIST_NAME: b"not really"}}, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("mode", ["json", "html-only"])
def test_index_page_json_and_html_fallback(mode: str) -> None:
    with serve(_index(mode=mode, yanked=frozenset({SDIST_NAME}))) as idx:
        files = {f.filename: f for f in Index(http=Http()).files("TinyPkg", index_url=idx.url, auth=None)}
        served = idx.requests[0]
    assert served[0] == "/simple/tinypkg/"  # the name is normalised for the page URL
    wheel = files[WHEEL_NAME]
    assert wheel.url == f"{idx.url.removesuffix('/simple')}/files/{WHEEL_NAME}"  # relative URL resolved
    assert wheel.sha256 == sha256(WHEEL)
    assert wheel.requires_python == ">=3.8"
    assert not wheel.yanked and files[SDIST_NAME].yanked


def test_index_page_is_memoised_per_build() -> None:
    with serve(_index()) as idx:
        index = Index(http=Http())
        index.files("tinypkg", index_url=idx.url, auth=None)
        index.files("tinypkg", index_url=idx.url + "/", auth=None)
        assert len(idx.requests) == 1


def test_unknown_project_is_a_clear_error() -> None:
    with serve(_index()) as idx, pytest.raises(IndexPageError) as info:
        Index(http=Http()).files("nothere", index_url=idx.url, auth=None)
    assert "no such project" in str(info.value)


def test_missing_credentials_give_401_with_hint() -> None:
    with serve(_index(auth=("alice", "pw"))) as idx, pytest.raises(HttpError) as info:
        Index(http=Http()).files("tinypkg", index_url=idx.url, auth=None)
    assert info.value.status == 401
    assert "POETRY_HTTP_BASIC_" in str(info.value)
    with serve(_index(auth=("alice", "pw"))) as idx:
        files = Index(http=Http()).files("tinypkg", index_url=idx.url, auth=BasicAuth("alice", "pw"))
    assert WHEEL_NAME in {f.filename for f in files}


def _fetch_tiny(
    index_url: str, cache: Cache, *, source: str, credentials: tuple[SourceAuth, ...] = ()
) -> Path:
    sel = index_pkg(
        "tinypkg", "1.0", Artifact(WHEEL_NAME, sha256(WHEEL), "wheel"), url=index_url, source=source
    )
    envs = BuildEnvs(cache=cache, index_url=index_url)
    ctx = Context(cache, credentials=credentials)
    wheels = fetch(plan_of(sel), ctx=ctx, default_index=index_url, build_env=envs,
                   project_root=cache.root)  # fmt: skip
    return wheels["tinypkg"]


def test_basic_auth_from_poetry_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POETRY_HTTP_BASIC_CORP_INDEX_USERNAME", "alice")
    monkeypatch.setenv("POETRY_HTTP_BASIC_CORP_INDEX_PASSWORD", "pa:ss")
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    with serve(_index(auth=("alice", "pa:ss"))) as idx:
        path = _fetch_tiny(idx.url, Cache(tmp_path / "cache"), source="corp-index")
        # the page and the file (same host) were both asked for with the credentials
        assert [p for p, _ in idx.requests] == ["/simple/tinypkg/", f"/files/{WHEEL_NAME}"]
        assert all(h is not None for _, h in idx.requests)
    assert path.name == WHEEL_NAME and path.read_bytes() == WHEEL


def test_basic_auth_handed_over_in_the_context(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POETRY_CONFIG_DIR", str(tmp_path / "no-poetry-config"))
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    with serve(_index(auth=("alice", "handed"))) as idx:
        given = (SourceAuth("corp-index", idx.url, BasicAuth("alice", "handed", source="Poetry")),)
        with pytest.raises(HttpError) as info:  # the same fetch without them: refused
            _fetch_tiny(idx.url, Cache(tmp_path / "bare"), source="corp-index")
        assert info.value.status == 401
        path = _fetch_tiny(idx.url, Cache(tmp_path / "cache"), source="corp-index", credentials=given)
        expected = f"Basic {base64.b64encode(b'alice:handed').decode()}"
        assert idx.requests[-2:] == [("/simple/tinypkg/", expected), (f"/files/{WHEEL_NAME}", expected)]
    assert path.read_bytes() == WHEEL


def test_basic_auth_from_netrc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login bob password from-netrc\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    with serve(_index(auth=("bob", "from-netrc"))) as idx:
        path = _fetch_tiny(idx.url, Cache(tmp_path / "cache"), source="")
        assert len(idx.requests) == 2
    assert path.read_bytes() == WHEEL


def test_wrong_credentials_fail_without_leaking_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POETRY_HTTP_BASIC_CORP_USERNAME", "alice")
    monkeypatch.setenv("POETRY_HTTP_BASIC_CORP_PASSWORD", "wrong-password")
    with serve(_index(auth=("alice", "right"))) as idx, pytest.raises(HttpError) as info:
        _fetch_tiny(idx.url, Cache(tmp_path / "cache"), source="corp")
    assert info.value.status == 401
    assert "wrong-password" not in str(info.value)


def test_cached_wheel_needs_no_network(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    with serve(_index()) as idx:
        first = _fetch_tiny(idx.url, cache, source="")
        url = idx.url
    # the server is gone: a second fetch must be served from the cache alone
    assert _fetch_tiny(url, cache, source="") == first


def test_find_keeps_only_the_file_asked_for() -> None:
    with serve(_index()) as idx:
        index = Index(http=Http())
        found = index.find("TinyPkg", SDIST_NAME, index_url=idx.url, auth=None)
        assert found is not None and found.filename == SDIST_NAME
        assert index.find("tinypkg", SDIST_NAME, index_url=idx.url + "/", auth=None) == found
        assert len(idx.requests) == 1
        assert index.find("tinypkg", "tinypkg-9.9.tar.gz", index_url=idx.url, auth=None) is None
        assert len(idx.requests) == 2
        assert index._pages == {}  # no page is held
