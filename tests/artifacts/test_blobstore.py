"""The content-addressed blob store, on a local folder and on S3 (moto on loopback)."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ctloop._internal.names import check_relative_path
from ctloop.artifacts import BlobStore, open_blob_store
from ctloop.artifacts.blobstore import SMALL_FILE
from ctloop.errors import IntegrityError, InvalidInput, NotFound
from ctloop.settings import load_settings


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def manifest_of(folder: Path) -> bytes:
    """The canonical manifest of a folder, computed without ctloop's code."""
    entries = []
    for path in folder.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            entries.append(
                {
                    "path": path.relative_to(folder).as_posix(),
                    "sha256": sha(data),
                    "size": len(data),
                }
            )
    entries.sort(key=lambda e: e["path"])
    return json.dumps(entries, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def object_key(digest: str, kind: str = "file") -> str:
    return f"objects/sha256/{digest[:2]}/{digest[2:]}" + (".dir" if kind == "dir" else "")


@dataclass
class Store:
    """A blob store plus raw access to the bytes under its root, bypassing ctloop."""

    blobs: BlobStore
    kind: str
    root: Path | None = None  # local
    s3: Any = None  # boto3 client
    bucket: str = ""
    prefix: str = ""

    def object_keys(self) -> set[str]:
        if self.root is not None:
            return {
                p.relative_to(self.root).as_posix()
                for p in (self.root / "objects").rglob("*")
                if p.is_file()
            }
        pages = self.s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix + "/objects/"
        )
        return {
            obj["Key"].removeprefix(self.prefix + "/")
            for page in pages
            for obj in page.get("Contents", [])
        }

    def read(self, key: str) -> bytes:
        if self.root is not None:
            return (self.root / key).read_bytes()
        return bytes(
            self.s3.get_object(Bucket=self.bucket, Key=f"{self.prefix}/{key}")["Body"].read()
        )

    def write(self, key: str, data: bytes) -> None:
        """Overwrite (or plant) an object: what disk rot or an attacker would do."""
        if self.root is not None:
            path = self.root / key
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.exists():
                path.chmod(0o644)
            path.write_bytes(data)
            return
        self.s3.put_object(Bucket=self.bucket, Key=f"{self.prefix}/{key}", Body=data)


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "local":
        settings = load_settings(store=str(tmp_path / "store"), artifacts=str(tmp_path / "art"))
        blobs = open_blob_store(settings)
        assert blobs.is_local
        yield Store(blobs, "local", root=tmp_path / "art")
    else:
        import boto3

        endpoint = request.getfixturevalue("s3_endpoint")
        bucket_url = request.getfixturevalue("s3_bucket")
        settings = load_settings(
            store=str(tmp_path / "store"),
            artifacts=f"{bucket_url}/prefix",
            s3={"endpoint_url": endpoint},
        )
        blobs = open_blob_store(settings)
        assert not blobs.is_local
        client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        yield Store(
            blobs, "s3", s3=client, bucket=bucket_url.removeprefix("s3://"), prefix="prefix"
        )
    if blobs.hash_cache is not None:
        blobs.hash_cache.close()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "model"
    (root / "nested" / "deeper").mkdir(parents=True)
    (root / "weights.bin").write_bytes(os.urandom(5000))
    (root / "config.json").write_text('{"depth": 3}')
    (root / "nested" / "notes.txt").write_text("same bytes")
    (root / "nested" / "copy.txt").write_text("same bytes")  # two paths, one object
    (root / "nested" / "deeper" / "empty").write_bytes(b"")
    (root / "nested" / "deeper" / "données été.csv").write_text("a,b\n1,2\n")
    return root


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def leftovers(root: Path) -> list[str]:
    return [p.name for p in root.rglob("*") if p.name.endswith(".part")]


# --- writing ------------------------------------------------------------------------------


