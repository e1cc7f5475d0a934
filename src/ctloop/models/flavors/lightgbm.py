"""The ``lightgbm`` flavor: LightGBM models in LightGBM's text model format.

The booster is stored with ``save_model`` (``model.txt``, which also carries the pandas
categories it was trained with). A scikit-learn API model (``LGBMClassifier`` …) also gets
``sklearn-wrapper.json``: its class, JSON-representable parameters, objective and class
labels, from which the estimator is rebuilt around the loaded booster.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from ctloop.errors import InvalidInput, MissingExtraError
from ctloop.models.flavors import Flavor, from_library, pinned

if TYPE_CHECKING:
    from ctloop.models.package import ModelManifest

__all__ = ["MODEL_FILE", "WRAPPER_FILE", "LightGBMFlavor"]

MODEL_FILE = "model.txt"
WRAPPER_FILE = "sklearn-wrapper.json"
SKLEARN_CLASSES = ("LGBMClassifier", "LGBMRegressor", "LGBMRanker")


def _lightgbm() -> Any:
    try:
        import lightgbm
    except ImportError as exc:
        raise MissingExtraError("lightgbm", "lightgbm", "LightGBM models") from exc
    return lightgbm


def _json_params(params: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    kept, dropped = {}, []
    for key, value in params.items():
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError):
            dropped.append(key)
            continue
        kept[key] = value
    return kept, sorted(dropped)


class LightGBMFlavor(Flavor):
    name: ClassVar[str] = "lightgbm"
    library: ClassVar[str] = "lightgbm"

    def matches(self, model: Any) -> bool:
        return from_library(model, "lightgbm") and (
            callable(getattr(model, "save_model", None)) or hasattr(model, "booster_")
        )

    def save(self, model: Any, folder: Path) -> None:
        from ctloop.models.signature import _json_scalar

        if not self.matches(model):
            raise InvalidInput(
                f"the lightgbm flavor stores LightGBM models; got a {type(model).__name__}"
            )
        if type(model).__name__ == "Booster":
            model.save_model(str(folder / MODEL_FILE))
            return
        if type(model).__name__ not in SKLEARN_CLASSES:
            raise InvalidInput(
                f"the lightgbm flavor stores {', '.join(SKLEARN_CLASSES)} and Booster; got a "
                f"{type(model).__name__} (log it with flavor='python')"
            )
        model.booster_.save_model(str(folder / MODEL_FILE))
        params, dropped = _json_params(model.get_params())
        objective = getattr(model, "_objective", None)
        classes = getattr(model, "classes_", None) if hasattr(model, "predict_proba") else None
        wrapper = {
            "class": type(model).__name__,
            "params": params,
            "dropped_params": dropped,
            "objective": objective if isinstance(objective, str) else None,
            "classes": [_json_scalar(c) for c in classes] if classes is not None else None,
            "fitted_with_feature_names": bool(getattr(model, "_fitted_with_feature_names", False)),
        }
        (folder / WRAPPER_FILE).write_text(json.dumps(wrapper, indent=2, sort_keys=True) + "\n")

    def load(self, folder: Path, manifest: ModelManifest, *, trust: bool) -> Any:
        lgb = _lightgbm()
        path = folder / MODEL_FILE
        if not path.is_file():
            raise InvalidInput(f"the package has no {MODEL_FILE}; it is not a lightgbm package")
        try:
            booster = lgb.Booster(model_file=str(path))
        except lgb.basic.LightGBMError as exc:
            raise InvalidInput(f"LightGBM cannot read {MODEL_FILE}: {exc}") from exc
        wrapper_path = folder / WRAPPER_FILE
        if not wrapper_path.is_file():
            return booster
        try:
            wrapper = json.loads(wrapper_path.read_text())
        except ValueError as exc:
            raise InvalidInput(f"{WRAPPER_FILE} is not valid JSON: {exc}") from exc
        return _rebuild(lgb, booster, wrapper)

    def requirements(self, model: Any) -> list[str]:
        extra = [] if type(model).__name__ == "Booster" else ["scikit-learn"]
        return pinned([*self.requires, self.library, *extra])


def _rebuild(lgb: Any, booster: Any, wrapper: dict[str, Any]) -> Any:
    """The scikit-learn estimator around a loaded booster (what ``fit`` would have set)."""
    import numpy as np

    name = wrapper.get("class")
    if name not in SKLEARN_CLASSES:
        raise InvalidInput(f"{WRAPPER_FILE} names {name!r}, not one of {SKLEARN_CLASSES}")
    params = wrapper.get("params")
    if not isinstance(params, dict):
        raise InvalidInput(f"{WRAPPER_FILE} has no params")
    try:
        model = getattr(lgb, name)(**params)
    except TypeError as exc:
        raise InvalidInput(f"{WRAPPER_FILE} has parameters {name} does not take: {exc}") from exc
    model._Booster = booster
    model._n_features = booster.num_feature()
    model._n_features_in = booster.num_feature()
    model._fitted_with_feature_names = bool(wrapper.get("fitted_with_feature_names"))
    model._evals_result = {}
    model._best_iteration = booster.best_iteration
    model._best_score = {}
    model._objective = wrapper.get("objective") or params.get("objective")
    classes = wrapper.get("classes")
    if name == "LGBMClassifier":
        if not isinstance(classes, list) or len(classes) < 2:
            raise InvalidInput(f"{WRAPPER_FILE} lists no classes for an LGBMClassifier")
        from lightgbm.compat import _LGBMLabelEncoder

        encoder = _LGBMLabelEncoder().fit(np.asarray(classes))
        model._le = encoder
        model._classes = encoder.classes_
        model._n_classes = len(encoder.classes_)
        model._class_map = dict(
            zip(encoder.classes_, encoder.transform(encoder.classes_), strict=True)
        )
        model._class_weight = None
    model.fitted_ = True
    return model
