"""``load_frame``: a dataset version's data as one DataFrame, whatever its layout."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from ctloop.errors import InvalidInput, NotFound
from ctloop.validation import load_frame


def test_a_compressed_csv_file_version_leaves_no_copy_behind(
    sqlite_client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "orders.csv.gz"
    pd.DataFrame({"id": [1, 2], "s": ["a", None]}).to_csv(data, index=False)
    sqlite_client.datasets.add(data, "orders", pointer=False)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    frame = load_frame(sqlite_client, "orders")
    assert frame["id"].tolist() == [1, 2] and frame["s"].isna().tolist() == [False, True]
    assert list(scratch.iterdir()) == []


def test_a_folder_of_parquet_files_is_stacked_in_name_order(
    sqlite_client: Any, tmp_path: Path
) -> None:
    folder = tmp_path / "parts"
    folder.mkdir()
    pd.DataFrame({"x": [3, 4]}).to_parquet(folder / "part-1.parquet", index=False)
    pd.DataFrame({"x": [1, 2]}).to_parquet(folder / "part-0.parquet", index=False)
    (folder / "_SUCCESS").write_text("")
    version = sqlite_client.datasets.add(folder, "parts", pointer=False)
    frame = load_frame(sqlite_client, version)
    assert frame["x"].tolist() == [1, 2, 3, 4] and frame.index.tolist() == [0, 1, 2, 3]


def test_data_that_is_no_table_is_refused_by_name(sqlite_client: Any, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    sqlite_client.datasets.add(tmp_path / "notes.txt", "notes", pointer=False)
    with pytest.raises(InvalidInput, match=r"notes@1 is not a CSV or Parquet table"):
        load_frame(sqlite_client, "notes@1")
    (tmp_path / "broken.parquet").write_bytes(b"PAR1 not really")
    sqlite_client.datasets.add(tmp_path / "broken.parquet", "broken", pointer=False)
    with pytest.raises(InvalidInput, match=r"cannot read dataset version broken@1 as parquet"):
        load_frame(sqlite_client, "broken")
    with pytest.raises(NotFound, match="no dataset named 'nope'"):
        load_frame(sqlite_client, "nope@1")
