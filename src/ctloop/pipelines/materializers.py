"""Materializers: how a step's output is written to the artifact store and read back.

Chosen by the output's type, first match wins:

=============  =====================  ==========================================
name           type                   stored as
=============  =====================  ==========================================
``dataframe``  pandas DataFrame       Parquet (pyarrow), index and dtypes kept
``series``     pandas Series          Parquet of a one-column frame
``ndarray``    numpy array            ``.npy`` (no pickled objects)
``model``      a fitted sklearn,      a ctloop model package (safe to load:
               XGBoost or LightGBM    skops with an allowlist, or the native
               model                  format)
``json``       dict, list, str, int,  canonical JSON
               float, bool, None
``pickle``     anything else          cloudpickle, with a :class:`PickledOutputWarning`
=============  =====================  ==========================================

The ``NAME/VERSION`` of the materializer is part of every cache key, so changing how a
type is stored (a new version) never reuses outputs written the old way.
"""

from __future__ import annotations

import json
import math
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ctloop._internal.hashing import canonical_json
from ctloop.errors import InvalidInput
from ctloop.pipelines.entities import ArtifactRef

if TYPE_CHECKING:
    import os

    from ctloop.artifacts.manifest import StoredObject


class ObjectStore(Protocol):
    """What materializers need of ``client.objects`` (local or over HTTP)."""

    def put(self, path: str | os.PathLike[str]) -> StoredObject: ...

    def get(self, digest: str, kind: str, dest: str | os.PathLike[str]) -> Path: ...


__all__ = ["PickledOutputWarning", "load", "materializer_for", "save"]


class PickledOutputWarning(UserWarning):
    """A step output had no better format than cloudpickle (readable only by Python)."""


@dataclass(frozen=True)
class Materializer:
    name: str
    version: int
    matches: Callable[[Any], bool]
    # write the value under ``folder``; return the path to store (a file or a folder)
    write: Callable[[Any, Path], Path]
    # read the value back from the stored file or folder
    read: Callable[[Path], Any]

    @property
    def id(self) -> str:
        return f"{self.name}/{self.version}"


def _type_name(value: Any) -> str:
    t = type(value)
    return f"{t.__module__}.{t.__qualname__}"


# --- pandas and numpy ---------------------------------------------------------------------


def _is_frame(value: Any) -> bool:
    pd = _loaded("pandas")
    return pd is not None and isinstance(value, pd.DataFrame)


def _is_series(value: Any) -> bool:
    pd = _loaded("pandas")
    return pd is not None and isinstance(value, pd.Series)


def _is_array(value: Any) -> bool:
    np = _loaded("numpy")
    # exactly ndarray: subclasses (masked arrays, matrices) would lose what makes them so
    return np is not None and type(value) is np.ndarray and value.dtype != object


def _loaded(module: str) -> Any:
    import sys

    return sys.modules.get(module)  # a value of its type exists only if it was imported


def _write_frame(value: Any, folder: Path) -> Path:
    out = folder / "data.parquet"
    try:
        value.to_parquet(out, engine="pyarrow", compression="zstd")
    except Exception as exc:  # mixed-type object columns and the like
        raise _NotThisOne(str(exc)) from exc
    return out


def _read_frame(path: Path) -> Any:
    import pandas as pd

    return pd.read_parquet(path, engine="pyarrow")


_SERIES_COLUMN = "__ctloop_series__"
_NAME_KEY = "ctloop.series_name"


def _write_series(value: Any, folder: Path) -> Path:
    name = value.name
    if not (name is None or isinstance(name, str) or type(name) is int):
        raise _NotThisOne(f"a Series named {name!r}")  # Parquet metadata keeps str/int only
    frame = value.to_frame(name=_SERIES_COLUMN)
    frame.attrs = {**value.attrs, _NAME_KEY: name}
    return _write_frame(frame, folder)


def _read_series(path: Path) -> Any:
    frame = _read_frame(path)
    attrs = dict(frame.attrs)
    name = attrs.pop(_NAME_KEY, None)
    series = frame[_SERIES_COLUMN].rename(name)
    series.attrs = attrs
    return series


def _write_array(value: Any, folder: Path) -> Path:
    import numpy as np

    out = folder / "array.npy"
    np.save(out, value, allow_pickle=False)
    return out


def _read_array(path: Path) -> Any:
    import numpy as np

    return np.load(path, allow_pickle=False)


# --- models -------------------------------------------------------------------------------


def _is_model(value: Any) -> bool:
    if not hasattr(value, "predict") or not hasattr(value, "fit"):
        return False
    from ctloop.models.flavors import detect_flavor

    try:
        return detect_flavor(value).name != "python"  # python models are pickles anyway
    except InvalidInput:
        return False


