"""A writer killed with SIGKILL mid-write leaves no object under its final name.

A real subprocess stores a large file (and a folder of many files) and is killed once its
temporary ``.part`` file exists; afterwards every object present must hash to its name,
and storing the same content again must work.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from ctloop.artifacts import BlobStore

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX"),
]

WRITER = textwrap.dedent(
    """
    import sys
    from ctloop.artifacts import BlobStore
    store = BlobStore(sys.argv[1], workers=4)
    store.put(sys.argv[2])
    print("finished")
    """
)


def make_file(path: Path, mib: int, seed: bytes) -> None:
    """``mib`` MiB of incompressible data, unique per seed, written quickly."""
    block = os.urandom(1 << 20)
    with open(path, "wb") as f:
        for i in range(mib):
            f.write(hashlib.sha256(seed + i.to_bytes(4, "little")).digest() + block[32:])


def published(root: Path) -> int:
    """How many objects are under their final names (cheap enough to poll)."""
    try:
        return sum(len(os.listdir(d)) for d in os.scandir(root / "objects" / "sha256"))
    except FileNotFoundError:
        return 0


def kill_mid_write(
    root: Path, src: Path, *, min_published: int = 0
) -> subprocess.CompletedProcess[str]:
    """Start the writer; SIGKILL it once a partial write exists in ``root/tmp`` (and at
    least ``min_published`` objects are already in place)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(root), str(src)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    tmp = root / "tmp"
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                partial = any(name.endswith(".part") for name in os.listdir(tmp))
            except FileNotFoundError:
                partial = False
            if partial and (min_published == 0 or published(root) >= min_published):
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.0005)
    finally:
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL, (
        f"the writer was not killed mid-write (exit {proc.returncode}): {out}{err}"
    )
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def check_every_object(root: Path) -> int:
    """Every object under its final name hashes to that name; returns how many there are."""
    count = 0
    store = BlobStore(str(root))
    for path in (root / "objects").rglob("*") if (root / "objects").exists() else []:
        if not path.is_file():
            continue
        digest = path.parent.name + path.name.removesuffix(".dir")
        h = hashlib.sha256()
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
        assert h.hexdigest() == digest, f"{path} holds content that is not its digest"
        if path.name.endswith(".dir"):
            # A manifest is written last: all of its files must be there, and whole.
            store.verify(digest, "dir")
        count += 1
    return count


def test_killed_large_file_write_leaves_no_bad_object(tmp_path: Path) -> None:
    src = tmp_path / "big.bin"
    make_file(src, 300, b"big")
    root = tmp_path / "store"

    kill_mid_write(root, src)
    assert check_every_object(root) == 0  # killed before the rename: nothing published
    assert any(p.name.endswith(".part") for p in (root / "tmp").iterdir())

    store = BlobStore(str(root))
    obj = store.put_file(src)
    assert not obj.existed
    store.verify(obj.digest)
    assert check_every_object(root) == 1
    assert obj.digest == hashlib.sha256(src.read_bytes()).hexdigest()
    shutil.rmtree(tmp_path)  # 600 MB; pytest would keep it around for three runs


def test_killed_folder_write_leaves_no_bad_object(tmp_path: Path) -> None:
    src = tmp_path / "dataset"
    for shard in range(8):
        (src / f"shard{shard}").mkdir(parents=True)
        for i in range(150):
            (src / f"shard{shard}" / f"part-{i:04d}.csv").write_text(f"{shard},{i}\n" * (i + 1))
    # Large files, in a folder walked last: their .part files live long enough to be seen
    # after hundreds of small objects are in place and before the manifest is written.
    (src / "zz_large").mkdir()
    make_file(src / "zz_large" / "embeddings.bin", 80, b"emb")
    make_file(src / "zz_large" / "index.bin", 70, b"idx")
    root = tmp_path / "store"

    kill_mid_write(root, src, min_published=500)
    assert 500 <= check_every_object(root) < 8 * 150 + 2
    objects = root / "objects"
    assert not objects.exists() or list(objects.rglob("*.dir")) == []  # manifest goes last

    store = BlobStore(str(root), workers=4)
    obj = store.put_dir(src)
    assert obj.kind == "dir"
    assert obj.file_count == 8 * 150 + 2
    store.verify(obj.digest)
    assert check_every_object(root) == len({e.sha256 for e in store.read_manifest(obj.digest)}) + 1

    out = store.get(obj.digest, tmp_path / "restored")
    assert (out / "shard7" / "part-0149.csv").read_text() == "7,149\n" * 150
    big = "zz_large/index.bin"
    assert (out / big).read_bytes() == (src / big).read_bytes()
    shutil.rmtree(tmp_path)
