"""Push to and pull from the real registry server (Debian's docker-registry) on loopback.

Set-ups: anonymous over HTTP, htpasswd basic auth, bearer tokens, TLS with a CA made in the
test.  Images pushed by slimline are pulled and run by real podman and inspected by skopeo;
images converted by skopeo (Docker schema 2, manifest lists) are pulled by slimline.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import random
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from slimline import layers
from slimline.cache.store import Cache
from slimline.context import Context
from slimline.errors import HashMismatch
from slimline.http import Http
from slimline.layers.filetree import TreeBuilder
from slimline.oci.credentials import Credentials
from slimline.oci.image import DOCKER_LAYER_GZIP, DOCKER_MANIFEST, Config, History, Image, Platform
from slimline.oci.reference import RegistryRef, parse
from slimline.oci.registry import RegistryError, pull, push
from slimline.report import Stderr
from tests.oci.registry_helpers import AMD64, ARM64, Proxy, Registry, free_port, image, registry, sha256_hex
from tests.support import podman, podman_run, run, tool

pytestmark = pytest.mark.container

NO_CREDENTIALS = Credentials(())


def ref(host: str, path: str) -> RegistryRef:
    parsed = parse(f"docker://{host}/{path}", role="output")
    assert isinstance(parsed, RegistryRef)
    return parsed


def auth_file(tmp: Path, host: str, user: str, password: str) -> Credentials:
    tmp.mkdir(parents=True, exist_ok=True)
    path = tmp / "auth.json"
    path.write_text(
        json.dumps({"auths": {host: {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}}})
    )
    return Credentials((path,))


def skopeo_digest(r: Registry, path: str, *flags: str) -> str:
    raw = run([tool("skopeo"), "inspect", "--raw", *r.tls_flags, *flags, f"docker://{r.host}/{path}"]).stdout
    return "sha256:" + sha256_hex(raw.encode())


@contextlib.contextmanager
def pulled(r: Registry, path: str, *flags: str) -> Iterator[str]:
    """``podman pull`` the image, yield its name, remove it afterwards."""
    name = f"{r.host}/{path}"
    podman("pull", "-q", *r.tls_flags, *flags, name)
    try:
        yield name
    finally:
        podman("rmi", "-f", name, check=False)


@pytest.fixture
def cache(tmp_path: Path) -> Cache:
    return Cache(tmp_path / "cache")


def fast_http() -> Http:
    return Http(timeout=10, retries=2, backoff=0.05)


# -- the three set-ups ---------------------------------------------------------------------------


def test_anonymous_push_runs_in_podman_and_second_push_uploads_nothing(tmp_path: Path, cache: Cache) -> None:
    img = image(cache)
    with registry(tmp_path / "reg") as r:
        proxy = Proxy(r.host)
        try:
            target = ref(proxy.host, "slimline-test/bb:1")
            out = push([img], target, ctx=Context(cache, given_http=Http()), credentials=NO_CREDENTIALS)
            assert out == f"{proxy.host}/slimline-test/bb@{img.digest}"
            assert proxy.blob_uploads() == 3  # two layers and the config
            assert skopeo_digest(r, "slimline-test/bb:1") == img.digest
            with pulled(r, "slimline-test/bb:1") as name:
                assert podman_run(name, flags=["--pull=never"]).stdout.strip() == "hi"

            proxy.seen.clear()
            assert (
                push([img], target, ctx=Context(cache, given_http=Http()), credentials=NO_CREDENTIALS) == out
            )
            assert proxy.blob_uploads() == 0
            assert proxy.count("POST") == 0
            assert proxy.count("HEAD", "/blobs/", status=200) == 3
        finally:
            proxy.close()


def test_htpasswd_basic_auth(tmp_path: Path, cache: Cache, capsys: pytest.CaptureFixture[str]) -> None:
    img = image(cache, text="basic")
    with registry(tmp_path / "reg", auth="htpasswd") as r:
        password = r.users["alice"]
        good = auth_file(tmp_path / "good", r.host, "alice", password)
        out = push(
            [img],
            ref(r.host, "team/app:v1"),
            ctx=Context(cache, report=Stderr(verbose=True), given_http=Http()),
            credentials=good,
        )
        assert out.endswith(img.digest)
        assert skopeo_digest(r, "team/app:v1", f"--creds=alice:{password}") == img.digest
        with pulled(r, "team/app:v1", f"--creds=alice:{password}") as name:
            assert podman_run(name, flags=["--pull=never"]).stdout.strip() == "basic"
        pulled_img = pull(
            ref(r.host, "team/app:v1"),
            platform=AMD64,
            ctx=Context(Cache(tmp_path / "c2"), given_http=Http()),
            credentials=good,
        )
        assert [lay.digest for lay in pulled_img.layers] == [lay.digest for lay in img.layers]

        wrong = auth_file(tmp_path / "wrong", r.host, "alice", "not-the-password")
        with pytest.raises(RegistryError) as err:
            push([img], ref(r.host, "team/app:v2"), ctx=Context(cache, given_http=Http()), credentials=wrong)
        text = str(err.value)
        assert err.value.status == 401 and err.value.registry == r.host
        assert str(tmp_path / "wrong" / "auth.json") in text and "refused" in text
        assert "not-the-password" not in text

        with pytest.raises(RegistryError) as err:
            pull(
                ref(r.host, "team/app:v1"),
                platform=AMD64,
                ctx=Context(cache, given_http=Http()),
                credentials=NO_CREDENTIALS,
            )
        assert err.value.status == 401 and "no credentials" in str(err.value)
    # a credential never appears in what slimline printed
    printed = capsys.readouterr()
    assert password not in printed.out + printed.err
    assert base64.b64encode(f"alice:{password}".encode()).decode() not in printed.out + printed.err


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_tls_with_a_test_ca(tmp_path: Path, cache: Cache, monkeypatch: pytest.MonkeyPatch) -> None:
    img = image(cache, text="tls")
    with registry(tmp_path / "reg", tls=True) as r:
        assert r.tls is not None
        target = ref(r.host, "secure/app:1")
        # not trusted: a clear TLS error, no silent fallback to plain HTTP
        with pytest.raises(RegistryError) as err:
            push([img], target, ctx=Context(cache, given_http=fast_http()), credentials=NO_CREDENTIALS)
        assert err.value.status == 0
        assert "not trusted" in str(err.value) and "--insecure-registry" in str(err.value)
        # --insecure-registry: unverified TLS
        assert push(
            [img],
            target,
            ctx=Context(cache, given_http=fast_http(), insecure=(r.host,)),
            credentials=NO_CREDENTIALS,
        ).endswith(img.digest)
        # trusted through SSL_CERT_FILE = system bundle + test CA: verified TLS
        monkeypatch.setenv("SSL_CERT_FILE", str(r.tls.bundle))
        target2 = ref(r.host, "secure/app:2")
        assert push(
            [img], target2, ctx=Context(cache, given_http=Http()), credentials=NO_CREDENTIALS
        ).endswith(img.digest)
        got = pull(
            target2,
            platform=AMD64,
            ctx=Context(Cache(tmp_path / "c2"), given_http=Http()),
            credentials=NO_CREDENTIALS,
        )
        assert [lay.diff_id for lay in got.layers] == [lay.diff_id for lay in img.layers]
        assert skopeo_digest(r, "secure/app:2") == img.digest
        with pulled(r, "secure/app:2") as name:
            assert podman_run(name, flags=["--pull=never"]).stdout.strip() == "tls"


def test_bearer_token_flow(tmp_path: Path, cache: Cache) -> None:
    img = image(cache, text="token")
    with registry(tmp_path / "reg", auth="token") as r:
        assert r.token is not None
        password = r.users["alice"]
        good = auth_file(tmp_path / "good", r.host, "alice", password)
        target = ref(r.host, "org/app:1")
        assert push([img], target, ctx=Context(cache, given_http=Http()), credentials=good).endswith(
            img.digest
        )
        users = {u for u, _ in r.token.requests}
        scopes = {s for _, ss in r.token.requests for s in ss}
        assert users == {"alice"} and "repository:org/app:pull,push" in scopes
        with pulled(r, "org/app:1", f"--creds=alice:{password}") as name:
            assert podman_run(name, flags=["--pull=never"]).stdout.strip() == "token"
        assert skopeo_digest(r, "org/app:1", f"--creds=alice:{password}") == img.digest

        # anonymous clients get pull-only tokens: pulling works, pushing is refused
        got = pull(
            target,
            platform=AMD64,
            ctx=Context(Cache(tmp_path / "c2"), given_http=Http()),
            credentials=NO_CREDENTIALS,
        )
        assert [lay.digest for lay in got.layers] == [lay.digest for lay in img.layers]
        with pytest.raises(RegistryError) as err:
            push(
                [img],
                ref(r.host, "org/app:2"),
                ctx=Context(cache, given_http=Http()),
                credentials=NO_CREDENTIALS,
            )
        assert err.value.status == 401 and "no credentials" in str(err.value)

        wrong = auth_file(tmp_path / "wrong", r.host, "alice", "bad-password")
        with pytest.raises(RegistryError) as err:
            pull(
                target,
                platform=AMD64,
                ctx=Context(Cache(tmp_path / "c3"), given_http=Http()),
                credentials=wrong,
            )
        assert err.value.status == 401 and "bad-password" not in str(err.value)
        assert str(tmp_path / "wrong" / "auth.json") in str(err.value)


# -- pulling -------------------------------------------------------------------------------------


def test_pull_docker_schema2_list_and_pinned_digest_needs_no_network(tmp_path: Path, cache: Cache) -> None:
    amd, arm = image(cache, text="amd"), image(cache, text="arm", platform=ARM64)
    with registry(tmp_path / "reg") as r:
        push(
            [amd, arm],
            ref(r.host, "multi/app:1"),
            ctx=Context(cache, given_http=Http()),
            credentials=NO_CREDENTIALS,
        )
        # skopeo rewrites it as a Docker manifest list of schema 2 manifests
        run(
            [
                tool("skopeo"),
                "copy",
                "--all",
                "--format=v2s2",
                "--src-tls-verify=false",
                "--dest-tls-verify=false",
                f"docker://{r.host}/multi/app:1",
                f"docker://{r.host}/base/docker:1",
            ]
        )
        raw = run(
            [tool("skopeo"), "inspect", "--raw", "--tls-verify=false", f"docker://{r.host}/base/docker:1"]
        ).stdout
        assert json.loads(raw)["mediaType"] == "application/vnd.docker.distribution.manifest.list.v2+json"
        list_digest = "sha256:" + sha256_hex(raw.encode())

        fresh = Cache(tmp_path / "pull-cache")
        got = pull(
            ref(r.host, "base/docker:1"),
            platform=ARM64,
            ctx=Context(fresh, given_http=Http()),
            credentials=NO_CREDENTIALS,
        )
        assert got.media_type == DOCKER_MANIFEST and got.platform == ARM64
        assert {lay.media_type for lay in got.layers} == {DOCKER_LAYER_GZIP}
        assert [(lay.digest, lay.diff_id) for lay in got.layers] == [
            (lay.digest, lay.diff_id) for lay in arm.layers
        ]
        for lay in got.layers:
            assert hashlib.sha256(lay.path.read_bytes()).hexdigest() == lay.digest.removeprefix("sha256:")

        with pytest.raises(
            RegistryError, match=r"no image for linux/s390x \(it has: linux/amd64, linux/arm64/v8\)"
        ):
            pull(
                ref(r.host, "base/docker:1"),
                platform=Platform("s390x"),
                ctx=Context(fresh, given_http=Http()),
                credentials=NO_CREDENTIALS,
            )
    # the registry is gone: a pinned digest comes from the cache alone, a tag needs the registry
    pinned = ref(r.host, f"base/docker@{list_digest}")
    again = pull(
        pinned, platform=ARM64, ctx=Context(fresh, given_http=fast_http()), credentials=NO_CREDENTIALS
    )
    assert again == got
    # ... unless the tag was resolved recently enough for the caller
    assert (
        pull(
            ref(r.host, "base/docker:1"),
            platform=ARM64,
            ctx=Context(fresh, given_http=fast_http()),
            credentials=NO_CREDENTIALS,
            max_age=3600,
        )
        == got
    )
    with pytest.raises(RegistryError, match="is the registry running"):
        pull(
            ref(r.host, "base/docker:1"),
            platform=ARM64,
            ctx=Context(fresh, given_http=fast_http()),
            credentials=NO_CREDENTIALS,
        )


def test_pull_verifies_blobs_while_streaming(tmp_path: Path, cache: Cache) -> None:
    img = image(cache, text="verify")
    with registry(tmp_path / "reg") as r:
        push([img], ref(r.host, "v/app:1"), ctx=Context(cache, given_http=Http()), credentials=NO_CREDENTIALS)
        proxy = Proxy(r.host)
        try:
            top = img.layers[-1].digest
            fresh = Cache(tmp_path / "fresh")
            # same length, different bytes
            proxy.tamper = lambda m, p, body: bytes([body[0] ^ 1]) + body[1:] if p.endswith(top) else body
            with pytest.raises(HashMismatch) as mismatch:
                pull(
                    ref(proxy.host, "v/app:1"),
                    platform=AMD64,
                    ctx=Context(fresh, given_http=Http()),
                    credentials=NO_CREDENTIALS,
                )
            assert mismatch.value.expected == top and "poetry lock" not in str(mismatch.value)
            assert not fresh.has_blob(top.removeprefix("sha256:"))
            proxy.tamper = lambda m, p, body: body + b"x" if p.endswith(top) else body
            with pytest.raises(RegistryError, match="more bytes"):
                pull(
                    ref(proxy.host, "v/app:1"),
                    platform=AMD64,
                    ctx=Context(fresh, given_http=Http()),
                    credentials=NO_CREDENTIALS,
                )
            proxy.tamper = None
            got = pull(
                ref(proxy.host, "v/app:1"),
                platform=AMD64,
                ctx=Context(fresh, given_http=Http()),
                credentials=NO_CREDENTIALS,
            )
            assert [lay.digest for lay in got.layers] == [lay.digest for lay in img.layers]
            # everything cached: a pull by tag costs one manifest request and nothing else
            proxy.seen.clear()
            pull(
                ref(proxy.host, "v/app:1"),
                platform=AMD64,
                ctx=Context(fresh, given_http=Http()),
                credentials=NO_CREDENTIALS,
            )
            assert [(s.method, "/manifests/" in s.path) for s in proxy.seen] == [
                ("GET", False),
                ("GET", True),
            ]
        finally:
            proxy.close()


# -- pushing -------------------------------------------------------------------------------------


def test_multi_platform_push_makes_an_index(tmp_path: Path, cache: Cache) -> None:
    amd, arm = image(cache, text="amd"), image(cache, text="arm", platform=ARM64)
    with registry(tmp_path / "reg") as r:
        out = push(
            [amd, arm],
            ref(r.host, "multi/app:2"),
            ctx=Context(cache, given_http=Http()),
            credentials=NO_CREDENTIALS,
        )
        raw = run(
            [tool("skopeo"), "inspect", "--raw", "--tls-verify=false", f"docker://{r.host}/multi/app:2"]
        ).stdout
        index = json.loads(raw)
        assert out == f"{r.host}/multi/app@sha256:{sha256_hex(raw.encode())}"
        assert [(m["digest"], m["platform"]["architecture"]) for m in index["manifests"]] == [
            (amd.digest, "amd64"),
            (arm.digest, "arm64"),
        ]
        got = pull(
            ref(r.host, "multi/app:2"),
            platform=ARM64,
            ctx=Context(Cache(tmp_path / "c"), given_http=Http()),
            credentials=NO_CREDENTIALS,
        )
        assert got.digest == arm.digest  # slimline's own canonical config survives the round trip
        with pulled(r, "multi/app:2") as name:  # podman picks the amd64 manifest of the index
            assert podman_run(name, flags=["--pull=never"]).stdout.strip() == "amd"


def test_chunked_upload_of_large_blobs(tmp_path: Path, cache: Cache) -> None:
    img = image(cache, text="chunks")
    with registry(tmp_path / "reg") as r:
        proxy = Proxy(r.host)
        try:
            out = push(
                [img],
                ref(proxy.host, "big/app:1"),
                ctx=Context(cache, given_http=Http()),
                credentials=NO_CREDENTIALS,
                chunked_above=64 << 10,
                chunk_size=256 << 10,
            )
            busybox_layer = img.layers[0]
            assert proxy.count("PATCH") == -(-busybox_layer.size // (256 << 10))
            assert proxy.count("PUT", "/blobs/uploads/") == 3  # two monolithic uploads + one closing PUT
            assert out.endswith(img.digest) and skopeo_digest(r, "big/app:1") == img.digest
        finally:
            proxy.close()
        got = pull(
            ref(r.host, "big/app:1"),
            platform=AMD64,
            ctx=Context(Cache(tmp_path / "c"), given_http=Http()),
            credentials=NO_CREDENTIALS,
        )
        assert got.layers[0].path.read_bytes() == busybox_layer.path.read_bytes()


def test_a_blob_bigger_than_a_document_is_checked_with_head_on_a_second_push(
    tmp_path: Path, cache: Cache
) -> None:
    """Each layer is checked with a HEAD whose Content-Length is the blob's: over the cap on
    documents read whole, and no body to read."""
    files = TreeBuilder()
    files.data("big.bin", random.Random(7).randbytes(3 << 20))  # incompressible
    big = layers.write(files.freeze(), cache=cache)
    assert big.size > 2 << 20
    img = Image(platform=AMD64, layers=(big,), config=Config(), history=(History("big"),))
    with registry(tmp_path / "reg") as r:
        for tag in ("1", "2"):
            ctx = Context(cache, given_http=Http())
            out = push([img], ref(r.host, f"big/blob:{tag}"), ctx=ctx, credentials=NO_CREDENTIALS)
            assert out.endswith(img.digest)


def test_blobs_are_mounted_across_repositories(tmp_path: Path, cache: Cache) -> None:
    img = image(cache, text="mount")
    with registry(tmp_path / "reg") as r:
        push(
            [img], ref(r.host, "one/app:1"), ctx=Context(cache, given_http=Http()), credentials=NO_CREDENTIALS
        )
        proxy = Proxy(r.host)
        try:
            proxy_cache = Cache(tmp_path / "pc")
            push(
                [img],
                ref(proxy.host, "one/app:1"),
                ctx=Context(proxy_cache, given_http=Http()),
                credentials=NO_CREDENTIALS,
            )
            proxy.seen.clear()
            out = push(
                [img],
                ref(proxy.host, "two/app:1"),
                ctx=Context(proxy_cache, given_http=Http()),
                credentials=NO_CREDENTIALS,
            )
            assert proxy.count("POST", "mount=", status=201) == 3
            assert proxy.blob_uploads() == 0
            assert out.endswith(img.digest) and skopeo_digest(r, "two/app:1") == img.digest
        finally:
            proxy.close()


# -- failures ------------------------------------------------------------------------------------


def test_unknown_repository_and_tag(tmp_path: Path, cache: Cache) -> None:
    with registry(tmp_path / "reg") as r:
        push(
            [image(cache)],
            ref(r.host, "known/app:1"),
            ctx=Context(cache, given_http=Http()),
            credentials=NO_CREDENTIALS,
        )
        with pytest.raises(RegistryError) as err:
            pull(
                ref(r.host, "nobody/here:1"),
                platform=AMD64,
                ctx=Context(cache, given_http=Http()),
                credentials=NO_CREDENTIALS,
            )
        assert (err.value.status, err.value.code) == (404, "NAME_UNKNOWN")
        assert err.value.repository == "nobody/here" and "does not exist" in str(err.value)
        with pytest.raises(RegistryError) as err:
            pull(
                ref(r.host, "known/app:2"),
                platform=AMD64,
                ctx=Context(cache, given_http=Http()),
                credentials=NO_CREDENTIALS,
            )
        assert (err.value.status, err.value.code) == (404, "MANIFEST_UNKNOWN")
        assert "has no '2'; it has: 1" in str(err.value)


def test_registry_down(cache: Cache) -> None:
    host = f"127.0.0.1:{free_port()}"
    with pytest.raises(RegistryError) as err:
        push(
            [image(cache)],
            ref(host, "a/b:1"),
            ctx=Context(cache, given_http=fast_http()),
            credentials=NO_CREDENTIALS,
        )
    assert err.value.status == 0 and err.value.registry == host
    assert "is the registry running? check the host and port" in str(err.value)


def test_server_errors_are_retried(tmp_path: Path, cache: Cache) -> None:
    img = image(cache, text="retry")
    with registry(tmp_path / "reg") as r:
        proxy = Proxy(r.host)
        try:
            target = ref(proxy.host, "flaky/app:1")
            proxy.fail(2, 500, when=lambda m, p: m == "PUT" and "/manifests/" in p)
            assert push(
                [img], target, ctx=Context(cache, given_http=Http()), credentials=NO_CREDENTIALS
            ).endswith(img.digest)
            assert [s.status for s in proxy.seen if s.method == "PUT" and "/manifests/" in s.path] == [
                500,
                500,
                201,
            ]

            proxy.fail(2, 500, when=lambda m, p: m == "GET" and "/manifests/" in p)
            proxy.fail(1, 429, when=lambda m, p: m == "GET" and "/blobs/" in p, headers={"Retry-After": "1"})
            start = time.monotonic()
            got = pull(
                target,
                platform=AMD64,
                ctx=Context(Cache(tmp_path / "c"), given_http=Http()),
                credentials=NO_CREDENTIALS,
            )
            assert time.monotonic() - start >= 1.0  # Retry-After was honoured
            assert got.digest == img.digest
            assert (
                proxy.count("GET", "/manifests/", status=500) == 2
                and proxy.count("GET", "/blobs/", status=429) == 1
            )

            proxy.fail(10, 503, when=lambda m, p: "/manifests/" in p)
            with pytest.raises(RegistryError) as err:
                pull(
                    target,
                    platform=AMD64,
                    ctx=Context(Cache(tmp_path / "c2"), given_http=fast_http()),
                    credentials=NO_CREDENTIALS,
                )
            assert err.value.status == 503 and "try again later" in str(err.value)
        finally:
            proxy.close()


def test_push_to_a_digest_is_refused(cache: Cache) -> None:
    digest = "sha256:" + "0" * 64
    with pytest.raises(RegistryError, match="pushed to a tag"):
        push(
            [image(cache)],
            ref("127.0.0.1:1", f"a/b@{digest}"),
            ctx=Context(cache, given_http=fast_http()),
            credentials=NO_CREDENTIALS,
        )
