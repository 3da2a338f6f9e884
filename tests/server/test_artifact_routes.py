"""The server's artifact routes over a real socket: ranges, conditional requests, uploads that are
refused or broken off (nothing left behind), bounded server memory, downloads and uploads that
survive dropped connections, presigned downloads when the artifact store is S3, dataset files."""

from __future__ import annotations

import hashlib
import io
import json
import os
import socket
import subprocess
import sys
import time
import tracemalloc
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pyarrow.parquet as pq
import pytest

from _artifact_keys import all_keys
from _blake3 import b3, blob_key
from _flaky_proxy import FlakyProxy
from _live_server import LiveServer
from _s3 import s3_server  # noqa: F401  (a fixture)
from mloop.artifacts import BlobStore, dataset_digest, load_dataset, store_dataset, to_arrow_table
from mloop.errors import InvalidInputError
from mloop.server import create_app
from mloop.store import create_store

API = "/api/v1"


def _serve(backing: BlobStore, **options: Any) -> LiveServer:
    """The server's app (its error shapes included) over a throwaway metadata store."""
    return LiveServer(create_app(create_store("sqlite://"), artifacts=backing, **options))


@pytest.fixture
def backing(tmp_path: Path) -> BlobStore:
    return BlobStore(tmp_path / "server-artifacts")


@pytest.fixture
def server(backing: BlobStore, tmp_path: Path) -> Iterator[LiveServer]:
    with _serve(backing, staging_dir=tmp_path / "staging") as s:
        yield s


def _eventually_empty(store: BlobStore) -> list[str]:
    deadline = time.monotonic() + 10
    while all_keys(store) and time.monotonic() < deadline:
        time.sleep(0.02)
    return all_keys(store)


def test_ranges_conditional_requests_and_head(server: LiveServer, backing: BlobStore) -> None:
    data = os.urandom(1000)
    sha, _ = backing.put_bytes(data)
    url = f"{server.url}{API}/blobs/{sha}"

    def get(**headers: str) -> httpx.Response:
        return httpx.get(url, headers=headers)

    whole = get()
    assert whole.status_code == 200 and whole.content == data
    assert whole.headers["etag"] == f'"{sha}"' and whole.headers["accept-ranges"] == "bytes"
    for spec, first, last in [
        ("bytes=10-19", 10, 19),
        ("bytes=-5", 995, 999),
        ("bytes=990-", 990, 999),
        ("bytes=0-99999", 0, 999),  # past the end: clipped
        ("bytes=-5000", 0, 999),  # a suffix longer than the file: all of it
        ("bytes=999-999", 999, 999),
    ]:
        r = get(Range=spec)
        assert r.status_code == 206, spec
        assert r.content == data[first : last + 1], spec
        assert r.headers["content-range"] == f"bytes {first}-{last}/1000", spec
        assert r.headers["content-length"] == str(last - first + 1)
    for spec in ["bytes=1000-", "bytes=5000-6000", "bytes=5-2", "bytes=abc", "bytes=-0", "bytes=-"]:
        r = get(Range=spec)
        assert r.status_code == 416, spec
        assert r.headers["content-range"] == "bytes */1000", spec
        assert r.json()["error_code"] == "RANGE_NOT_SATISFIABLE", spec
    # several ranges, an unknown unit, or an If-Range for another version: the whole file
    for headers in [{"Range": "bytes=0-1,5-6"}, {"Range": "items=0-1"}]:
        assert get(**headers).status_code == 200
    assert get(Range="bytes=0-1", **{"If-Range": '"other"'}).content == data
    assert get(Range="bytes=0-1", **{"If-Range": f'"{sha}"'}).content == data[:2]
    assert get(**{"If-None-Match": f'"{sha}"'}).status_code == 304
    head = httpx.head(url)
    assert head.status_code == 200 and head.headers["content-length"] == "1000"
    assert head.content == b""
    missing = hashlib.sha256(b"nope").hexdigest()
    assert httpx.head(f"{server.url}{API}/blobs/{missing}").status_code == 404
    r = httpx.get(f"{server.url}{API}/blobs/{missing}")
    assert r.status_code == 404 and r.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    assert missing in r.json()["message"] and str(backing.uri) not in r.json()["message"]
    r = httpx.get(f"{server.url}{API}/blobs/..%2F..%2Fetc%2Fpasswd")
    assert r.status_code in (400, 404) and b"root:" not in r.content
    r = httpx.get(f"{server.url}{API}/blobs/{'A' * 64}")
    assert r.status_code == 400 and "sha256" in r.json()["message"]


