"""The ``python`` flavor: any object with ``predict``, stored with cloudpickle.

Unpickling runs whatever code the file asks for, so a ``python`` package is loaded only
when the caller passes ``trust=True`` — and, like every package, only after all its files
passed their digest checks, so a package changed after it was logged is refused before a
byte of it is unpickled.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from ctloop.errors import InvalidInput, MissingExtraError, PermissionDenied
from ctloop.models.flavors import Flavor, pinned

if TYPE_CHECKING:
    from ctloop.models.package import ModelManifest

__all__ = ["MODEL_FILE", "PythonFlavor"]

MODEL_FILE = "model.pkl"


def _cloudpickle() -> Any:
    try:
        import cloudpickle
    except ImportError as exc:
        raise MissingExtraError("cloudpickle", "all", "python-flavor models") from exc
    return cloudpickle


def _distributions_of(model: Any) -> set[str]:
    """Installed distributions that provide the model's classes (and their bases)."""
    by_module = importlib.metadata.packages_distributions()
    found: set[str] = set()
    for cls in type(model).__mro__:
        top = (getattr(cls, "__module__", "") or "").split(".")[0]
        found.update(by_module.get(top, []))
    return found


class PythonFlavor(Flavor):
    name: ClassVar[str] = "python"
    library: ClassVar[str] = "cloudpickle"

    def matches(self, model: Any) -> bool:
        return callable(getattr(model, "predict", None))

    def save(self, model: Any, folder: Path) -> None:
        if not self.matches(model):
            raise InvalidInput(
                f"the python flavor stores objects with a predict method; a "
                f"{type(model).__name__} has none"
            )
        with open(folder / MODEL_FILE, "wb") as f:
            _cloudpickle().dump(model, f)

    def check_trust(self, manifest: ModelManifest, *, trust: bool, where: str) -> None:
        if not trust:
            raise PermissionDenied(
                f"{where} is a 'python' flavor model ({manifest.model_class}) stored with "
                "cloudpickle, and unpickling runs arbitrary code from the file. Load it only "
                "if you trust whoever logged it, with trust=True (e.g. "
                "ctloop.load_model(..., trust=True))"
            )

    def load(self, folder: Path, manifest: ModelManifest, *, trust: bool) -> Any:
        self.check_trust(manifest, trust=trust, where="this package")
        path = folder / MODEL_FILE
        if not path.is_file():
            raise InvalidInput(f"the package has no {MODEL_FILE}; it is not a python package")
        with open(path, "rb") as f:
            return _cloudpickle().load(f)

    def requirements(self, model: Any) -> list[str]:
        return pinned([*self.requires, self.library, *_distributions_of(model)])
