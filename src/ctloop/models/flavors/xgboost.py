"""The ``xgboost`` flavor: XGBoost models in XGBoost's own binary JSON format (UBJSON).

Both the scikit-learn API (``XGBClassifier``, ``XGBRegressor`` …; their classes and
parameters travel inside the model file) and a bare ``Booster`` are stored with
``save_model``. Loading builds only the XGBoost classes named below, never a class taken
from the package beyond that list.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from ctloop.errors import InvalidInput, MissingExtraError
from ctloop.models.flavors import Flavor, from_library, pinned

if TYPE_CHECKING:
    import pandas as pd

    from ctloop.models.package import ModelManifest

__all__ = ["MODEL_FILE", "XGBoostFlavor"]

MODEL_FILE = "model.ubj"
SKLEARN_CLASSES = (
    "XGBClassifier",
    "XGBRegressor",
    "XGBRanker",
    "XGBRFClassifier",
    "XGBRFRegressor",
)


def _xgboost() -> Any:
    try:
        import xgboost
    except ImportError as exc:
        raise MissingExtraError("xgboost", "xgboost", "XGBoost models") from exc
    return xgboost


class XGBoostFlavor(Flavor):
    name: ClassVar[str] = "xgboost"
    library: ClassVar[str] = "xgboost"

    def matches(self, model: Any) -> bool:
        return from_library(model, "xgboost") and callable(getattr(model, "save_model", None))

    def save(self, model: Any, folder: Path) -> None:
        if not self.matches(model):
            raise InvalidInput(
                f"the xgboost flavor stores XGBoost models; got a {type(model).__name__}"
            )
        model.save_model(str(folder / MODEL_FILE))

    def load(self, folder: Path, manifest: ModelManifest, *, trust: bool) -> Any:
        xgb = _xgboost()
        name = manifest.model_class.rsplit(".", 1)[-1]
        if not manifest.model_class.startswith("xgboost.") or name not in (
            *SKLEARN_CLASSES,
            "Booster",
        ):
            raise InvalidInput(
                f"the xgboost flavor loads only {', '.join(SKLEARN_CLASSES)} and Booster; the "
                f"package names {manifest.model_class!r}"
            )
        path = folder / MODEL_FILE
        if not path.is_file():
            raise InvalidInput(f"the package has no {MODEL_FILE}; it is not an xgboost package")
        try:
            if name == "Booster":
                return xgb.Booster(model_file=str(path))
            model = getattr(xgb, name)()
            model.load_model(str(path))
        except xgb.core.XGBoostError as exc:
            raise InvalidInput(f"XGBoost cannot read {MODEL_FILE}: {exc}") from exc
        return model

    def requirements(self, model: Any) -> list[str]:
        extra = [] if type(model).__name__ == "Booster" else ["scikit-learn"]
        return pinned([*self.requires, self.library, *extra])

    def _matrix(self, model: Any, frame: pd.DataFrame | Any) -> Any:
        return _xgboost().DMatrix(frame, enable_categorical=True)

    def predict(self, model: Any, frame: pd.DataFrame | Any) -> Any:
        if type(model).__name__ == "Booster":
            return model.predict(self._matrix(model, frame))
        return model.predict(frame)
