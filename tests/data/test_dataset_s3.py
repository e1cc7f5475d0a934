"""Datasets with the artifact store on S3 (moto on loopback)."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from ctloop import Client


@pytest.mark.s3
def test_folder_added_to_s3_downloads_intact(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, s3_endpoint: str, s3_bucket: str
) -> None:
    monkeypatch.setenv("CTLOOP_S3_ENDPOINT_URL", s3_endpoint)
    folder = tmp_path / "events"
    (folder / "day=2").mkdir(parents=True)
    pd.DataFrame({"v": [1, 2, 3]}).to_csv(folder / "a.csv", index=False)
    pd.DataFrame({"v": [4, 5]}).to_csv(folder / "day=2" / "b.csv", index=False)
    blob = os.urandom(2048)
    files = {
        "a.csv": (folder / "a.csv").read_bytes(),
        "day=2/b.csv": (folder / "day=2" / "b.csv").read_bytes(),
    }

    with Client(store=f"sqlite:///{tmp_path / 'meta.db'}", artifacts=s3_bucket) as client:
        assert client.blobs.root.startswith("s3://")
        v = client.datasets.add(folder, "events")
        assert (v.version, v.kind, v.file_count, v.format, v.row_count) == (1, "dir", 2, "csv", 5)
        assert client.blobs.exists(v.digest, "dir")
        assert client.datasets.add(folder, "events").version == 1
        (folder / "blob.bin").write_bytes(blob)
        v2 = client.datasets.add(folder, "events")
        assert v2.version == 2 and v2.format is None

        back = client.datasets.download("events@1", tmp_path / "restored")
        got = {
            p.relative_to(back).as_posix(): p.read_bytes() for p in back.rglob("*") if p.is_file()
        }
        assert got == files
        latest = client.datasets.download("events", tmp_path / "latest")
        assert (latest / "blob.bin").read_bytes() == blob
