"""One settings tree for all of ctloop.

Values come, highest first, from: explicit arguments (CLI flags), ``CTLOOP_*`` environment
variables (``CTLOOP_<SECTION>_<KEY>`` for nested ones, e.g. ``CTLOOP_S3_ENDPOINT_URL``), a
TOML config file (``CTLOOP_CONFIG`` or ``./ctloop.toml``), and the defaults below.

Nothing here runs at import: :func:`load_settings` is called once by an entry point (the
CLI, :class:`ctloop.Client`) and the result is passed down.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from ctloop.errors import InvalidInput

__all__ = [
    "DataSettings",
    "HttpSettings",
    "S3Settings",
    "ServerSettings",
    "Settings",
    "TrackingSettings",
    "load_settings",
]


class S3Settings(BaseModel):
    """Where and how to reach S3 (or any S3-compatible endpoint)."""

    endpoint_url: str | None = None
    region: str | None = None
    anon: bool = False


class TrackingSettings(BaseModel):
    """How runs buffer metrics before writing them."""

    flush_interval: float = Field(0.5, gt=0, description="seconds between background flushes")
    batch_size: int = Field(1000, ge=1, description="points that trigger an early flush")


class DataSettings(BaseModel):
    """How datasets are hashed and stored."""

    hash_workers: int | None = Field(
        None,
        ge=1,
        description="threads that hash and store files (default: one per core for a local "
        "store, where more only contend for the same folders; 16 for S3, which waits on the "
        "network)",
    )
    progress: bool = True


class HttpSettings(BaseModel):
    """How the HTTP backend talks to a ctloop server (``CTLOOP_STORE=http://…``)."""

    timeout: float = Field(60.0, gt=0, description="seconds before a request gives up")
    retries: int = Field(3, ge=0, description="retries of idempotent requests on connection errors")


class ServerSettings(BaseModel):
    """Limits of ``ctloop server`` on what clients may send."""

    max_upload_bytes: int = Field(
        5 << 30, ge=1, description="largest file object one upload may carry (default 5 GiB)"
    )
    max_manifest_bytes: int = Field(
        64 << 20,
        ge=1,
        description="largest folder manifest (parsed in memory; 64 MiB is ~500,000 files)",
    )
    max_body_bytes: int = Field(
        16 << 20, ge=1, description="largest JSON request body (default 16 MiB)"
    )


class Settings(BaseSettings):
    """The whole configuration of one ctloop process."""

    model_config = SettingsConfigDict(
        env_prefix="CTLOOP_",
        env_nested_delimiter="_",
        env_nested_max_split=1,
        extra="ignore",
    )

    home: Path = Field(Path(".ctloop"), description="folder of the embedded default store")
    store: str | None = Field(
        None,
        description="a folder, sqlite:///FILE or postgresql+psycopg://… (default: HOME/ctloop.db)",
    )
    artifacts: str | None = Field(
        None, description="a folder or s3://bucket/prefix (default: next to the store)"
    )
    debug: bool = False
    token: str | None = Field(None, description="bearer token for a server started with --auth")
    s3: S3Settings = Field(default_factory=lambda: S3Settings())
    tracking: TrackingSettings = Field(default_factory=lambda: TrackingSettings())
    data: DataSettings = Field(default_factory=lambda: DataSettings())
    http: HttpSettings = Field(default_factory=lambda: HttpSettings())
    server: ServerSettings = Field(default_factory=lambda: ServerSettings())

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        config_file = Path(os.environ.get("CTLOOP_CONFIG", "ctloop.toml"))
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if config_file.is_file():
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=config_file))
        return tuple(sources)

    # --- resolution -----------------------------------------------------------------

    def store_url(self) -> str:
        """The SQLAlchemy URL (or ``http(s)://`` server URL) of the metadata store."""
        store = self.store
        if store is None:
            return "sqlite:///" + str((self.home / "ctloop.db").absolute())
        if "://" in store:
            return store
        return "sqlite:///" + str((Path(store).expanduser() / "ctloop.db").absolute())

    def artifacts_root(self) -> str:
        """The artifact store root: a local folder path or an ``s3://`` URL."""
        if self.artifacts:
            if "://" in self.artifacts:
                return self.artifacts
            return str(Path(self.artifacts).expanduser().absolute())
        return str(self.store_folder() / "artifacts")

    def store_folder(self) -> Path:
        """The local folder that holds the embedded store, caches and default artifacts."""
        store = self.store
        if store is None:
            return self.home.absolute()
        if store.startswith("sqlite:///"):
            return Path(store.removeprefix("sqlite:///")).expanduser().absolute().parent
        if "://" not in store:
            return Path(store).expanduser().absolute()
        return self.home.absolute()

    def cache_dir(self) -> Path:
        """Local caches (file hashes) live here; never shared between machines."""
        return self.store_folder() / "cache"


def load_settings(**overrides: Any) -> Settings:
    """Build the settings once, with explicit overrides (e.g. CLI flags) winning.

    Raises:
        InvalidInput: a value (from a flag, a ``CTLOOP_*`` variable or the config file) is
            malformed; the message names the setting as its environment variable.
    """
    clean = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**clean)
    except ValidationError as exc:
        problems = "; ".join(
            f"CTLOOP_{'_'.join(str(p) for p in err['loc']).upper()}: {err['msg']} "
            f"(got {err.get('input')!r})"
            for err in exc.errors()
        )
        raise InvalidInput(
            f"invalid setting {problems}; fix the flag, the CTLOOP_* variable or ctloop.toml"
        ) from None
