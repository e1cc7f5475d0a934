"""ctloop.testing: the helpers users test their own code with."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ctloop.testing import store_env, temporary_store


def test_temporary_store_is_a_real_store_and_is_removed() -> None:
    with temporary_store() as client:
        folder = client.settings.store_folder()
        assert client.db.current_revision() == client.db.head_revision()
        digest = client.blobs.put_bytes(b"weights").digest
        assert client.blobs.read_bytes(digest) == b"weights"
        assert Path(client.blobs.root).is_relative_to(folder)
        assert (folder / "ctloop.db").is_file()
    assert not folder.exists()


def test_temporary_store_is_removed_after_an_error() -> None:
    with pytest.raises(RuntimeError, match="boom"), temporary_store() as client:
        folder = client.settings.store_folder()
        client.blobs.put_bytes(b"read-only object")
        raise RuntimeError("boom")
    assert not folder.exists()


def test_temporary_store_ignores_the_callers_artifacts_setting(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    real = tmp_path / "real-artifacts"
    monkeypatch.setenv("CTLOOP_ARTIFACTS", str(real))
    with temporary_store() as client:
        client.blobs.put_bytes(b"scratch")
        assert Path(client.blobs.root).is_relative_to(client.settings.store_folder())
    assert not real.exists()


def test_temporary_store_can_set_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CTLOOP_STORE", "/somewhere/else")
    with temporary_store(set_env=True) as client:
        folder = client.settings.store_folder()
        assert os.environ["CTLOOP_STORE"] == str(folder)
        proc = subprocess.run(
            [sys.executable, "-m", "ctloop", "db", "current", "--json"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr
        assert str(folder / "ctloop.db") in proc.stdout
    assert os.environ["CTLOOP_STORE"] == "/somewhere/else"


def test_store_env_sets_and_restores(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CTLOOP_ARTIFACTS", "s3://before/x")
    monkeypatch.delenv("CTLOOP_STORE", raising=False)
    with store_env(tmp_path / "s"):
        assert os.environ["CTLOOP_STORE"] == str(tmp_path / "s")
        assert "CTLOOP_ARTIFACTS" not in os.environ  # artifacts default to beside the store
    assert "CTLOOP_STORE" not in os.environ
    assert os.environ["CTLOOP_ARTIFACTS"] == "s3://before/x"

    with pytest.raises(KeyError), store_env("sqlite:///a.db", "s3://bucket/p"):
        assert os.environ["CTLOOP_STORE"] == "sqlite:///a.db"
        assert os.environ["CTLOOP_ARTIFACTS"] == "s3://bucket/p"
        raise KeyError("restored even after an error")
    assert "CTLOOP_STORE" not in os.environ
    assert os.environ["CTLOOP_ARTIFACTS"] == "s3://before/x"


def test_store_env_is_what_settings_read(tmp_path: Path) -> None:
    from ctloop.settings import load_settings

    with store_env(tmp_path / "s"):
        assert load_settings().store_folder() == tmp_path / "s"
        assert load_settings().artifacts_root() == str(tmp_path / "s" / "artifacts")
