"""``client.datasets`` on SQLite and PostgreSQL: versions, refs, pointers, download, diff."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

import ctloop
import ctloop.data.profile
from ctloop._internal.environment import current_user
from ctloop.errors import IntegrityError, InvalidInput, NotFound

HOUR_NS = 3600 * 1_000_000_000


def _write_old(path: Path, data: bytes) -> Path:
    """Write ``data`` with an mtime an hour ago (the hash cache trusts only settled files)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    past = time.time_ns() - HOUR_NS
    os.utime(path, ns=(past, past))
    return path


def _rewrite_keeping_stat(path: Path, data: bytes) -> None:
    """Change the bytes in place but keep inode, size and mtime: only a re-hash can tell."""
    st = path.stat()
    assert len(data) == st.st_size
    with open(path, "r+b") as f:
        f.write(data)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


@pytest.fixture
def profile_calls(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every path the profiler reads (the real profiler still runs)."""
    calls: list[Path] = []
    real = ctloop.data.profile.profile_data

    def spy(path: Any, fmt: str) -> Any:
        calls.append(Path(path))
        return real(path, fmt)

    monkeypatch.setattr(ctloop.data.profile, "profile_data", spy)
    return calls


def test_add_creates_version_one_with_its_facts(client: Any, tmp_path: Path) -> None:
    data = tmp_path / "train.csv"
    pd.DataFrame({"x": [1, 2, 3], "y": ["a", "b", "a"]}).to_csv(data, index=False)
    v = client.datasets.add(data, "churn", description="customer churn")
    assert (v.name, v.version, v.ref, v.is_new) == ("churn", 1, "churn@1", True)
    assert v.kind == "file" and v.file_count == 1 and v.size == data.stat().st_size
    assert v.source_path == str(data) and v.created_by == current_user()
    assert v.format == "csv" and v.row_count == 3 and v.columns == ["x", "y"]
    assert client.blobs.read_bytes(v.digest) == data.read_bytes()
    assert client.datasets.get("churn") == v
    assert client.datasets.info("churn").description == "customer churn"


def test_readd_unchanged_is_a_stat_not_a_rehash_or_reprofile(
    client: Any, tmp_path: Path, profile_calls: list[Path]
) -> None:
    data = _write_old(tmp_path / "train.csv", b"a,b\n1,2\n3,4\n")
    first = client.datasets.add(data, "churn")
    assert len(profile_calls) == 1
    # Same inode, size and mtime, different bytes: a re-hash would see version 2.
    _rewrite_keeping_stat(data, b"a,b\n9,9\n9,9\n")
    again = client.datasets.add(data, "churn")
    assert again == first and again.version == 1 and not again.is_new
    assert len(profile_calls) == 1
    assert [v.version for v in client.datasets.versions("churn")] == [1]


def test_changed_content_makes_the_next_version(client: Any, tmp_path: Path) -> None:
    data = tmp_path / "train.csv"
    data.write_text("a\n1\n")
    v1 = client.datasets.add(data, "churn")
    data.write_text("a\n1\n2\n")
    v2 = client.datasets.add(data, "churn")
    assert (v1.version, v2.version, v2.is_new) == (1, 2, True)
    assert v1.digest != v2.digest and v2.row_count == 2
    assert client.datasets.get("churn@latest") == v2
    assert client.datasets.get("churn@1") == v1
    assert [v.version for v in client.datasets.versions("churn")] == [1, 2]
    (listed,) = client.datasets.list()
    assert (listed.name, listed.latest_version, listed.version_count) == ("churn", 2, 2)


def test_reverting_to_old_content_is_a_new_version_reusing_the_profile(
    client: Any, tmp_path: Path, profile_calls: list[Path]
) -> None:
    data = tmp_path / "d.csv"
    data.write_text("a\n1\n")
    v1 = client.datasets.add(data, "d")
    data.write_text("a\n2\n")
    client.datasets.add(data, "d")
    data.write_text("a\n1\n")
    v3 = client.datasets.add(data, "d")
    assert v3.version == 3 and v3.digest == v1.digest
    assert v3.profile == v1.profile and len(profile_calls) == 2


def test_folder_is_one_version_and_unchanged_folder_is_not_rehashed(
    client: Any, tmp_path: Path
) -> None:
    folder = tmp_path / "images"
    _write_old(folder / "a.bin", b"\x00" * 100)
    _write_old(folder / "sub" / "b.bin", b"\x01" * 50)
    v1 = client.datasets.add(folder, "images")
    assert (v1.kind, v1.file_count, v1.size, v1.format, v1.profile) == ("dir", 2, 150, None, None)
    _rewrite_keeping_stat(folder / "sub" / "b.bin", b"\x02" * 50)
    assert client.datasets.add(folder, "images").version == 1
    (folder / "c.bin").write_bytes(b"new")
    v2 = client.datasets.add(folder, "images")
    assert (v2.version, v2.file_count) == (2, 3)


def test_folder_of_parquet_files_is_profiled(client: Any, tmp_path: Path) -> None:
    folder = tmp_path / "events"
    folder.mkdir()
    for i in range(2):
        pd.DataFrame({"v": np.arange(10) + 10 * i}).to_parquet(folder / f"p{i}.parquet")
    v = client.datasets.add(folder, "events")
    assert v.format == "parquet" and v.row_count == 20
    assert v.profile is not None and v.profile["columns"]["v"]["mean"] == pytest.approx(9.5)


def test_non_tabular_and_unparseable_files_still_version(client: Any, tmp_path: Path) -> None:
    blob = tmp_path / "model.bin"
    blob.write_bytes(os.urandom(64))
    v = client.datasets.add(blob, "weights")
    assert v.version == 1 and v.format is None and v.profile is None and v.schema is None
    broken = tmp_path / "broken.csv"
    broken.write_bytes(b'a,b\n1,2\n3\n"x')
    v = client.datasets.add(broken, "broken")
    assert v.version == 1 and v.format == "csv" and v.row_count is None
    assert v.profile is not None and "error" in v.profile
    assert client.datasets.get("broken@1").profile == v.profile


def test_stored_profile_round_trips_through_the_database(client: Any, tmp_path: Path) -> None:
    df = pd.DataFrame({"x": [1.5, None, 3.5, 4.0], "c": ["a", "b", "a", None]})
    data = tmp_path / "t.parquet"
    df.to_parquet(data)
    v = client.datasets.get(client.datasets.add(data, "t").ref)
    x = v.profile["columns"]["x"]
    assert x["null_count"] == 1 and x["mean"] == pytest.approx(df["x"].mean())
    assert x["quantiles"]["p50"] == pytest.approx(df["x"].median())
    assert v.profile["columns"]["c"]["top"] == [
        {"value": "a", "count": 2},
        {"value": "b", "count": 1},
    ]
    assert v.schema is not None and [c["name"] for c in v.schema] == ["x", "c"]
    assert v.schema[0] == {"name": "x", "type": "double", "nullable": True}
    assert v.schema[1]["type"] in ("string", "large_string")  # pandas 3 writes large_string


def test_pointer_file_names_the_version_and_is_rewritten(client: Any, tmp_path: Path) -> None:
    data = tmp_path / "train.csv"
    data.write_text("a\n1\n")
    client.datasets.add(data, "churn")
    data.write_text("a\n2\n")
    v2 = client.datasets.add(data, "churn")
    pointer = yaml.safe_load((tmp_path / "train.csv.ctloop.yaml").read_text())
    assert pointer["name"] == "churn" and pointer["version"] == 2
    assert pointer["digest"] == v2.digest and pointer["kind"] == "file"
    assert pointer["size"] == v2.size and pointer["file_count"] == 1
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []

    folder = tmp_path / "data"
    (folder / "x").mkdir(parents=True)
    (folder / "x" / "f.txt").write_text("hi")
    v = client.datasets.add(str(folder) + "/", "folder")
    pointer = yaml.safe_load((tmp_path / "data.ctloop.yaml").read_text())
    assert (pointer["name"], pointer["version"], pointer["kind"]) == ("folder", 1, "dir")
    assert pointer["digest"] == v.digest


def test_no_pointer_writes_none(client: Any, tmp_path: Path) -> None:
    data = tmp_path / "train.csv"
    data.write_text("a\n1\n")
    client.datasets.add(data, "churn", pointer=False)
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".ctloop.yaml")] == []


def test_unknown_names_and_versions_raise_not_found_with_a_hint(
    client: Any, tmp_path: Path
) -> None:
    data = tmp_path / "d.csv"
    for i in range(2):
        data.write_text(f"a\n{i}\n")
        client.datasets.add(data, "churn")
    with pytest.raises(NotFound) as err:
        client.datasets.get("churn@7")
    assert str(err.value) == (
        "dataset 'churn' has no version 7 (latest is 2); list them with: ctloop data show churn"
    )
    with pytest.raises(NotFound, match="no dataset named 'chrun'; did you mean 'churn'"):
        client.datasets.get("chrun")
    with pytest.raises(NotFound, match="ctloop data list"):
        client.datasets.versions("nothing")
    with pytest.raises(InvalidInput, match="'churn@two'"):
        client.datasets.get("churn@two")


def test_bad_name_and_missing_path_write_nothing(client: Any, tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="no such file or folder: 'missing.csv'"):
        client.datasets.add("missing.csv", "churn")
    data = tmp_path / "d.csv"
    data.write_text("a\n1\n")
    with pytest.raises(InvalidInput, match="invalid dataset name 'bad name'"):
        client.datasets.add(data, "bad name")
    assert client.datasets.list() == []
    assert not (tmp_path / "d.csv.ctloop.yaml").exists()


def test_resolve_accepts_refs_and_versions(client: Any, tmp_path: Path) -> None:
    data = tmp_path / "d.csv"
    data.write_text("a\n1\n")
    v = client.datasets.add(data, "d")
    assert client.datasets.resolve("d@1") == v
    assert client.datasets.resolve(v) == v
    foreign = type(v)(**{**v.__dict__, "id": "0" * 32})
    with pytest.raises(NotFound, match="is not in this store"):
        client.datasets.resolve(foreign)
    with pytest.raises(InvalidInput):
        client.datasets.resolve(42)


def test_download_round_trips_files_and_folders(client: Any, tmp_path: Path) -> None:
    data = tmp_path / "d.bin"
    data.write_bytes(os.urandom(5000))
    client.datasets.add(data, "blob")
    out = client.datasets.download("blob@1", tmp_path / "out" / "copy.bin")
    assert out.read_bytes() == data.read_bytes()
    (tmp_path / "into").mkdir()
    assert client.datasets.download("blob", tmp_path / "into").read_bytes() == data.read_bytes()

    folder = tmp_path / "tree"
    files = {"a.txt": b"alpha", "deep/er/b.txt": b"beta", "c.bin": os.urandom(100)}
    for rel, content in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(content)
    client.datasets.add(folder, "tree")
    back = client.datasets.download("tree", tmp_path / "restored")
    got = {p.relative_to(back).as_posix(): p.read_bytes() for p in back.rglob("*") if p.is_file()}
    assert got == files


def test_corrupted_object_is_detected_and_nothing_is_written(client: Any, tmp_path: Path) -> None:
    data = tmp_path / "d.csv"
    data.write_text("a,b\n1,2\n")
    v = client.datasets.add(data, "d")
    obj = Path(client.blobs.url(v.digest))
    obj.chmod(0o644)
    obj.write_text("a,b\n6,6\n")
    dest = tmp_path / "out" / "d.csv"
    with pytest.raises(IntegrityError, match=v.digest):
        client.datasets.download("d@1", dest)
    assert not dest.exists()
    assert list((tmp_path / "out").iterdir()) == []


def test_corrupted_folder_object_leaves_no_folder(client: Any, tmp_path: Path) -> None:
    folder = tmp_path / "tree"
    folder.mkdir()
    (folder / "a.txt").write_text("alpha")
    (folder / "b.txt").write_text("beta")
    v = client.datasets.add(folder, "tree")
    entry = client.blobs.read_manifest(v.digest)[1]
    obj = Path(client.blobs.url(entry.sha256))
    obj.chmod(0o644)
    obj.write_text("BETA")
    with pytest.raises(IntegrityError):
        client.datasets.download("tree", tmp_path / "restored")
    assert not (tmp_path / "restored").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".restored")]


def test_diff_reports_dropped_column_and_changed_mean(client: Any, tmp_path: Path) -> None:
    data = tmp_path / "d.parquet"
    before = pd.DataFrame({"age": [20, 30, 40], "city": ["a", "b", "a"], "x": [1, 2, 3]})
    before.to_parquet(data)
    client.datasets.add(data, "d")
    after = pd.DataFrame({"age": [20, 30, 40, 90], "city": ["a", "c", "c", "a"]})
    after.to_parquet(data)
    client.datasets.add(data, "d")
    d = client.datasets.diff("d@1", "d@2")
    assert (d.a, d.b) == ("d@1", "d@2")
    assert not d.identical and d.schema_changed
    assert d.digest is not None and d.size is not None
    assert d.row_count is not None and (d.row_count.before, d.row_count.after) == (3, 4)
    assert [c["name"] for c in d.removed_columns] == ["x"] and d.added_columns == []
    stats = {s.name: s for s in d.column_stats}
    mean = stats["age"].changes["mean"]
    assert mean.before == pytest.approx(before["age"].mean())
    assert mean.after == pytest.approx(after["age"].mean())
    assert mean.delta == pytest.approx(after["age"].mean() - before["age"].mean())
    assert stats["city"].new_categories == ["c"] and stats["city"].vanished_categories == ["b"]
    assert client.datasets.diff("d@2", "d").identical


def test_diff_reports_type_and_added_columns(client: Any, tmp_path: Path) -> None:
    data = tmp_path / "d.csv"
    data.write_text("a,b\n1,2\n")
    client.datasets.add(data, "d")
    data.write_text("a,b,c\n1.5,2,x\n")
    client.datasets.add(data, "d")
    d = client.datasets.diff("d@1", "d@2")
    assert [c["name"] for c in d.added_columns] == ["c"]
    (changed,) = d.changed_columns
    assert changed.name == "a" and changed.type is not None
    assert (changed.type.before, changed.type.after) == ("int64", "double")


def test_fluent_add_and_get_use_the_environment_store(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from ctloop.client.default import reset_default_client

    monkeypatch.setenv("CTLOOP_STORE", str(tmp_path / "envstore"))
    data = tmp_path / "d.csv"
    data.write_text("a\n1\n")
    try:
        v = ctloop.add_dataset(data, name="fluent", description="via fluent")
        assert v.version == 1 and ctloop.get_dataset("fluent@1") == v
    finally:
        reset_default_client()
    assert (tmp_path / "envstore" / "ctloop.db").exists()
