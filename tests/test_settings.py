"""Settings: where each value comes from, and how store and artifact locations resolve."""

from __future__ import annotations

from pathlib import Path

import pytest

from ctloop.errors import InvalidInput
from ctloop.settings import Settings, load_settings

# The autouse fixture in conftest.py clears CTLOOP_* and chdirs into tmp_path.


def test_defaults_put_the_store_in_dot_ctloop(tmp_path: Path) -> None:
    s = load_settings()
    assert s.store is None
    assert s.store_url() == f"sqlite:///{tmp_path / '.ctloop' / 'ctloop.db'}"
    assert s.store_folder() == tmp_path / ".ctloop"
    assert s.artifacts_root() == str(tmp_path / ".ctloop" / "artifacts")
    assert s.cache_dir() == tmp_path / ".ctloop" / "cache"
    assert s.s3.endpoint_url is None
    assert s.tracking.batch_size == 1000


def test_loading_settings_creates_nothing(tmp_path: Path) -> None:
    s = load_settings()
    s.store_url(), s.artifacts_root(), s.store_folder(), s.cache_dir()
    assert list(tmp_path.iterdir()) == []


def test_environment_is_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CTLOOP_STORE", str(tmp_path / "envstore"))
    monkeypatch.setenv("CTLOOP_ARTIFACTS", "s3://bucket/prefix")
    monkeypatch.setenv("CTLOOP_S3_ENDPOINT_URL", "http://127.0.0.1:9000")
    monkeypatch.setenv("CTLOOP_S3_REGION", "eu-west-1")
    monkeypatch.setenv("CTLOOP_TRACKING_BATCH_SIZE", "17")
    monkeypatch.setenv("CTLOOP_TRACKING_FLUSH_INTERVAL", "2.5")
    monkeypatch.setenv("CTLOOP_DATA_HASH_WORKERS", "3")
    s = load_settings()
    assert s.store == str(tmp_path / "envstore")
    assert s.store_url() == f"sqlite:///{tmp_path / 'envstore' / 'ctloop.db'}"
    assert s.artifacts_root() == "s3://bucket/prefix"
    assert s.s3.endpoint_url == "http://127.0.0.1:9000"
    assert s.s3.region == "eu-west-1"
    assert s.tracking.batch_size == 17
    assert s.tracking.flush_interval == 2.5
    assert s.data.hash_workers == 3


def test_explicit_overrides_beat_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CTLOOP_STORE", "/from/env")
    monkeypatch.setenv("CTLOOP_S3_ENDPOINT_URL", "http://env:9000")
    monkeypatch.setenv("CTLOOP_S3_REGION", "eu-west-1")
    monkeypatch.setenv("CTLOOP_TRACKING_BATCH_SIZE", "17")
    s = load_settings(
        store="/from/flag", s3={"endpoint_url": "http://flag:9000"}, tracking={"batch_size": 3}
    )
    assert s.store == "/from/flag"
    assert s.s3.endpoint_url == "http://flag:9000"
    assert s.s3.region == "eu-west-1"  # merged per key: the flag set only the endpoint
    assert s.tracking.batch_size == 3


def test_none_overrides_mean_not_given(monkeypatch: pytest.MonkeyPatch) -> None:
    # The CLI passes every flag, unset ones as None: they must not hide the environment.
    monkeypatch.setenv("CTLOOP_STORE", "/from/env")
    assert load_settings(store=None, artifacts=None).store == "/from/env"


def test_config_file_is_read_and_beaten_by_env(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "ctloop.toml").write_text(
        'store = "/from/file"\nartifacts = "/art/from/file"\n'
        '[tracking]\nbatch_size = 7\n[s3]\nregion = "file-region"\n'
    )
    s = load_settings()
    assert (s.store, s.artifacts, s.tracking.batch_size) == ("/from/file", "/art/from/file", 7)
    assert s.s3.region == "file-region"

    monkeypatch.setenv("CTLOOP_STORE", "/from/env")
    monkeypatch.setenv("CTLOOP_TRACKING_BATCH_SIZE", "9")
    s = load_settings()
    assert s.store == "/from/env"
    assert s.tracking.batch_size == 9
    assert s.artifacts == "/art/from/file"  # not set in env: the file still counts
    assert s.s3.region == "file-region"
    assert load_settings(store="/from/flag").store == "/from/flag"