def test_put_bytes_is_stored_under_its_sha256(store: Store) -> None:
    data = b"hello ctloop\n"
    obj = store.blobs.put_bytes(data)
    assert obj.digest == sha(data)
    assert (obj.kind, obj.size, obj.file_count, obj.existed) == ("file", len(data), 1, False)
    assert store.object_keys() == {object_key(obj.digest)}
    assert store.read(object_key(obj.digest)) == data
    assert store.blobs.exists(obj.digest)
    assert store.blobs.kind_of(obj.digest) == "file"
    assert store.blobs.size(obj.digest) == len(data)
    assert store.blobs.url(obj.digest).endswith(object_key(obj.digest))
    if store.kind == "s3":
        assert store.blobs.url(obj.digest).startswith(f"s3://{store.bucket}/prefix/objects/")


def test_identical_content_is_stored_once(store: Store, tmp_path: Path) -> None:
    data = os.urandom(1000)
    first = store.blobs.put_bytes(data)
    src = tmp_path / "same.bin"
    src.write_bytes(data)
    second = store.blobs.put_file(src)
    third = store.blobs.put(src)
    assert first.digest == second.digest == third.digest == sha(data)
    assert (first.existed, second.existed, third.existed) == (False, True, True)
    assert store.object_keys() == {object_key(first.digest)}