def test_an_upload_that_does_not_hash_to_its_name_leaves_nothing(
    server: LiveServer, backing: BlobStore
) -> None:
    named = hashlib.sha256(b"what the client announced").hexdigest()
    r = httpx.put(f"{server.url}{API}/blobs/{named}", content=b"something else")
    assert r.status_code == 400
    doc = r.json()
    assert doc["error_code"] == "INVALID_PARAMETER_VALUE"
    assert doc["details"]["actual_sha256"] == hashlib.sha256(b"something else").hexdigest()
    assert "nothing was stored" in doc["message"]
    assert all_keys(backing) == []
    # the client raises the same class, with the server's message
    with pytest.raises(InvalidInputError, match="nothing was stored"):
        BlobStore(server.url).put_stream(io.BytesIO(b"something else"), expected_sha256=named)
    assert all_keys(backing) == []


def test_an_upload_broken_off_mid_body_leaves_nothing(
    server: LiveServer, backing: BlobStore
) -> None:
    sha = hashlib.sha256(b"x" * (10 << 20)).hexdigest()
    with socket.create_connection(("127.0.0.1", server.port)) as s:
        s.sendall(
            f"PUT {API}/blobs/{sha} HTTP/1.1\r\nHost: x\r\nContent-Length: {10 << 20}\r\n"
            "Content-Type: application/octet-stream\r\n\r\n".encode()
        )
        s.sendall(b"x" * (3 << 20))
        deadline = time.monotonic() + 10
        while not all_keys(backing) and time.monotonic() < deadline:
            time.sleep(0.01)  # the server is writing it under a temporary name
        assert all_keys(backing) and all(k.startswith("tmp/") for k in all_keys(backing))
    assert _eventually_empty(backing) == []
    assert not backing.exists(sha)


_UPLOADER = """
import sys, httpx
url, path = sys.argv[1], sys.argv[2]
with open(path, "rb") as f:
    r = httpx.put(url, content=f, timeout=120)
print(r.status_code, r.text)
"""


@pytest.mark.slow
def test_a_large_upload_is_streamed_through_the_server(
    server: LiveServer, backing: BlobStore, tmp_path: Path
) -> None:
    """The server holds a small, bounded part of a 64 MB upload at a time (measured with
    tracemalloc in this process, where the server runs; the client is another process)."""
    src = tmp_path / "big.bin"
    block = os.urandom(1 << 20)
    h = hashlib.sha256()
    with open(src, "wb") as f:
        for i in range(64):
            piece = i.to_bytes(8, "little") + block[8:]
            h.update(piece)
            f.write(piece)
    sha = h.hexdigest()
    tracemalloc.start()
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _UPLOADER, f"{server.url}{API}/blobs/{sha}", str(src)],
            capture_output=True,
            text=True,
            timeout=240,
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert proc.stdout.startswith("200"), proc.stdout + proc.stderr
    assert backing.size(sha) == 64 << 20
    assert peak < 12 << 20, f"server peak {peak / 2**20:.1f} MiB for a 64 MiB upload"


def test_downloads_resume_after_dropped_connections(
    server: LiveServer, backing: BlobStore, tmp_path: Path
) -> None:
    data = os.urandom(3 << 20)
    sha, _ = backing.put_bytes(data)
    with FlakyProxy(server.port, drops=2, cut_after=700_000) as proxy:
        client = BlobStore(proxy.url)
        dest = tmp_path / "out.bin"
        client.get_to_path(sha, dest)
        assert dest.read_bytes() == data
        assert proxy.cut == 2 and proxy.connections >= 3  # two cut, resumed with Range
    with FlakyProxy(server.port, drops=1, cut_after=1_500_000) as proxy:
        with BlobStore(proxy.url).open(sha) as f:  # the stream resumes too, and is verified
            assert f.read() == data
        assert proxy.cut == 1
    assert sorted(os.listdir(tmp_path)) == ["out.bin", "server-artifacts"]  # no .part left