def test_config_file_named_by_ctloop_config(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    other = tmp_path / "conf" / "team.toml"
    other.parent.mkdir()
    other.write_text('store = "/from/team"\n')
    (tmp_path / "ctloop.toml").write_text('store = "/from/local"\n')
    monkeypatch.setenv("CTLOOP_CONFIG", str(other))
    assert load_settings().store == "/from/team"


def test_invalid_values_are_invalid_input_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CTLOOP_TRACKING_BATCH_SIZE", "0")
    with pytest.raises(InvalidInput, match="CTLOOP_TRACKING_BATCH_SIZE") as info:
        load_settings()
    assert "'0'" in str(info.value)
    monkeypatch.setenv("CTLOOP_TRACKING_BATCH_SIZE", "many")
    with pytest.raises(InvalidInput, match="CTLOOP_TRACKING_BATCH_SIZE"):
        load_settings()


# --- resolution ---------------------------------------------------------------------------


def test_folder_store(tmp_path: Path) -> None:
    s = load_settings(store="stores/one")
    folder = tmp_path / "stores" / "one"
    assert s.store_url() == f"sqlite:///{folder / 'ctloop.db'}"
    assert s.store_folder() == folder
    assert s.artifacts_root() == str(folder / "artifacts")
    assert s.cache_dir() == folder / "cache"


def test_folder_store_expands_the_home_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    s = load_settings(store="~/ml")
    assert s.store_folder() == tmp_path / "home" / "ml"
    assert s.store_url() == f"sqlite:///{tmp_path / 'home' / 'ml' / 'ctloop.db'}"


def test_absolute_sqlite_url(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db' / 'meta.db'}"  # four slashes: absolute
    s = load_settings(store=url)
    assert url.startswith("sqlite:////")
    assert s.store_url() == url
    assert s.store_folder() == tmp_path / "db"
    assert s.artifacts_root() == str(tmp_path / "db" / "artifacts")


def test_relative_sqlite_url_is_relative_to_the_working_directory(tmp_path: Path) -> None:
    s = load_settings(store="sqlite:///rel/meta.db")
    assert s.store_url() == "sqlite:///rel/meta.db"
    assert s.store_folder() == tmp_path / "rel"


def test_postgresql_url_keeps_local_things_in_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    url = "postgresql+psycopg://ml@db.internal:5432/ctloop"
    s = load_settings(store=url)
    assert s.store_url() == url
    assert s.store_folder() == tmp_path / ".ctloop"
    assert s.artifacts_root() == str(tmp_path / ".ctloop" / "artifacts")

    monkeypatch.setenv("CTLOOP_HOME", str(tmp_path / "h"))
    s = load_settings(store=url, artifacts="s3://models/ctloop")
    assert s.store_folder() == tmp_path / "h"
    assert s.cache_dir() == tmp_path / "h" / "cache"
    assert s.artifacts_root() == "s3://models/ctloop"


def test_server_url_is_passed_through() -> None:
    assert load_settings(store="https://ctloop.example.com").store_url() == (
        "https://ctloop.example.com"
    )


def test_relative_artifacts_folder_is_made_absolute(tmp_path: Path) -> None:
    s = load_settings(store="postgresql+psycopg://x@h/db", artifacts="art")
    assert s.artifacts_root() == str(tmp_path / "art")


def test_settings_is_one_tree() -> None:
    fields = set(Settings.model_fields)
    assert {"home", "store", "artifacts", "s3", "tracking", "data"} <= fields