@pytest.mark.parametrize("size", [0, 1, SMALL_FILE + 1], ids=["empty", "byte", "streamed"])
def test_put_file_round_trip(store: Store, tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    src = tmp_path / "data.bin"
    src.write_bytes(data)
    seen: list[int] = []
    obj = store.blobs.put_file(src, progress=seen.append)
    assert obj.digest == sha(data)
    assert (obj.size, obj.existed) == (size, False)
    assert store.read(object_key(obj.digest)) == data
    if size:
        assert sum(seen) == size
    dest = tmp_path / "out" / "data.bin"
    assert store.blobs.get(obj.digest, dest) == dest
    assert dest.read_bytes() == data
    assert store.blobs.read_bytes(obj.digest) == data
    with store.blobs.open(obj.digest) as f:
        assert f.read() == data


def test_put_dir_layout_and_digest(store: Store, folder: Path) -> None:
    obj = store.blobs.put(folder)
    expected = manifest_of(folder)
    assert obj.kind == "dir"
    assert obj.digest == sha(expected)
    assert obj.file_count == 6
    assert obj.size == sum(len(b) for b in tree(folder).values())
    assert store.read(object_key(obj.digest, "dir")) == expected
    assert store.blobs.kind_of(obj.digest) == "dir"

    file_digests = {e["sha256"] for e in json.loads(expected)}
    assert len(file_digests) == 5  # the two identical files share one object
    assert store.object_keys() == {object_key(d) for d in file_digests} | {
        object_key(obj.digest, "dir")
    }
    entries = store.blobs.read_manifest(obj.digest)
    assert [e.as_json() for e in entries] == json.loads(expected)


def test_equal_folders_have_equal_digests(store: Store, folder: Path, tmp_path: Path) -> None:
    first = store.blobs.put_dir(folder)
    twin = tmp_path / "elsewhere" / "twin"
    twin.parent.mkdir()
    os.rename(folder, twin)  # same content under another path and other inodes' parents
    again = store.blobs.put_dir(twin)
    assert again.digest == first.digest
    assert again.existed

    (twin / "config.json").write_text('{"depth": 4}')  # one byte differs
    changed = store.blobs.put_dir(twin)
    assert changed.digest != first.digest
    assert not changed.existed
    os.rename(twin / "config.json", twin / "config2.json")  # same bytes, another name
    renamed = store.blobs.put_dir(twin)
    assert renamed.digest not in (first.digest, changed.digest)


def test_empty_folder(store: Store, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    obj = store.blobs.put_dir(empty)
    assert obj.digest == sha(b"[]")
    assert (obj.size, obj.file_count) == (0, 0)
    out = store.blobs.get(obj.digest, tmp_path / "out")
    assert out.is_dir() and list(out.iterdir()) == []


def test_get_folder_round_trip(store: Store, folder: Path, tmp_path: Path) -> None:
    obj = store.blobs.put(folder)
    dest = store.blobs.get(obj.digest, tmp_path / "restored")
    assert tree(dest) == tree(folder)
    assert leftovers(dest) == []
    store.blobs.verify(obj.digest)


def test_local_objects_are_read_only_and_no_temp_files_remain(folder: Path, tmp_path: Path) -> None:
    root = tmp_path / "art"
    blobs = BlobStore(str(root))
    blobs.put(folder)
    blobs.put_bytes(b"x" * (SMALL_FILE + 1))
    objects = [p for p in (root / "objects").rglob("*") if p.is_file()]
    assert len(objects) == 7
    for path in objects:
        assert not path.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH), path
    assert list((root / "tmp").iterdir()) == []


# --- reading back what was damaged --------------------------------------------------------


def test_corrupted_file_is_refused_and_leaves_nothing(store: Store, tmp_path: Path) -> None:
    data = os.urandom(3000)
    digest = store.blobs.put_bytes(data).digest
    rotten = bytearray(data)
    rotten[1234] ^= 0x01
    store.write(object_key(digest), bytes(rotten))

    with pytest.raises(IntegrityError, match=digest):
        store.blobs.read_bytes(digest)
    with pytest.raises(IntegrityError):
        store.blobs.verify(digest)
    assert store.blobs.read_bytes(digest, verify=False) == bytes(rotten)  # verification caught it

    dest = tmp_path / "out" / "model.bin"
    with pytest.raises(IntegrityError):
        store.blobs.get(digest, dest)
    assert not dest.exists()
    assert leftovers(tmp_path / "out") == []


def test_corrupted_file_inside_a_folder(store: Store, folder: Path, tmp_path: Path) -> None:
    obj = store.blobs.put(folder)
    weights = sha((folder / "weights.bin").read_bytes())
    store.write(object_key(weights), b"\x00" * 5000)
    with pytest.raises(IntegrityError):
        store.blobs.verify(obj.digest)
    dest = tmp_path / "restored"
    with pytest.raises(IntegrityError, match=weights):
        store.blobs.get(obj.digest, dest)
    assert not (dest / "weights.bin").exists()
    assert leftovers(dest) == []


def test_corrupted_manifest(store: Store, folder: Path) -> None:
    obj = store.blobs.put(folder)
    store.write(object_key(obj.digest, "dir"), b"[]")
    with pytest.raises(IntegrityError):
        store.blobs.read_manifest(obj.digest)


def _plant_manifest(store: Store, entries: Any) -> str:
    """Write a manifest under its true digest, so only the path checks can refuse it."""
    data = json.dumps(entries).encode()
    digest = sha(data)
    store.write(object_key(digest, "dir"), data)
    return digest


@pytest.mark.parametrize(
    "bad_path", ["../x", "../../escaped", "/tmp/absolute", "a/../../x", "a\\..\\x", "", "."]
)
def test_crafted_manifest_paths_are_refused(store: Store, tmp_path: Path, bad_path: str) -> None:
    payload = store.blobs.put_bytes(b"planted").digest
    digest = _plant_manifest(store, [{"path": bad_path, "sha256": payload, "size": 7}])
    with pytest.raises(InvalidInput):
        store.blobs.read_manifest(digest)
    dest = tmp_path / "a" / "b" / "dest"
    with pytest.raises(InvalidInput):
        store.blobs.get(digest, dest)
    outside_store = [p for p in tmp_path.rglob("*") if not {"store", "art"} & set(p.parts)]
    written = [p for p in outside_store if p.is_file()]
    assert [p for p in written if p.read_bytes() == b"planted"] == []


@pytest.mark.parametrize(
    "entries",
    [
        [{"path": "x", "sha256": "../../objects/sha256/aa/bb", "size": 1}],
        [{"path": "x", "sha256": "A" * 64, "size": 1}],
        [{"path": "x", "size": 1}],
        {"path": "x"},
        "not a list",
    ],
    ids=["digest-traversal", "uppercase-digest", "no-digest", "object", "string"],
)
def test_crafted_manifest_structure_is_refused(store: Store, entries: Any) -> None:
    digest = _plant_manifest(store, entries)
    with pytest.raises(InvalidInput):
        store.blobs.read_manifest(digest)


def test_manifest_that_is_not_json(store: Store) -> None:
    data = b"\x89PNG not json"
    store.write(object_key(sha(data), "dir"), data)
    with pytest.raises(IntegrityError, match="not a valid manifest"):
        store.blobs.read_manifest(sha(data))


def test_missing_objects_are_not_found(store: Store, tmp_path: Path) -> None:
    absent = sha(b"never stored")
    assert not store.blobs.exists(absent)
    with pytest.raises(NotFound):
        store.blobs.kind_of(absent)
    with pytest.raises(NotFound):
        store.blobs.read_bytes(absent)
    with pytest.raises(NotFound):
        store.blobs.get(absent, tmp_path / "out", kind="file")
    with pytest.raises(NotFound):
        store.blobs.size(absent)
    assert not (tmp_path / "out").exists()


def test_putting_what_does_not_exist_is_not_found(store: Store, tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        store.blobs.put(tmp_path / "nope")
    with pytest.raises(NotFound):
        store.blobs.put_file(tmp_path / "nope")
    with pytest.raises(NotFound):
        store.blobs.put_dir(tmp_path / "nope")
    assert store.object_keys() == set()


def test_folder_with_a_name_that_could_not_be_read_back(store: Store, tmp_path: Path) -> None:
    odd = tmp_path / "odd"
    odd.mkdir()
    (odd / "fine.txt").write_text("ok")
    (odd / "back\\slash.txt").write_text("a backslash is a legal file name on POSIX")
    with pytest.raises(InvalidInput, match="slash"):
        store.blobs.put_dir(odd)
    assert not any(k.endswith(".dir") for k in store.object_keys())


# --- naming -------------------------------------------------------------------------------


def test_key_layout() -> None:
    digest = sha(b"x")
    assert BlobStore.key(digest) == f"objects/sha256/{digest[:2]}/{digest[2:]}"
    assert BlobStore.key(digest, "dir") == f"objects/sha256/{digest[:2]}/{digest[2:]}.dir"


@pytest.mark.parametrize(
    "digest",
    [
        "",
        "abc",
        "a" * 63,
        "a" * 65,
        "A" * 64,
        "g" * 64,
        "../" + "a" * 61,
        "a" * 62 + "/a",
        "a" * 63 + "\x00",
        " " + "a" * 63,
    ],
)
def test_key_refuses_bad_digests(digest: str) -> None:
    with pytest.raises(InvalidInput, match="invalid digest"):
        BlobStore.key(digest)


@pytest.mark.parametrize(
    "path",
    ["..", "../a", "a/..", "a/../b", "/abs", "/", "C:/x", "c:x", "a\x00b", "a\\b", "", ".", "./"],
)
def test_check_relative_path_refuses(path: str) -> None:
    with pytest.raises(InvalidInput):
        check_relative_path(path)


@pytest.mark.parametrize("value", [None, 3, b"a", ["a"]])
def test_check_relative_path_refuses_non_strings(value: object) -> None:
    with pytest.raises(InvalidInput):
        check_relative_path(value)


@pytest.mark.parametrize(
    ("path", "clean"),
    [("a", "a"), ("a/b.txt", "a/b.txt"), ("./a//b", "a/b"), ("a/./b/", "a/b"), ("é t/x", "é t/x")],
)
def test_check_relative_path_normalises(path: str, clean: str) -> None:
    assert check_relative_path(path) == clean
