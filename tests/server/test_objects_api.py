"""The objects protocol and the routes that refer to objects, attacked with raw HTTP.

Whatever a client sends, the server stores only bytes that hash to their name, refuses
paths that could leave a folder, refuses metadata naming objects it lacks, stays within
its size limits, leaves no temporary files behind, and never answers 500.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from ctloop.testing import running_server

UPLOAD_LIMIT = 1000
BODY_LIMIT = 4096


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def manifest(entries: list[dict[str, Any]]) -> bytes:
    """Canonical manifest bytes, written here without ctloop's code."""
    return json.dumps(
        sorted(entries, key=lambda e: e["path"]),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode()


@dataclass
class Server:
    url: str
    store: Path

    @property
    def api(self) -> str:
        return self.url + "/api/v1"

    def objects(self) -> list[Path]:
        root = self.store / "artifacts" / "objects"
        return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []

    def temporaries(self) -> list[Path]:
        root = self.store / "artifacts" / "tmp"
        return sorted(root.iterdir()) if root.exists() else []

    def put(self, digest: str, body: Any, **kwargs: Any) -> httpx.Response:
        return httpx.put(f"{self.api}/objects/sha256/{digest}", content=body, **kwargs)


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    monkeypatch.setenv("CTLOOP_SERVER_MAX_UPLOAD_BYTES", str(UPLOAD_LIMIT))
    monkeypatch.setenv("CTLOOP_SERVER_MAX_MANIFEST_BYTES", str(UPLOAD_LIMIT))
    monkeypatch.setenv("CTLOOP_SERVER_MAX_BODY_BYTES", str(BODY_LIMIT))
    store = tmp_path / "store"
    with running_server(str(store)) as url:
        yield Server(url, store)


@pytest.fixture
def run_id(server: Server) -> Iterator[str]:
    """A run in the served store, made through the local backend of the same store."""
    from ctloop import Client

    with Client(store=str(server.store)) as local:
        yield local.runs.create("exp", capture_code=False).id


def error(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == code
    return str(body["error"]["message"])


# --- files ------------------------------------------------------------------------------


def test_upload_is_stored_once_and_downloads_back(server: Server) -> None:
    data = b"hello objects"
    digest = sha(data)
    missing = httpx.post(f"{server.api}/objects/missing", json={"objects": [{"digest": digest}]})
    assert missing.json() == {
        "missing": [{"digest": digest, "kind": "file"}],
        "max_upload_bytes": UPLOAD_LIMIT,
    }
    first = server.put(digest, data)
    assert first.status_code == 201
    assert first.json() == {
        "digest": digest,
        "kind": "file",
        "size": len(data),
        "file_count": 1,
        "existed": False,
    }
    again = server.put(digest, data)
    assert again.status_code == 200 and again.json()["existed"] is True
    got = httpx.get(f"{server.api}/objects/sha256/{digest}")
    assert got.status_code == 200 and got.content == data
    assert got.headers["etag"] == f'"{digest}"'
    missing = httpx.post(f"{server.api}/objects/missing", json={"objects": [{"digest": digest}]})
    assert missing.json()["missing"] == []
    assert len(server.objects()) == 1 and server.temporaries() == []


def test_bytes_that_do_not_hash_to_the_digest_are_refused(server: Server) -> None:
    message = error(server.put(sha(b"what I claim"), b"what I send"), 422, "INTEGRITY_ERROR")
    assert sha(b"what I send") in message and "nothing was stored" in message
    assert server.objects() == [] and server.temporaries() == []


def test_a_re_upload_of_an_existing_object_cannot_replace_it(server: Server) -> None:
    data = b"the real bytes"
    assert server.put(sha(data), data).status_code == 201
    assert server.put(sha(data), b"evil bytes!!!!").status_code == 200
    assert httpx.get(f"{server.api}/objects/sha256/{sha(data)}").content == data


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
def test_uploads_over_the_limit_are_refused_and_leave_nothing(
    server: Server, declared: bool
) -> None:
    data = b"x" * (UPLOAD_LIMIT + 1)

    def pieces() -> Iterator[bytes]:
        for i in range(0, len(data), 100):
            yield data[i : i + 100]

    body: Any = data if declared else pieces()
    message = error(server.put(sha(data), body), 413, "PAYLOAD_TOO_LARGE")
    assert str(UPLOAD_LIMIT) in message and "CTLOOP_SERVER_MAX_UPLOAD_BYTES" in message
    assert server.objects() == [] and server.temporaries() == []
    # exactly at the limit is fine
    ok = b"y" * UPLOAD_LIMIT
    assert server.put(sha(ok), ok).status_code == 201


@pytest.mark.parametrize(
    "name", ["abc", "A" * 64, "g" * 64, "a" * 63, "a" * 65, "a" * 64 + ".zip", "%2e%2e", "%00"]
)
def test_malformed_digests_are_400(server: Server, name: str) -> None:
    put = httpx.put(f"{server.api}/objects/sha256/{name}", content=b"x")
    assert "invalid object name" in error(put, 400, "INVALID_INPUT")
    error(httpx.get(f"{server.api}/objects/sha256/{name}"), 400, "INVALID_INPUT")
    body = {"objects": [{"digest": name, "kind": "file"}]}
    error(httpx.post(f"{server.api}/objects/missing", json=body), 400, "INVALID_INPUT")
    assert server.objects() == [] and server.temporaries() == []


def test_missing_refuses_unknown_kinds_and_too_many_objects(server: Server) -> None:
    bad_kind = {"objects": [{"digest": "a" * 64, "kind": "zip"}]}
    error(httpx.post(f"{server.api}/objects/missing", json=bad_kind), 400, "INVALID_INPUT")
    many = {"objects": [{"digest": f"{i:064x}"} for i in range(10_001)]}
    response = httpx.post(f"{server.api}/objects/missing", json=many)
    assert response.status_code in (400, 413)  # over the count, and over the body limit


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
def test_json_bodies_over_the_limit_are_413(server: Server, declared: bool) -> None:
    body = json.dumps({"objects": [{"digest": "a" * 64}] * 100}).encode()
    assert len(body) > BODY_LIMIT
    content: Any = body if declared else iter([body[:2000], body[2000:]])
    response = httpx.post(
        f"{server.api}/objects/missing",
        content=content,
        headers={"Content-Type": "application/json"},
    )
    assert "CTLOOP_SERVER_MAX_BODY_BYTES" in error(response, 413, "PAYLOAD_TOO_LARGE")


def test_unknown_objects_are_404(server: Server) -> None:
    for name in ("a" * 64, "a" * 64 + ".dir"):
        message = error(httpx.get(f"{server.api}/objects/sha256/{name}"), 404, "NOT_FOUND")
        assert name in message


# --- folder manifests -------------------------------------------------------------------


def test_manifest_is_accepted_only_once_its_files_are_stored(server: Server) -> None:
    a, b = b"alpha", b"beta"
    entries = [
        {"path": "a.txt", "sha256": sha(a), "size": len(a)},
        {"path": "sub/b.txt", "sha256": sha(b), "size": len(b)},
    ]
    data = manifest(entries)
    assert server.put(sha(a), a).status_code == 201
    message = error(server.put(sha(data) + ".dir", data), 409, "CONFLICT")
    assert sha(b) in message and sha(a) not in message
    assert not any(p.name.endswith(".dir") for p in server.objects())
    assert server.put(sha(b), b).status_code == 201
    stored = server.put(sha(data) + ".dir", data)
    assert stored.status_code == 201
    assert stored.json() == {
        "digest": sha(data),
        "kind": "dir",
        "size": len(a) + len(b),
        "file_count": 2,
        "existed": False,
    }
    got = httpx.get(f"{server.api}/objects/sha256/{sha(data)}.dir")
    assert got.status_code == 200 and got.content == data
    assert server.temporaries() == []


@pytest.mark.parametrize(
    "path",
    ["../escape.txt", "a/../../escape.txt", "/etc/passwd", "a\x00b", "C:/x", "a\\b", ""],
)
def test_manifest_paths_that_could_escape_are_400(server: Server, path: str) -> None:
    data_bytes = b"payload"
    assert server.put(sha(data_bytes), data_bytes).status_code in (200, 201)
    data = manifest([{"path": path, "sha256": sha(data_bytes), "size": len(data_bytes)}])
    error(server.put(sha(data) + ".dir", data), 400, "INVALID_INPUT")
    assert not any(p.name.endswith(".dir") for p in server.objects())


def test_manifest_that_lies_is_refused(server: Server) -> None:
    a = b"alpha"
    assert server.put(sha(a), a).status_code == 201
    good = manifest([{"path": "a.txt", "sha256": sha(a), "size": len(a)}])
    # bytes that are not the named digest
    error(server.put(sha(b"other") + ".dir", good), 422, "INTEGRITY_ERROR")
    # a size that is not the object's
    lying = manifest([{"path": "a.txt", "sha256": sha(a), "size": 999}])
    error(server.put(sha(lying) + ".dir", lying), 422, "INTEGRITY_ERROR")
    # not canonical (spaces), not a list, duplicate paths, a file that is also a folder
    for body in (
        json.dumps([{"path": "a.txt", "sha256": sha(a), "size": len(a)}]).encode(),
        b'{"path": "a.txt"}',
        b"not json",
        manifest([{"path": "a.txt", "sha256": sha(a), "size": len(a)}] * 2),
        manifest(
            [
                {"path": "a.txt", "sha256": sha(a), "size": len(a)},
                {"path": "a.txt/b", "sha256": sha(a), "size": len(a)},
            ]
        ),
        manifest([{"path": "a.txt", "sha256": "A" * 64, "size": len(a)}]),
    ):
        error(server.put(sha(body) + ".dir", body), 400, "INVALID_INPUT")
    too_big = manifest([{"path": f"f{i:05}", "sha256": sha(a), "size": len(a)} for i in range(20)])
    error(server.put(sha(too_big) + ".dir", too_big), 413, "PAYLOAD_TOO_LARGE")
    assert not any(p.name.endswith(".dir") for p in server.objects())


# --- run artifacts ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["../x", "a/../../x", "/etc/passwd", "a\x00b", "", "a\\b", "x" * 1025]
)
def test_artifact_paths_that_could_escape_are_400(server: Server, run_id: str, path: str) -> None:
    data = b"artifact"
    assert server.put(sha(data), data).status_code == 201
    body = {"path": path, "digest": sha(data), "kind": "file"}
    error(httpx.post(f"{server.api}/runs/{run_id}/artifacts", json=body), 400, "INVALID_INPUT")


@pytest.mark.parametrize(
    "suffix", ["%2e%2e/x", "a/%2e%2e/%2e%2e/x", "%2Fetc/passwd", "/etc/passwd", "a%00b", "%2e%2e"]
)
def test_artifact_lookups_that_could_escape_are_400(
    server: Server, run_id: str, suffix: str
) -> None:
    response = httpx.get(f"{server.api}/runs/{run_id}/artifacts/{suffix}")
    error(response, 400, "INVALID_INPUT")


def test_artifact_must_name_an_object_of_this_store(server: Server, run_id: str) -> None:
    data = b"artifact bytes"
    body = {"path": "model/weights.bin", "digest": sha(data), "kind": "file"}
    url = f"{server.api}/runs/{run_id}/artifacts"
    message = error(httpx.post(url, json=body), 409, "CONFLICT")
    assert sha(data) in message
    error(httpx.post(url, json={**body, "kind": "dir"}), 409, "CONFLICT")
    error(httpx.post(url, json={**body, "digest": "nothex"}), 400, "INVALID_INPUT")
    error(httpx.post(url, json={**body, "kind": "zip"}), 400, "INVALID_INPUT")
    error(httpx.post(f"{server.api}/runs/nope/artifacts", json=body), 404, "NOT_FOUND")
    assert server.put(sha(data), data).status_code == 201
    # the client's numbers are not asked for, and ignored when sent
    made = httpx.post(url, json={**body, "size": 10**12, "file_count": 7})
    assert made.status_code == 201
    assert made.json() == {
        "path": "model/weights.bin",
        "digest": sha(data),
        "kind": "file",
        "size": len(data),
        "file_count": 1,
    }
    got = httpx.get(f"{url}/model/weights.bin")
    assert got.status_code == 200 and got.json() == made.json()
    message = error(httpx.get(f"{url}/model/other.bin"), 404, "NOT_FOUND")
    assert message == (
        f"run {run_id} has no artifact 'model/other.bin'; see its artifacts with: "
        f"ctloop runs show {run_id}"
    )


# --- dataset versions -------------------------------------------------------------------


def test_dataset_version_must_name_an_object_of_this_store(server: Server) -> None:
    data = b"a,b\n1,2\n"
    url = f"{server.api}/datasets/churn/versions"
    body = {"digest": sha(data), "kind": "file", "format": "csv"}
    assert sha(data) in error(httpx.post(url, json=body), 409, "CONFLICT")
    error(httpx.get(f"{server.api}/datasets/churn"), 404, "NOT_FOUND")  # nothing was made
    error(httpx.post(url, json={**body, "digest": "x"}), 400, "INVALID_INPUT")
    error(httpx.post(url, json={**body, "format": "xlsx"}), 400, "INVALID_INPUT")
    error(httpx.post(url, json={**body, "row_count": -1}), 400, "INVALID_INPUT")
    bad_name = f"{server.api}/datasets/bad%20name/versions"
    error(httpx.post(bad_name, json=body), 400, "INVALID_INPUT")
    assert server.put(sha(data), data).status_code == 201
    made = httpx.post(url, json={**body, "size": 10**12, "row_count": 1})
    assert made.status_code == 201
    v = made.json()
    assert (v["version"], v["size"], v["file_count"], v["is_new"]) == (1, len(data), 1, True)
    again = httpx.post(url, json=body)
    assert again.status_code == 200 and again.json()["version"] == 1
    assert again.json()["is_new"] is False


# --- downloads are verified by the client -----------------------------------------------


def test_a_corrupted_object_on_the_server_is_caught_by_the_client(
    server: Server, tmp_path: Path
) -> None:
    from ctloop import Client
    from ctloop.client import _transfer
    from ctloop.errors import IntegrityError

    data = b"precious bytes"
    assert server.put(sha(data), data).status_code == 201
    (obj,) = server.objects()
    obj.chmod(0o644)
    obj.write_bytes(b"rotten bytes!!")
    dest = tmp_path / "out" / "file.bin"
    with Client(store=server.url) as remote, pytest.raises(IntegrityError, match=sha(data)):
        _transfer.download(remote._ctx, sha(data), "file", dest)
    assert list((tmp_path / "out").iterdir()) == []


# --- a server whose artifact store is S3 ------------------------------------------------


@pytest.mark.s3
def test_uploads_to_a_server_on_s3_are_verified_before_the_put(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, s3_endpoint: str, s3_bucket: str
) -> None:
    import tempfile

    from ctloop import Client

    monkeypatch.setenv("CTLOOP_S3_ENDPOINT_URL", s3_endpoint)
    monkeypatch.setenv("CTLOOP_SERVER_MAX_UPLOAD_BYTES", str(UPLOAD_LIMIT))
    spool = tmp_path / "spool"  # where the server keeps partial uploads for S3
    spool.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spool))
    folder = tmp_path / "events"
    files = {"a.csv": b"v\n1\n2\n", "deep/b.bin": bytes(range(256)) * 3}
    for rel, content in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(content)
    with running_server(str(tmp_path / "meta"), artifacts=s3_bucket) as url:
        api = url + "/api/v1"
        bad = httpx.put(f"{api}/objects/sha256/{sha(b'claimed')}", content=b"sent")
        error(bad, 422, "INTEGRITY_ERROR")
        big = b"z" * (UPLOAD_LIMIT + 1)
        error(httpx.put(f"{api}/objects/sha256/{sha(big)}", content=big), 413, "PAYLOAD_TOO_LARGE")
        for digest in (sha(b"claimed"), sha(b"sent"), sha(big)):
            assert httpx.get(f"{api}/objects/sha256/{digest}").status_code == 404
        assert list(spool.iterdir()) == []
        with Client(store=url) as remote:
            v = remote.datasets.add(folder, "events")
            assert (v.kind, v.file_count, v.size) == ("dir", 2, sum(map(len, files.values())))
            back = remote.datasets.download("events@1", tmp_path / "restored")
        got = {
            p.relative_to(back).as_posix(): p.read_bytes() for p in back.rglob("*") if p.is_file()
        }
        assert got == files
        assert list(spool.iterdir()) == []