def _write_model(value: Any, folder: Path) -> Path:
    from ctloop.models.package import write_package

    out = folder / "model"
    write_package(value, out)
    return out


def _read_model(path: Path) -> Any:
    from ctloop.models.loading import load_package_dir
    from ctloop.models.package import MANIFEST_FILE, ModelManifest

    manifest = ModelManifest.from_json((path / MANIFEST_FILE).read_bytes())
    return load_package_dir(path, manifest).raw


# --- JSON and the fallback ----------------------------------------------------------------


def _is_json(value: Any, depth: int = 0) -> bool:
    if depth > 100:
        return False
    if value is None or isinstance(value, bool):
        return True
    if isinstance(value, str):
        return _encodable(value)
    if isinstance(value, int):
        return type(value) is int
    if isinstance(value, float):
        return type(value) is float and math.isfinite(value)
    if isinstance(value, list):
        return all(_is_json(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return all(
            isinstance(k, str) and _encodable(k) and _is_json(v, depth + 1)
            for k, v in value.items()
        )
    return False


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")  # lone surrogates (from os.fsdecode) are not
    except UnicodeEncodeError:
        return False
    return True


def _write_json(value: Any, folder: Path) -> Path:
    out = folder / "value.json"
    out.write_bytes(canonical_json(value))
    return out


def _read_json(path: Path) -> Any:
    return json.loads(path.read_bytes())


def _write_pickle(value: Any, folder: Path) -> Path:
    import cloudpickle

    out = folder / "value.pkl"
    out.write_bytes(cloudpickle.dumps(value))
    return out


def _read_pickle(path: Path) -> Any:
    import pickle

    # Written by a step of this store: as trusted as the store itself.
    return pickle.loads(path.read_bytes())


MATERIALIZERS: tuple[Materializer, ...] = (
    Materializer("dataframe", 1, _is_frame, _write_frame, _read_frame),
    Materializer("series", 1, _is_series, _write_series, _read_series),
    Materializer("ndarray", 1, _is_array, _write_array, _read_array),
    Materializer("model", 1, _is_model, _write_model, _read_model),
    Materializer("json", 1, _is_json, _write_json, _read_json),
    Materializer("pickle", 1, lambda v: True, _write_pickle, _read_pickle),
)
_BY_ID = {m.id: m for m in MATERIALIZERS}


class _NotThisOne(Exception):
    """A materializer matched the type but cannot store this value; try the next one."""


def materializer_for(value: Any) -> Materializer:
    """The first materializer whose type matches ``value``."""
    for m in MATERIALIZERS:
        if m.matches(value):
            return m
    raise AssertionError("the pickle materializer matches everything")  # pragma: no cover


def save(value: Any, objects: ObjectStore, *, what: str = "output") -> ArtifactRef:
    """Write ``value`` to the artifact store with the first materializer that can."""
    with tempfile.TemporaryDirectory(prefix="ctloop-output-") as tmp:
        for m in MATERIALIZERS:
            if not m.matches(value):
                continue
            folder = Path(tmp) / m.name
            folder.mkdir()
            try:
                path = m.write(value, folder)
            except _NotThisOne:
                continue
            if m.name == "pickle":
                warnings.warn(
                    f"{what} of type {_type_name(value)} has no portable format; it is stored "
                    "with cloudpickle, readable only by the same Python and library versions "
                    "(return a DataFrame, an array, a fitted model or JSON values instead)",
                    PickledOutputWarning,
                    stacklevel=2,
                )
            stored = objects.put(path)
            return ArtifactRef(
                digest=stored.digest,
                kind=stored.kind,
                materializer=m.id,
                type=_type_name(value),
                size=stored.size,
            )
    raise AssertionError("unreachable")  # pragma: no cover


def load(ref: ArtifactRef, objects: ObjectStore) -> Any:
    """Read an artifact written by :func:`save` back into a Python object."""
    m = _BY_ID.get(ref.materializer)
    if m is None:
        known = ", ".join(sorted(_BY_ID))
        raise InvalidInput(
            f"artifact {ref.digest[:12]} was written by materializer {ref.materializer!r}, "
            f"which this version of ctloop does not know ({known}); upgrade ctloop"
        )
    if ref.kind == "file":
        with tempfile.TemporaryDirectory(prefix="ctloop-input-") as tmp:
            # the reader gets a file with the suffix it expects
            suffix = {"dataframe": ".parquet", "series": ".parquet", "ndarray": ".npy"}
            dest = Path(tmp) / ("artifact" + suffix.get(m.name, ""))
            objects.get(ref.digest, "file", dest)
            return m.read(dest)
    with tempfile.TemporaryDirectory(prefix="ctloop-input-") as tmp:
        dest = Path(tmp) / "artifact"
        objects.get(ref.digest, "dir", dest)
        return m.read(dest)
