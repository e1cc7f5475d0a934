"""ctloop's allowlist for scikit-learn packages: the only names a ``model.skops`` may hold.

The list is ctloop's own, computed from the installed scikit-learn, numpy and scipy, and
never from the file being loaded. It is grouped by the kind of skops node that may carry
each name, so that, for example, a function name is accepted only where a function is
expected and an estimator only where an object is built.

What is in it, and why:

- every public scikit-learn estimator (``sklearn.utils.all_estimators()``);
- the internal objects fitted estimators hold: loss and link objects, HistGradientBoosting's
  binner, calibrators, Gaussian-process kernels, MLP optimizers, scorers, CV splitters;
- ``sklearn.tree._tree.Tree`` and HistGradientBoosting's ``TreePredictor``, which skops
  refuses by default because scikit-learn indexes their node arrays without bounds checks:
  ctloop admits them because it checks every index first (see ``_skops_safety``);
- numpy arrays, dtypes, scalar types, ufuncs, a few reductions and random generators;
  scipy sparse matrices (CSR, CSC, COO, whose index arrays ctloop checks) and scipy.special
  ufuncs;
- functions scikit-learn stores on fitted objects: ``check_array`` (HistGradientBoosting),
  univariate feature-selection scores, metric functions behind scorers.

What is deliberately not in it: KD-trees and ball trees (``KNeighbors*`` with
``algorithm="kd_tree"|"ball_tree"|"auto"``; their index arrays are read unchecked too;
use ``algorithm="brute"``), bound methods, ``operator`` functions, arbitrary numpy or
scipy functions, and anything outside scikit-learn, numpy and scipy. A model holding one of
them is refused when it is logged, with the names; log it with ``flavor="python"`` instead.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import sys
import warnings
from dataclasses import dataclass
from typing import Any

__all__ = ["Allowlist", "allowlist", "type_name"]

TREE = "sklearn.tree._tree.Tree"
TREE_PREDICTOR = "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"

_BUILTIN_VALUES = [
    "builtins.str",
    "builtins.int",
    "builtins.float",
    "builtins.bool",
    "builtins.complex",
    "builtins.list",
    "builtins.tuple",
    "builtins.set",
    "builtins.dict",
    "builtins.slice",
    "builtins.bytes",
    "builtins.bytearray",
    "builtins.NoneType",
]

# Internal scikit-learn classes found on fitted estimators (module, names). Missing ones
# (other scikit-learn versions) are skipped.
_SKLEARN_INTERNAL_CLASSES: list[tuple[str, list[str]]] = [
    ("sklearn.ensemble._hist_gradient_boosting.binning", ["_BinMapper"]),
    ("sklearn.ensemble._hist_gradient_boosting.predictor", ["TreePredictor"]),
    (
        "sklearn.calibration",
        ["_CalibratedClassifier", "_SigmoidCalibration", "_TemperatureScaling"],
    ),
    ("sklearn.neural_network._stochastic_optimizers", ["AdamOptimizer", "SGDOptimizer"]),
    ("sklearn.metrics._scorer", ["_Scorer", "_PassthroughScorer", "_MultimetricScorer"]),
    ("sklearn.compose._column_transformer", ["_RemainderColsList"]),
]
_SGD_LOSSES = [
    "Hinge",
    "ModifiedHuber",
    "SquaredHinge",
    "Log",
    "SquaredLoss",
    "Huber",
    "EpsilonInsensitive",
    "SquaredEpsilonInsensitive",
]
_SKLEARN_FUNCTIONS: list[tuple[str, list[str]]] = [
    ("sklearn.utils.validation", ["check_array"]),
    (
        "sklearn.feature_selection",
        [
            "chi2",
            "f_classif",
            "f_oneway",
            "f_regression",
            "r_regression",
            "mutual_info_classif",
            "mutual_info_regression",
        ],
    ),
]
_NUMPY_FUNCTIONS = [
    "mean",
    "median",
    "sum",
    "max",
    "min",
    "std",
    "var",
    "nanmean",
    "nanmedian",
    "nansum",
    "nanmax",
    "nanmin",
    "average",
]
_SPARSE = ["csr", "csc", "coo"]
_RANDOM = ["numpy.random.mtrand.RandomState"]


@dataclass(frozen=True)
class Allowlist:
    """Allowed names, by the kind of skops node that may carry them."""

    objects: frozenset[str]  # built with __new__ + state: estimators and internal objects
    losses: frozenset[str]  # Cython loss objects rebuilt from __reduce__
    functions: frozenset[str]  # functions and ufuncs stored as values
    types: frozenset[str]  # types stored as values (dtype=np.float64, dict key types…)
    arrays: frozenset[str]  # numpy arrays and scalars
    sparse: frozenset[str]  # scipy sparse matrices and arrays
    random: frozenset[str]  # numpy random states and generators
    bit_generators: frozenset[str]  # numpy.random.<BitGenerator> a Generator may name

    @property
    def all(self) -> frozenset[str]:
        """Every allowed name: what ctloop passes to ``skops.io.load(trusted=...)``."""
        import numpy as np

        return (
            self.objects
            | self.losses
            | self.functions
            | self.types
            | self.arrays
            | self.sparse
            | self.random
            | frozenset(_BUILTIN_VALUES)
            | frozenset(
                [
                    "collections.OrderedDict",
                    "collections.defaultdict",
                    "functools.partial",
                    "numpy.dtype",
                    type_name(np.ma.MaskedArray),
                    "sklearn.utils._bunch.Bunch",
                    TREE,
                ]
            )
        )


def type_name(obj: Any) -> str:
    """``module.name`` the way skops records it (the module an object is found in)."""
    module = getattr(obj, "__module__", None)
    name = obj.__name__
    if module is None:
        # scipy.special ufuncs have no __module__: skops looks them up in loaded modules
        for mod_name, mod in list(sys.modules.items()):
            if mod_name in ("__main__", "__mp_main__") or mod is None:
                continue
            found = getattr(mod, "__dict__", {}).get(name)
            if found is obj:
                module = mod_name
                break
    return f"{module}.{name}"


def _classes(module: str, names: list[str]) -> list[str]:
    try:
        mod = importlib.import_module(module)
    except ImportError:
        return []
    return [type_name(getattr(mod, n)) for n in names if hasattr(mod, n)]


def _subclasses_in(module: str, prefix: str = "", base: str | None = None) -> list[str]:
    try:
        mod = importlib.import_module(module)
    except ImportError:
        return []
    base_cls = getattr(mod, base) if base and hasattr(mod, base) else None
    out = []
    for name, obj in vars(mod).items():
        if not inspect.isclass(obj) or not name.startswith(prefix):
            continue
        if base_cls is not None and not issubclass(obj, base_cls):
            continue
        if (obj.__module__ or "").startswith("sklearn."):
            out.append(type_name(obj))
    return out


@functools.cache
def allowlist() -> Allowlist:
    """The allowlist for the installed scikit-learn, numpy and scipy (computed once)."""
    import numpy as np
    import scipy.sparse
    import scipy.special
    import sklearn.metrics
    from sklearn.utils import all_estimators

    with warnings.catch_warnings():
        # all_estimators imports every scikit-learn module; some warn about deprecations
        # of their own on import, which says nothing about the model being loaded.
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        estimators = [type_name(cls) for _, cls in all_estimators()]

    objects = {n for n in estimators if n.startswith("sklearn.")}
    for module, names in _SKLEARN_INTERNAL_CLASSES:
        objects.update(_classes(module, names))
    objects.update(_subclasses_in("sklearn._loss.loss", base="BaseLoss"))
    objects.update(_subclasses_in("sklearn._loss.link", base="BaseLink"))
    objects.update(_classes("sklearn._loss.link", ["Interval"]))
    objects.update(_subclasses_in("sklearn.gaussian_process.kernels", base="Kernel"))
    objects.update(_subclasses_in("sklearn.model_selection._split", base="BaseCrossValidator"))
    objects.update(_subclasses_in("sklearn.model_selection._split", base="BaseShuffleSplit"))

    losses = set(_subclasses_in("sklearn._loss._loss", prefix="Cy"))
    losses.update(_classes("sklearn.linear_model._sgd_fast", _SGD_LOSSES))

    scalar_types = sorted(
        {type_name(t) for t in np.sctypeDict.values() if type_name(t).startswith("numpy.")}
    )
    functions: set[str] = set()
    for attr in dir(np):
        obj = getattr(np, attr, None)
        if isinstance(obj, np.ufunc):
            functions.add(f"numpy.{attr}")
    functions.update(f"numpy.{n}" for n in _NUMPY_FUNCTIONS if hasattr(np, n))
    # skops names a scipy.special ufunc by the first loaded module holding it, which
    # depends on import order; accept each one under every scipy.special module holding it.
    ufuncs = {
        attr: obj
        for attr in dir(scipy.special)
        if not attr.startswith("_") and isinstance(obj := getattr(scipy.special, attr), np.ufunc)
    }
    special_modules = [
        (name, mod)
        for name, mod in list(sys.modules.items())
        if mod is not None and (name == "scipy.special" or name.startswith("scipy.special."))
    ]
    for attr, obj in ufuncs.items():
        functions.add(f"scipy.special.{attr}")
        for mod_name, mod in special_modules:
            # vars(), not getattr: deprecated scipy.special submodules warn on access
            if vars(mod).get(attr) is obj:
                functions.add(f"{mod_name}.{attr}")
    for module, names in _SKLEARN_FUNCTIONS:
        functions.update(_classes(module, names))
    for attr in getattr(sklearn.metrics, "__all__", []):
        obj = getattr(sklearn.metrics, attr, None)
        if inspect.isfunction(obj) and attr.endswith(("_score", "_error", "_loss", "corrcoef")):
            functions.add(type_name(obj))

    sparse: set[str] = set()
    for fmt in _SPARSE:
        for suffix in ("matrix", "array"):
            cls = getattr(scipy.sparse, f"{fmt}_{suffix}", None)
            if cls is not None:
                sparse.add(type_name(cls))

    bit_generators = {
        f"numpy.random.{attr}"
        for attr in dir(np.random)
        if isinstance(obj := getattr(np.random, attr), type)
        and issubclass(obj, np.random.BitGenerator)
        and obj is not np.random.BitGenerator
    }
    random = {*_RANDOM, type_name(np.random.Generator)}

    classes = objects | losses | {TREE}
    types = set(_BUILTIN_VALUES) | set(scalar_types) | classes | {"numpy.ndarray"}
    return Allowlist(
        objects=frozenset(objects),
        losses=frozenset(losses),
        functions=frozenset(functions),
        types=frozenset(types),
        arrays=frozenset({"numpy.ndarray", *scalar_types}),
        sparse=frozenset(sparse),
        random=frozenset(random),
        bit_generators=frozenset(bit_generators),
    )