def test_uploads_are_retried_after_dropped_connections(
    server: LiveServer, backing: BlobStore, tmp_path: Path
) -> None:
    src = tmp_path / "model.bin"
    src.write_bytes(os.urandom(2 << 20))
    with FlakyProxy(server.port, drops=2, cut_after=500_000, cut_upload=True) as proxy:
        sha, size = BlobStore(proxy.url).put_file(src)
        assert proxy.cut == 2
    assert (sha, size) == (b3(src.read_bytes()), 2 << 20)
    assert backing.size(sha) == size
    assert all_keys(backing) == [blob_key(sha)]  # no temp file of a broken try


def test_a_large_upload_resumes_where_the_connection_dropped(
    server: LiveServer, backing: BlobStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the size for sessions, a dropped upload costs only what was in flight: the client asks
    the server how much it holds and sends the rest (a 6 MiB file here, cut twice)."""
    from mloop.artifacts import _remote

    monkeypatch.setattr(_remote, "_RESUMABLE_FROM", 1 << 20)
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(6 << 20))
    with FlakyProxy(server.port, drops=2, cut_after=2_500_000, cut_upload=True) as proxy:
        sha, size = BlobStore(proxy.url).put_file(src)
        assert proxy.cut == 2
        sent = proxy.bytes_up
    assert (sha, size) == (b3(src.read_bytes()), 6 << 20)
    assert backing.size(sha) == size
    assert sent < size + (3 << 20)  # resumed, not restarted (a restart would send 2-3x)
    assert list((tmp_path / "staging" / "uploads").iterdir()) == []  # the session is gone
    assert all_keys(backing) == [blob_key(sha)]
    # a second upload of the same content is answered from the store at once
    with FlakyProxy(server.port, drops=0, cut_after=0) as proxy:
        assert BlobStore(proxy.url).put_file(src) == (sha, size)
        assert proxy.bytes_up < 10_000


def test_upload_sessions_refuse_what_does_not_fit(server: LiveServer, backing: BlobStore) -> None:
    url = f"{server.url}{API}/uploads"
    data = os.urandom(3000)
    sha = hashlib.sha256(data).hexdigest()
    made = httpx.post(url, json={"sha256": sha, "size": 3000})
    assert made.status_code == 201
    session = f"{url}/{made.json()['upload_id']}"
    assert httpx.get(session).json() == {"offset": 0, "size": 3000, "sha256": sha}
    r = httpx.patch(session, content=data[:1000], headers={"Upload-Offset": "0"})
    assert r.status_code == 200 and r.json()["offset"] == 1000
    r = httpx.patch(session, content=data[500:], headers={"Upload-Offset": "500"})
    assert r.status_code == 409 and r.json()["details"]["offset"] == 1000  # where to resume
    assert httpx.patch(session, content=b"x").status_code == 400  # no Upload-Offset
    r = httpx.post(f"{session}/complete")
    assert r.status_code == 409 and "send the rest" in r.json()["message"]
    r = httpx.patch(session, content=data[1000:] + b"!", headers={"Upload-Offset": "1000"})
    assert r.status_code == 400 and "past its end" in r.json()["message"]
    # the bytes before the refusal were kept (as after a dropped connection); send the rest
    held = httpx.get(session).json()["offset"]
    r = httpx.patch(session, content=data[held:], headers={"Upload-Offset": str(held)})
    assert r.json()["offset"] == 3000
    assert httpx.post(f"{session}/complete").json() == {"sha256": sha, "size": 3000}
    assert backing.exists(sha)
    assert httpx.get(session).status_code == 404  # done: the session is gone
    # content that does not hash to its name is refused at completion, and nothing is kept
    wrong = httpx.post(url, json={"sha256": hashlib.sha256(b"a").hexdigest(), "size": 1}).json()
    wrong_url = f"{url}/{wrong['upload_id']}"
    httpx.patch(wrong_url, content=b"b", headers={"Upload-Offset": "0"})
    r = httpx.post(f"{wrong_url}/complete")
    assert r.status_code == 400 and "nothing was stored" in r.json()["message"]
    assert not backing.exists(hashlib.sha256(b"a").hexdigest())
    assert httpx.post(url, json={"sha256": sha, "size": 3000}).json()["done"] is True
    for body in [{"sha256": "x", "size": 1}, {"sha256": sha, "size": -1}, {"sha256": sha}, []]:
        assert httpx.post(url, json=body).status_code == 400, body
    assert httpx.get(f"{url}/not-an-id").status_code == 400
    assert httpx.delete(f"{url}/{'0' * 32}").status_code == 404


def test_missing_asks_once_for_many_and_refreshes_the_present(
    server: LiveServer, backing: BlobStore
) -> None:
    have, _ = backing.put_bytes(b"have")
    path = Path(backing.uri.removeprefix("file://")) / blob_key(have)
    os.utime(path, (1_000_000, 1_000_000))
    lack = hashlib.sha256(b"lack").hexdigest()
    r = httpx.post(f"{server.url}{API}/blobs/missing", json={"sha256": [have, lack, lack]})
    assert r.status_code == 200 and r.json() == {"missing": [lack]}
    assert path.stat().st_mtime > time.time() - 60  # GC's grace period starts again
    for body in [{"sha256": ["nope"]}, {"sha256": "x"}, [], {"sha256": [have] * 10_001}]:
        r = httpx.post(f"{server.url}{API}/blobs/missing", json=body)
        assert r.status_code == 400, body
    r = httpx.post(
        f"{server.url}{API}/blobs/missing", content=b"{not json", headers={"Content-Type": "x"}
    )
    assert r.status_code == 400


def test_dataset_files_are_checked_before_they_are_kept(
    server: LiveServer, backing: BlobStore, tmp_path: Path
) -> None:
    table = to_arrow_table({"x": list(range(100)), "s": [str(i) for i in range(100)]})
    digest = dataset_digest(table)
    pq.write_table(table, tmp_path / "d.parquet")
    body = (tmp_path / "d.parquet").read_bytes()
    wrong = hashlib.sha256(b"other").hexdigest()
    r = httpx.put(f"{server.url}{API}/datasets/{wrong}/parquet", content=body)
    assert r.status_code == 400 and r.json()["details"]["actual_sha256"] == digest
    r = httpx.put(f"{server.url}{API}/datasets/{digest}/parquet", content=b"not parquet")
    assert r.status_code == 400
    assert all_keys(backing) == []
    r = httpx.put(f"{server.url}{API}/datasets/{digest}/parquet", content=body)
    assert r.status_code == 200 and r.json() == {"sha256": digest, "num_rows": 100}
    assert all_keys(backing) == [f"datasets/{digest}.parquet"]
    url = f"{server.url}{API}/datasets/{digest}/parquet"
    size = int(httpx.head(url).headers["content-length"])
    tail = httpx.get(url, headers={"Range": "bytes=-8"})  # a Parquet reader's first request
    assert tail.status_code == 206 and tail.content[-4:] == b"PAR1"
    assert tail.headers["content-range"] == f"bytes {size - 8}-{size - 1}/{size}"
    assert load_dataset(BlobStore(server.url), digest, verify=True).equals(table)
    assert httpx.head(f"{server.url}{API}/datasets/{wrong}/parquet").status_code == 404


@pytest.mark.s3
def test_a_server_on_s3_hands_out_presigned_downloads(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    s3 = request.getfixturevalue("s3_server")
    backing = BlobStore(
        f"s3://mloop-test/{uuid.uuid4().hex}", storage_options=dict(s3["storage_options"])
    )
    data = os.urandom(100_000)
    with _serve(backing) as server:
        client = BlobStore(server.url)
        sha, _ = client.put_bytes(data)  # uploads pass through the server (it checks the hash)
        r = httpx.get(f"{server.url}{API}/blobs/{sha}", headers={"Authorization": "Bearer t"})
        assert r.status_code == 307
        location = r.headers["location"]
        assert location.startswith(s3["endpoint"]) and "Signature" in location
        doc = httpx.get(f"{server.url}{API}/blobs/{sha}/url", params={"expires_s": 60}).json()
        assert doc["presigned"] is True and doc["size"] == len(data)
        assert httpx.get(doc["url"]).content == data  # no credentials needed
        assert client.presigned_url(sha) is not None
        ranged = httpx.get(location, headers={"Range": "bytes=10-19"})
        assert ranged.status_code == 206 and ranged.content == data[10:20]
        client.get_to_path(sha, tmp_path / "out.bin")  # follows the redirect, verifies
        assert (tmp_path / "out.bin").read_bytes() == data
        with client.open(sha) as f:
            assert f.read() == data
        bad = httpx.get(f"{server.url}{API}/blobs/{sha}/url", params={"expires_s": "0"})
        assert bad.status_code == 400
    with _serve(backing, presign_s=0) as server:  # clients that cannot reach the bucket
        r = httpx.get(f"{server.url}{API}/blobs/{sha}")
        assert r.status_code == 200 and r.content == data
        doc = httpx.get(f"{server.url}{API}/blobs/{sha}/url").json()
        assert doc["presigned"] is False and doc["url"] == f"{server.url}{API}/blobs/{sha}"
        assert BlobStore(server.url).presigned_url(sha) is None


def test_a_local_server_names_its_own_url(server: LiveServer, backing: BlobStore) -> None:
    sha, _ = backing.put_bytes(b"x")
    doc = httpx.get(f"{server.url}{API}/blobs/{sha}/url").json()
    assert doc == {
        "sha256": sha,
        "size": 1,
        "url": f"{server.url}{API}/blobs/{sha}",
        "presigned": False,
        "expires_at_ms": None,
    }
    store_dataset(BlobStore(server.url), {"a": [1]}, name="d")  # through the server
    r = httpx.get(f"{server.url}{API}/blobs")
    assert r.headers["content-type"] == "application/x-ndjson"
    listing = [json.loads(line) for line in r.text.splitlines()]
    assert [(item["sha256"], item["size"]) for item in listing] == [(sha, 1)]  # blobs only


def test_artifact_routes_under_auth(backing: BlobStore, tmp_path: Path) -> None:
    """Blobs are shared like datasets (a project-scoped token may move them: their names are
    their content); reading needs a read token, storing a write token, listing and deleting an
    admin's; the client sends its token and gets the server's refusals as the same classes."""
    from mloop.errors import PermissionDeniedError, UnauthenticatedError

    store = create_store(f"sqlite:///{tmp_path / 'auth.db'}")
    project = store.create_project("churn")
    secrets = {
        role: store.create_token(f"{role}-bot", role=role).secret
        for role in ("read", "write", "admin")
    }
    scoped = store.create_token("scoped", role="write", project_id=project.id).secret
    app = create_app(store, artifacts=backing, auth=True, staging_dir=tmp_path / "staging")
    with LiveServer(app) as server:
        sha, _ = BlobStore(server.url, token=secrets["write"]).put_bytes(b"model bytes")
        url = f"{server.url}{API}/blobs/{sha}"
        assert httpx.get(url).status_code == 401
        with pytest.raises(UnauthenticatedError):
            BlobStore(server.url).exists(sha)
        reader = BlobStore(server.url, token=secrets["read"])
        with reader.open(sha) as f:
            assert f.read() == b"model bytes"
        with pytest.raises(PermissionDeniedError):
            reader.put_bytes(b"not allowed")
        with pytest.raises(PermissionDeniedError):
            list(BlobStore(server.url, token=secrets["write"]).iter_blobs())
        assert list(BlobStore(server.url, token=secrets["admin"]).iter_blobs()) == [sha]
        scoped_store = BlobStore(server.url, token=scoped)
        assert scoped_store.put_bytes(b"scoped")[0] == b3(b"scoped")
        with pytest.raises(PermissionDeniedError):
            scoped_store.delete(sha)
        assert httpx.get(f"{server.url}/api/v1/health").status_code == 200
    store.close()
