"""Run artifacts behave the same on every backend; over HTTP only what the server lacks moves."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ctloop.errors import InvalidInput, NotFound

FILES = {
    "model.bin": os.urandom(3000),
    "conf/params.json": b'{"depth": 3}',
    "conf/deep/er/notes.txt": b"same bytes",
    "copy-of-notes.txt": b"same bytes",
    "empty.txt": b"",
}


def write_tree(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


def read_tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_file_and_folder_artifacts_round_trip(backend_client: Any, tmp_path: Path) -> None:
    run = backend_client.runs.create("exp", capture_code=False)
    single = tmp_path / "metrics.csv"
    single.write_bytes(b"step,loss\n1,0.5\n")
    logged = backend_client.runs.log_artifact(run.id, single)
    assert (logged.path, logged.kind, logged.size, logged.file_count) == (
        "metrics.csv",
        "file",
        single.stat().st_size,
        1,
    )
    folder = write_tree(tmp_path / "pkg", FILES)
    tree = backend_client.runs.log_artifact(run.id, folder, "outputs/package")
    assert (tree.path, tree.kind, tree.file_count) == ("outputs/package", "dir", len(FILES))
    assert tree.size == sum(len(v) for v in FILES.values())

    back = backend_client.runs.download_artifact(run.id, "metrics.csv", tmp_path / "d" / "m.csv")
    assert back.read_bytes() == single.read_bytes()
    restored = backend_client.runs.download_artifact(
        run.id, "outputs/package", tmp_path / "restored"
    )
    assert read_tree(restored) == FILES
    assert {a.path: a for a in backend_client.runs.get(run.id).artifacts} == {
        "metrics.csv": logged,
        "outputs/package": tree,
    }
    # the same path again replaces the artifact, as locally
    single.write_bytes(b"step,loss\n1,0.4\n")
    again = backend_client.runs.log_artifact(run.id, single)
    assert again.digest != logged.digest
    assert [
        a.digest for a in backend_client.runs.get(run.id).artifacts if a.path == "metrics.csv"
    ] == [again.digest]


def test_artifact_errors_are_the_same(backend_client: Any, tmp_path: Path) -> None:
    run = backend_client.runs.create("exp", capture_code=False)
    with pytest.raises(NotFound) as err:
        backend_client.runs.download_artifact(run.id, "nothing/here.bin", tmp_path / "x")
    assert str(err.value) == (
        f"run {run.id} has no artifact 'nothing/here.bin'; see its artifacts with: "
        f"ctloop runs show {run.id}"
    )
    with pytest.raises(NotFound, match="no such file or folder: 'missing.bin'"):
        backend_client.runs.log_artifact(run.id, "missing.bin")
    data = tmp_path / "a.bin"
    data.write_bytes(b"a")
    with pytest.raises(InvalidInput, match="'..' is not allowed"):
        backend_client.runs.log_artifact(run.id, data, "../escape.bin")
    assert not (tmp_path / "x").exists()


# --- the objects protocol: only what the server lacks travels ---------------------------


@pytest.fixture
def remote(tmp_path: Path) -> Iterator[Any]:
    from ctloop import Client
    from ctloop.testing import running_server

    with running_server(str(tmp_path / "served")) as url, Client(store=url) as client:
        yield client


def count_requests(client: Any) -> list[tuple[str, str]]:
    """Every request the client sends from now on, as (method, path)."""
    seen: list[tuple[str, str]] = []
    client._ctx.http.event_hooks["request"].append(
        lambda request: seen.append((request.method, request.url.path))
    )
    return seen


def puts(seen: list[tuple[str, str]]) -> list[str]:
    """The objects PUT, in the order they were sent."""
    return [path.rsplit("/", 1)[1] for method, path in seen if method == "PUT"]


def test_unchanged_data_is_never_sent_twice(remote: Any, tmp_path: Path) -> None:
    from ctloop.client import _transfer

    folder = write_tree(tmp_path / "data", FILES)
    seen = count_requests(remote)
    first = _transfer.upload(remote._ctx, folder)
    # one PUT per distinct content (two files share theirs), then the manifest
    assert len(puts(seen)) == len(set(FILES.values())) + 1
    assert puts(seen)[-1] == first.digest + ".dir"  # the manifest goes last
    assert (first.kind, first.file_count) == ("dir", len(FILES))

    seen.clear()
    assert _transfer.upload(remote._ctx, folder) == first
    assert seen == [("POST", "/api/v1/objects/missing")]  # the folder object alone answers

    seen.clear()
    (folder / "conf" / "params.json").write_bytes(b'{"depth": 4}')
    changed = _transfer.upload(remote._ctx, folder)
    assert changed.digest != first.digest
    assert len(puts(seen)) == 2  # the one changed file and the new manifest

    # a single file already on the server (inside the folder) is not sent either
    seen.clear()
    single = _transfer.upload(remote._ctx, folder / "model.bin")
    assert single.kind == "file" and puts(seen) == []


def test_progress_adds_up_to_the_size(remote: Any, tmp_path: Path) -> None:
    from ctloop.client import _transfer

    folder = write_tree(tmp_path / "data", FILES)
    total = sum(len(v) for v in FILES.values())
    for _ in range(2):  # sent, then found on the server
        counted: list[int] = []
        _transfer.upload(remote._ctx, folder, progress=counted.append)
        assert sum(counted) == total
    counted = []
    _transfer.download(
        remote._ctx,
        _transfer.upload(remote._ctx, folder).digest,
        "dir",
        tmp_path / "o",
        progress=counted.append,
    )
    assert sum(counted) == total and read_tree(tmp_path / "o") == FILES


def test_a_file_over_the_server_limit_is_refused_before_sending(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ctloop import Client
    from ctloop.client import _transfer
    from ctloop.errors import PayloadTooLarge
    from ctloop.testing import running_server

    monkeypatch.setenv("CTLOOP_SERVER_MAX_UPLOAD_BYTES", "100")
    with running_server(str(tmp_path / "served")) as url, Client(store=url) as client:
        big = tmp_path / "big.bin"
        big.write_bytes(b"x" * 101)
        seen = count_requests(client)
        with pytest.raises(PayloadTooLarge, match="CTLOOP_SERVER_MAX_UPLOAD_BYTES"):
            _transfer.upload(client._ctx, big)
        assert puts(seen) == []


def test_remote_digests_equal_local_ones_and_unchanged_files_are_not_reread(
    remote: Any, tmp_path: Path
) -> None:
    import time

    from ctloop.artifacts import BlobStore
    from ctloop.client import _transfer

    folder = write_tree(tmp_path / "data", FILES)
    hour_ago = time.time_ns() - 3600 * 10**9  # the hash cache trusts only settled files
    for p in folder.rglob("*"):
        os.utime(p, ns=(hour_ago, hour_ago))
    local = BlobStore(str(tmp_path / "local-store")).put(folder)
    sent = _transfer.upload(remote._ctx, folder)
    assert (sent.digest, sent.size, sent.file_count) == (local.digest, local.size, local.file_count)
    # Same inode, size and mtime, other bytes: only a re-read would notice; none happens.
    target = folder / "conf" / "params.json"
    st = target.stat()
    with open(target, "r+b") as f:
        f.write(b'{"depth": 9}')
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert _transfer.upload(remote._ctx, folder).digest == local.digest
