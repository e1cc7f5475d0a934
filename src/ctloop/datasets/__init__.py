"""Synthetic datasets for examples, tests and demos, in the spirit of ``sklearn.datasets``.

``churn``: a customer-churn table with covariate, concept and prior drift injected at
chosen rows (see ``docs/churn-data.md``)::

    from ctloop.datasets import churn

    df = churn.generate(10_000, seed=0)

Importing this package loads neither numpy nor pandas; each dataset module loads on first
use and imports them only inside the functions that need them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = ["churn"]

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from ctloop.datasets import churn


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module 'ctloop.datasets' has no attribute {name!r}")
    module = importlib.import_module(f"{__name__}.{name}")
    globals()[name] = module
    return module


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
