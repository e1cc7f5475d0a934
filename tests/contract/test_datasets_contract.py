"""``client.datasets`` behaves the same on every backend: versions, refs, pointers, errors."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

import ctloop.data.profile
from ctloop._internal.environment import current_user
from ctloop.errors import InvalidInput, NotFound


@pytest.fixture
def profile_calls(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every path the profiler reads, on the client or the server (the real one runs)."""
    calls: list[Path] = []
    real = ctloop.data.profile.profile_data

    def spy(path: Any, fmt: str) -> Any:
        calls.append(Path(path))
        return real(path, fmt)

    monkeypatch.setattr(ctloop.data.profile, "profile_data", spy)
    return calls


def test_add_readd_change_and_read_back(
    backend_client: Any, tmp_path: Path, profile_calls: list[Path]
) -> None:
    data = tmp_path / "train.csv"
    pd.DataFrame({"x": [1, 2, 3], "y": ["a", "b", "a"]}).to_csv(data, index=False)
    v1 = backend_client.datasets.add(data, "churn", description="customer churn")
    assert (v1.name, v1.version, v1.is_new, v1.kind, v1.file_count) == ("churn", 1, True, "file", 1)
    assert v1.size == data.stat().st_size and v1.source_path == str(data)
    assert (v1.format, v1.row_count, v1.columns) == ("csv", 3, ["x", "y"])
    assert v1.created_by == current_user() and len(profile_calls) == 1

    again = backend_client.datasets.add(data, "churn", description="renamed")
    assert again == v1 and not again.is_new and len(profile_calls) == 1
    assert backend_client.datasets.info("churn").description == "renamed"

    pd.DataFrame({"x": [1, 2, 3, 4], "y": ["a", "b", "a", "c"]}).to_csv(data, index=False)
    v2 = backend_client.datasets.add(data, "churn")
    assert (v2.version, v2.is_new, v2.row_count) == (2, True, 4) and v2.digest != v1.digest
    assert backend_client.datasets.get("churn") == v2
    assert backend_client.datasets.get("churn@latest") == v2
    assert backend_client.datasets.get("churn@1") == v1
    assert backend_client.datasets.resolve(v1) == v1
    assert [v.version for v in backend_client.datasets.versions("churn")] == [1, 2]
    (listed,) = backend_client.datasets.list()
    assert (listed.name, listed.latest_version, listed.version_count) == ("churn", 2, 2)
    assert listed.description == "renamed"

    pointer = yaml.safe_load((tmp_path / "train.csv.ctloop.yaml").read_text())
    assert (pointer["name"], pointer["version"], pointer["digest"]) == ("churn", 2, v2.digest)

    d = backend_client.datasets.diff("churn@1", "churn@2")
    assert (d.a, d.b) == ("churn@1", "churn@2") and not d.identical
    assert d.row_count is not None and (d.row_count.before, d.row_count.after) == (3, 4)
    assert backend_client.datasets.diff(v2, "churn").identical


def test_folders_version_and_download(backend_client: Any, tmp_path: Path) -> None:
    folder = tmp_path / "events"
    files = {"a.bin": os.urandom(2000), "deep/er/b.txt": b"beta", "c.txt": b"beta"}
    for rel, content in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(content)
    v1 = backend_client.datasets.add(folder, "events")
    assert (v1.kind, v1.file_count, v1.size, v1.format) == ("dir", 3, 2008, None)
    assert backend_client.datasets.add(folder, "events").version == 1
    (folder / "d.txt").write_bytes(b"new")
    v2 = backend_client.datasets.add(folder, "events")
    assert (v2.version, v2.file_count) == (2, 4)

    back = backend_client.datasets.download("events@1", tmp_path / "restored")
    got = {p.relative_to(back).as_posix(): p.read_bytes() for p in back.rglob("*") if p.is_file()}
    assert got == files
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".restored")]

    single = tmp_path / "blob.bin"
    single.write_bytes(os.urandom(500))
    backend_client.datasets.add(single, "blob", pointer=False)
    (tmp_path / "into").mkdir()
    out = backend_client.datasets.download("blob", tmp_path / "into")
    assert out == tmp_path / "into" / "blob.bin" and out.read_bytes() == single.read_bytes()
    assert not (tmp_path / "blob.bin.ctloop.yaml").exists()
    with pytest.raises(InvalidInput, match="it is a file"):
        backend_client.datasets.download("events", out)


def test_errors_are_the_same_classes_with_the_same_messages(
    backend_client: Any, tmp_path: Path
) -> None:
    data = tmp_path / "d.csv"
    for i in range(2):
        data.write_text(f"a\n{i}\n")
        v = backend_client.datasets.add(data, "churn")
    with pytest.raises(NotFound) as err:
        backend_client.datasets.get("churn@7")
    assert str(err.value) == (
        "dataset 'churn' has no version 7 (latest is 2); list them with: ctloop data show churn"
    )
    with pytest.raises(NotFound) as err:
        backend_client.datasets.get("chrun")
    assert str(err.value) == (
        "no dataset named 'chrun'; did you mean 'churn'? list them with: ctloop data list"
    )
    with pytest.raises(NotFound, match="no dataset named 'nothing'"):
        backend_client.datasets.versions("nothing")
    with pytest.raises(NotFound, match="no dataset named 'nothing'"):
        backend_client.datasets.info("nothing")
    with pytest.raises(InvalidInput, match="'churn@two'"):
        backend_client.datasets.get("churn@two")
    foreign = type(v)(**{**v.__dict__, "id": "0" * 32})
    with pytest.raises(NotFound) as err:
        backend_client.datasets.resolve(foreign)
    assert str(err.value) == (
        f"dataset version churn@2 (id {'0' * 32}) is not in this store; "
        "list versions with: ctloop data show churn"
    )
    with pytest.raises(InvalidInput):
        backend_client.datasets.resolve(42)
    with pytest.raises(NotFound, match="no such file or folder: 'missing.csv'"):
        backend_client.datasets.add("missing.csv", "other")
    with pytest.raises(InvalidInput, match="invalid dataset name 'bad name'"):
        backend_client.datasets.add(data, "bad name")
    assert [d.name for d in backend_client.datasets.list()] == ["churn"]
