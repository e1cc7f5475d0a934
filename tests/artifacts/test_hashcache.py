"""The hash cache: re-adding unchanged files is a stat, and changed or racy files are re-hashed."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import ctloop.artifacts.blobstore as blobstore_module
from ctloop.artifacts import BlobStore, HashCache
from ctloop.artifacts.hashcache import RACY_NS

HOUR_NS = 3600 * 1_000_000_000


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def age(path: Path, ns_ago: int = HOUR_NS) -> os.stat_result:
    """Set the file's mtime into the past (out of the racy window) and return its stat."""
    when = time.time_ns() - ns_ago
    os.utime(path, ns=(when, when))
    return os.stat(path)


@pytest.fixture
def cache(tmp_path: Path) -> Iterator[HashCache]:
    c = HashCache(tmp_path / "cache" / "hashes.db")
    yield c
    c.close()


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Paths the blob store opens to read content (a spy on ``open`` in that module)."""
    opened: list[str] = []
    real_open = open

    def spy(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if "r" in mode:
            opened.append(os.fspath(file))
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(blobstore_module, "open", spy, raising=False)
    return opened


# --- the cache on its own -----------------------------------------------------------------


def test_unchanged_old_file_is_a_hit(cache: HashCache, tmp_path: Path) -> None:
    f = tmp_path / "data.csv"
    f.write_bytes(b"a,b\n1,2\n")
    st = age(f)
    cache.remember([(st, sha(f.read_bytes()))])
    assert cache.lookup([os.stat(f)]) == [sha(b"a,b\n1,2\n")]


def test_entries_survive_a_new_process(tmp_path: Path) -> None:
    f = tmp_path / "data.csv"
    f.write_bytes(b"x")
    first = HashCache(tmp_path / "h.db")
    first.remember([(age(f), sha(b"x"))])
    first.close()
    second = HashCache(tmp_path / "h.db")
    assert second.lookup([os.stat(f)]) == [sha(b"x")]
    second.close()


def test_same_size_new_content_with_new_mtime_is_a_miss(cache: HashCache, tmp_path: Path) -> None:
    f = tmp_path / "data.csv"
    f.write_bytes(b"a,b\n1,2\n")
    cache.remember([(age(f, 2 * HOUR_NS), sha(b"a,b\n1,2\n"))])
    f.write_bytes(b"a,b\n3,4\n")  # same size
    age(f, HOUR_NS)  # a different (still old) mtime
    assert cache.lookup([os.stat(f)]) == [None]


def test_size_change_is_a_miss_even_with_the_old_mtime(cache: HashCache, tmp_path: Path) -> None:
    f = tmp_path / "data.csv"
    f.write_bytes(b"short")
    st = age(f)
    cache.remember([(st, sha(b"short"))])
    f.write_bytes(b"longer content")
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert cache.lookup([os.stat(f)]) == [None]


def test_replaced_file_is_a_miss(cache: HashCache, tmp_path: Path) -> None:
    f = tmp_path / "data.csv"
    f.write_bytes(b"one")
    st = age(f)
    cache.remember([(st, sha(b"one"))])
    new = tmp_path / "new.csv"
    new.write_bytes(b"two")  # same size, then the same mtime, under the same name
    os.utime(new, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(new, f)
    assert os.stat(f).st_ino != st.st_ino
    assert cache.lookup([os.stat(f)]) == [None]


def test_racy_entries_are_not_trusted(cache: HashCache, tmp_path: Path) -> None:
    """Hashed within RACY_NS of its last write, a file could change again unseen."""
    f = tmp_path / "data.csv"
    f.write_bytes(b"fresh")
    st = os.stat(f)
    cache.remember([(st, sha(b"fresh"))], hashed_ns=st.st_mtime_ns + RACY_NS // 2)
    assert cache.lookup([os.stat(f)]) == [None]
    cache.remember([(st, sha(b"fresh"))], hashed_ns=st.st_mtime_ns + RACY_NS)
    assert cache.lookup([os.stat(f)]) == [None]  # exactly at the boundary: still racy
    cache.remember([(st, sha(b"fresh"))], hashed_ns=st.st_mtime_ns + RACY_NS + 1)
    assert cache.lookup([os.stat(f)]) == [sha(b"fresh")]


def test_lookup_keeps_order_and_handles_many(cache: HashCache, tmp_path: Path) -> None:
    files = []
    for i in range(1200):  # more than one SQL chunk of 500
        f = tmp_path / f"f{i}"
        f.write_bytes(str(i).encode())
        files.append(f)
    stats = [age(f) for f in files]
    cache.remember((st, sha(str(i).encode())) for i, st in enumerate(stats) if i % 3)
    found = cache.lookup(os.stat(f) for f in files)
    assert found == [sha(str(i).encode()) if i % 3 else None for i in range(1200)]
    assert cache.lookup([]) == []


# --- through the blob store ---------------------------------------------------------------


def test_re_adding_an_unchanged_old_file_does_not_read_it(
    cache: HashCache, tmp_path: Path, reads: list[str]
) -> None:
    store = BlobStore(str(tmp_path / "store"), hash_cache=cache)
    f = tmp_path / "train.csv"
    f.write_bytes(b"x,y\n" * 1000)
    age(f)
    first = store.put_file(f)
    assert reads.count(str(f)) == 1
    second = store.put_file(f)
    assert reads.count(str(f)) == 1  # a stat and a cache hit: the content was not read
    assert second.digest == first.digest == sha(f.read_bytes())
    assert second.existed


def test_changed_file_is_hashed_again(cache: HashCache, tmp_path: Path, reads: list[str]) -> None:
    store = BlobStore(str(tmp_path / "store"), hash_cache=cache)
    f = tmp_path / "train.csv"
    f.write_bytes(b"x,y\n1,2\n")
    age(f, 2 * HOUR_NS)
    first = store.put_file(f)
    f.write_bytes(b"x,y\n3,4\n")  # same size, new mtime
    age(f, HOUR_NS)
    second = store.put_file(f)
    assert reads.count(str(f)) == 2
    assert second.digest == sha(b"x,y\n3,4\n") != first.digest
    assert not second.existed


def test_freshly_written_file_is_hashed_every_time(
    cache: HashCache, tmp_path: Path, reads: list[str]
) -> None:
    store = BlobStore(str(tmp_path / "store"), hash_cache=cache)
    f = tmp_path / "train.csv"
    f.write_bytes(b"just written")
    store.put_file(f)
    store.put_file(f)
    assert reads.count(str(f)) == 2  # racy: modified less than RACY_NS before hashing


def test_folder_re_add_reads_nothing(cache: HashCache, tmp_path: Path, reads: list[str]) -> None:
    store = BlobStore(str(tmp_path / "store"), hash_cache=cache, workers=4)
    folder = tmp_path / "data"
    folder.mkdir()
    for i in range(20):
        (folder / f"part-{i}.csv").write_text(f"{i}\n" * 10)
        age(folder / f"part-{i}.csv")
    first = store.put_dir(folder)
    read_once = len(reads)
    assert read_once >= 20
    second = store.put_dir(folder)
    assert len(reads) == read_once
    assert second.digest == first.digest
    assert second.existed


def test_known_digest_is_uploaded_to_a_store_that_lacks_it(
    cache: HashCache, tmp_path: Path, reads: list[str]
) -> None:
    f = tmp_path / "model.bin"
    f.write_bytes(os.urandom(2048))
    age(f)
    BlobStore(str(tmp_path / "one"), hash_cache=cache).put_file(f)
    other = BlobStore(str(tmp_path / "two"), hash_cache=cache)
    obj = other.put_file(f)  # digest from the cache, bytes copied without hashing
    assert not obj.existed
    other.verify(obj.digest)
    assert other.read_bytes(obj.digest) == f.read_bytes()
