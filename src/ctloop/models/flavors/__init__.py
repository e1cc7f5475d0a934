"""Flavors: how each kind of model is written to and read from a package folder.

A flavor knows one library's persistence format. It writes the model's files into a
package folder, names the libraries (pinned) that loading needs, and loads the model back
from a folder whose every file has already been checked against its digest.

============ ================================ ==============================================
flavor       models                           file, and what loading trusts
============ ================================ ==============================================
``xgboost``  XGBoost sklearn API or Booster   ``model.ubj``: XGBoost's own format
``lightgbm`` LightGBM sklearn API or Booster  ``model.txt``: LightGBM's text format (+ JSON)
``sklearn``  any scikit-learn estimator       ``model.skops``: skops, only ctloop's allowlist
                                              of scikit-learn, numpy and scipy types, tree
                                              arrays bounds-checked
``python``   anything with ``predict``        ``model.pkl``: cloudpickle; loads only with
                                              ``trust=True`` (unpickling runs code)
============ ================================ ==============================================

Detection order is the table's order: a model is given the first flavor that claims it.
"""

from __future__ import annotations

import functools
import importlib.metadata
from abc import ABC, abstractmethod
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from ctloop.errors import InvalidInput

if TYPE_CHECKING:
    import pandas as pd

    from ctloop.models.package import ModelManifest

__all__ = ["FLAVOR_NAMES", "Flavor", "detect_flavor", "get_flavor", "pinned"]


def pinned(distributions: Iterable[str]) -> list[str]:
    """``name==version`` for each installed distribution (absent ones are left out)."""
    out = []
    for name in sorted(set(distributions), key=str.lower):
        try:
            out.append(f"{name}=={importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def library_version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def from_library(model: Any, top_module: str) -> bool:
    """True when the model's class (or a base class) comes from ``top_module``.

    Checked by module name, so detecting an XGBoost model never imports XGBoost.
    """
    return any(
        (getattr(cls, "__module__", "") or "").split(".")[0] == top_module
        for cls in type(model).__mro__
    )


def class_path(obj: Any) -> str:
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


class Flavor(ABC):
    """One persistence format. Subclasses are stateless singletons."""

    name: ClassVar[str]
    library: ClassVar[str]  # the distribution whose version is the flavor version
    requires: ClassVar[tuple[str, ...]] = ("numpy", "pandas")

    @abstractmethod
    def matches(self, model: Any) -> bool:
        """Whether this flavor can store ``model``."""

    @abstractmethod
    def save(self, model: Any, folder: Path) -> None:
        """Write the model's files into ``folder`` (which exists and is empty)."""

    @abstractmethod
    def load(self, folder: Path, manifest: ModelManifest, *, trust: bool) -> Any:
        """The model, from a folder whose files passed their digest checks."""

    def version(self) -> str:
        return library_version(self.library)

    def requirements(self, model: Any) -> list[str]:
        """Pinned versions of what loading this model needs."""
        return pinned([*self.requires, self.library])

    def check_trust(self, manifest: ModelManifest, *, trust: bool, where: str) -> None:  # noqa: B027 - a hook; most flavors need no trust
        """Refuse before anything is read when loading needs explicit trust."""

    def predict(self, model: Any, frame: pd.DataFrame | Any) -> Any:
        return model.predict(frame)

    def predict_proba(self, model: Any, frame: pd.DataFrame | Any) -> Any:
        return model.predict_proba(frame)

    def has_predict_proba(self, model: Any) -> bool:
        return hasattr(model, "predict_proba")


@functools.cache
def _registry() -> dict[str, Flavor]:
    from ctloop.models.flavors.lightgbm import LightGBMFlavor
    from ctloop.models.flavors.python import PythonFlavor
    from ctloop.models.flavors.sklearn import SklearnFlavor
    from ctloop.models.flavors.xgboost import XGBoostFlavor

    flavors: list[Flavor] = [XGBoostFlavor(), LightGBMFlavor(), SklearnFlavor(), PythonFlavor()]
    return {f.name: f for f in flavors}


FLAVOR_NAMES = ("xgboost", "lightgbm", "sklearn", "python")


def get_flavor(name: str) -> Flavor:
    """The flavor called ``name``."""
    flavors = _registry()
    if name not in flavors:
        raise InvalidInput(f"unknown model flavor {name!r}: use one of {', '.join(FLAVOR_NAMES)}")
    return flavors[name]


def detect_flavor(model: Any) -> Flavor:
    """The first flavor that can store ``model``."""
    for flavor in _registry().values():
        if flavor.matches(model):
            return flavor
    raise InvalidInput(
        f"cannot store a {class_path(model)} as a model: it has no predict method "
        "(log other objects with log_artifact)"
    )
