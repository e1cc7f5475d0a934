"""The ``sklearn`` flavor: any scikit-learn estimator or Pipeline, stored with skops.

skops stores a model as a zip of a JSON schema and ``.npy`` arrays, and rebuilds it without
pickle. Loading admits only the types on ctloop's allowlist (``_sklearn_allowlist``) and
checks the index arrays of every tree before and after skops builds the model
(``_skops_safety``). The same audit runs when the model is logged, so a model ctloop would
refuse to load is refused at ``log_model`` time, naming the types.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from ctloop.errors import InvalidInput, MissingExtraError, PermissionDenied
from ctloop.models.flavors import Flavor, pinned

if TYPE_CHECKING:
    from ctloop.models.package import ModelManifest

__all__ = ["MODEL_FILE", "SklearnFlavor"]

MODEL_FILE = "model.skops"


def _skops_io() -> Any:
    try:
        import skops.io
    except ImportError as exc:
        raise MissingExtraError("skops", "all", "scikit-learn model packages") from exc
    return skops.io


class SklearnFlavor(Flavor):
    name: ClassVar[str] = "sklearn"
    library: ClassVar[str] = "scikit-learn"
    requires: ClassVar[tuple[str, ...]] = ("numpy", "pandas", "scipy", "skops")

    def matches(self, model: Any) -> bool:
        from sklearn.base import BaseEstimator

        return isinstance(model, BaseEstimator)

    def save(self, model: Any, folder: Path) -> None:
        from ctloop.models.flavors._skops_safety import DisallowedTypes, inspect_skops

        if not self.matches(model):
            raise InvalidInput(
                f"the sklearn flavor stores scikit-learn estimators; got a "
                f"{type(model).__module__}.{type(model).__name__}"
            )
        sio = _skops_io()
        path = folder / MODEL_FILE
        try:
            sio.dump(model, path)
        except Exception as exc:  # skops raises TypeError subclasses and others per type
            raise InvalidInput(
                f"skops cannot store this {type(model).__name__}: {exc}; log it with "
                "flavor='python' (cloudpickle) instead"
            ) from exc
        try:
            inspect_skops(path)
        except DisallowedTypes as exc:
            raise InvalidInput(
                f"this {type(model).__name__} holds types that ctloop's sklearn flavor will not "
                f"load: {', '.join(exc.names)}. Replace them (e.g. KNeighbors* with "
                "algorithm='brute', numpy ufuncs instead of other functions), or log the model "
                "with flavor='python' (cloudpickle; loading it then needs trust=True)"
            ) from None

    def load(self, folder: Path, manifest: ModelManifest, *, trust: bool) -> Any:
        from ctloop.models.flavors._sklearn_allowlist import allowlist
        from ctloop.models.flavors._skops_safety import check_model, inspect_skops

        path = folder / MODEL_FILE
        if not path.is_file():
            raise InvalidInput(f"the package has no {MODEL_FILE}; it is not an sklearn package")
        inspect_skops(path)
        sio = _skops_io()
        from skops.io.exceptions import UntrustedTypesFoundException

        try:
            model = sio.load(path, trusted=sorted(allowlist().all))
        except UntrustedTypesFoundException as exc:
            raise PermissionDenied(f"refusing to load {MODEL_FILE}: {exc}") from exc
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
            raise InvalidInput(f"cannot load {MODEL_FILE}: {exc}") from exc
        check_model(model)
        return model

    def requirements(self, model: Any) -> list[str]:
        return pinned([*self.requires, self.library])
