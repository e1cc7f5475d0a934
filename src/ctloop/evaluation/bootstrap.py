"""Paired bootstrap: how sure are we that the candidate beats the champion on a metric?

Both models were evaluated on the same holdout rows. One resample draws ``n`` rows with
replacement; the metric is computed for the candidate and the champion **on the same
drawn rows**, and their difference kept. Repeating that ``resamples`` times gives the
distribution of the difference; its central ``confidence`` share is the interval (the
percentile method). Pairing matters: most of the row-to-row noise hits both models alike
and cancels, so the interval is far narrower than two separate intervals would suggest.

The difference is always oriented as an *improvement* (see
:func:`ctloop.evaluation.metrics.improvement`): ``candidate - champion`` for
higher-is-better metrics, ``champion - candidate`` for log loss, rmse and mae, so a
positive interval means the candidate is better either way.

numpy is imported when a bootstrap runs, not with this module, so a gate spec (which
checks its bootstrap settings here) can be read without it.

Resamples are drawn as row counts (how often each row was picked), and every metric is a
weighted sum over rows, so a block of resamples is a few matrix products: 1000 resamples
of 10 000 rows take a fraction of a second.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from ctloop.errors import InvalidInput
from ctloop.evaluation import metrics as m

if TYPE_CHECKING:
    import numpy as np

    from ctloop.evaluation.scoring import Evaluation

__all__ = ["BootstrapInterval", "metric_interval", "paired_bootstrap", "resample_weights"]

# resamples per block: keeps each (block × n) weight matrix near 32 MB
_BLOCK_ELEMENTS = 4_000_000
MIN_RESAMPLES = 10
MAX_RESAMPLES = 1_000_000


@dataclass(frozen=True)
class BootstrapInterval:
    """A bootstrap confidence interval of a metric, or of its improvement over a champion.

    Attributes:
        metric: the metric's registered name.
        confidence: e.g. 0.95 for the central 95 % of resampled values.
        lower, upper: the interval's bounds.
        estimate: the value on the full holdout (improvement, for a paired bootstrap).
        mean: the mean of the resampled values.
        resamples: how many resamples were drawn.
        used: how many gave a defined value (ROC AUC is undefined on a resample with one
            class only; those are left out).
        seed: the random seed (None: not reproducible).
    """

    metric: str
    confidence: float
    lower: float
    upper: float
    estimate: float
    mean: float
    resamples: int
    used: int
    seed: int | None

    @property
    def width(self) -> float:
        return self.upper - self.lower

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_settings(confidence: Any, resamples: Any, seed: Any) -> None:
    """Raise for a confidence outside (0, 1), a bad resample count or a bad seed."""
    if isinstance(confidence, bool) or not isinstance(confidence, int | float):
        raise InvalidInput(f"bootstrap confidence must be a number like 0.95, got {confidence!r}")
    if not 0 < confidence < 1:
        raise InvalidInput(
            f"bootstrap confidence must be between 0 and 1 (e.g. 0.95), got {confidence!r}"
        )
    if (
        isinstance(resamples, bool)
        or not isinstance(resamples, int)
        or not MIN_RESAMPLES <= resamples <= MAX_RESAMPLES
    ):
        raise InvalidInput(
            f"bootstrap resamples must be a whole number from {MIN_RESAMPLES} to "
            f"{MAX_RESAMPLES} (1000 is usual), got {resamples!r}"
        )
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise InvalidInput(f"bootstrap seed must be a whole number >= 0 or None, got {seed!r}")


def resample_weights(n: int, resamples: int, seed: int | None) -> Iterator[np.ndarray]:
    """Blocks of bootstrap row counts: arrays of shape ``(block, n)`` whose rows sum to ``n``.

    Row ``b`` says how many times each of the ``n`` rows was drawn in resample ``b``. The
    same ``n``, ``resamples`` and ``seed`` always give the same counts.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    block = max(1, min(resamples, _BLOCK_ELEMENTS // max(n, 1)))
    done = 0
    while done < resamples:
        size = min(block, resamples - done)
        drawn = rng.integers(0, n, size=(size, n))
        drawn += np.arange(size)[:, None] * n  # row b's draws land in b's own slice
        counts = np.bincount(drawn.ravel(), minlength=size * n)
        yield counts.reshape(size, n).astype(np.float64)
        done += size


def _interval(
    name: str, values: np.ndarray, estimate: float, confidence: float, seed: int | None
) -> BootstrapInterval:
    import numpy as np

    defined = values[~np.isnan(values)]
    if len(defined) == 0:
        lower = upper = mean = float("nan")
    else:
        tail = (1 - confidence) / 2
        lower, upper = (float(q) for q in np.quantile(defined, [tail, 1 - tail]))
        mean = float(defined.mean())
    return BootstrapInterval(
        metric=name,
        confidence=float(confidence),
        lower=lower,
        upper=upper,
        estimate=estimate,
        mean=mean,
        resamples=len(values),
        used=len(defined),
        seed=seed,
    )


def paired_bootstrap(
    candidate: Evaluation,
    champion: Evaluation,
    metric: str,
    *,
    confidence: float = 0.95,
    resamples: int = 1000,
    seed: int | None = 0,
) -> BootstrapInterval:
    """The interval of the candidate's improvement over the champion on ``metric``.

    Args:
        candidate: the new model's evaluation.
        champion: the champion's evaluation on the same holdout rows, in the same order.
        metric: a metric both evaluations have (aliases allowed).
        confidence: the interval's coverage, e.g. 0.95.
        resamples: how many bootstrap resamples to draw.
        seed: random seed; the same seed gives the same interval.

    Raises:
        InvalidInput: different holdouts, an unknown metric or a metric the evaluations do
            not have, bad settings.
    """
    import numpy as np

    from ctloop.evaluation import kernels

    check_settings(confidence, resamples, seed)
    candidate.check_same_holdout(champion)
    name = _metric_of(metric, candidate, champion)
    a, b = candidate.rows, champion.rows
    parts = [
        m.improvement(name, kernels.compute(a, name, w), kernels.compute(b, name, w))
        for w in resample_weights(candidate.n, resamples, seed)
    ]
    estimate = float(m.improvement(name, candidate.metrics[name], champion.metrics[name]))
    return _interval(name, np.concatenate(parts), estimate, confidence, seed)


def metric_interval(
    evaluation: Evaluation,
    metric: str,
    *,
    confidence: float = 0.95,
    resamples: int = 1000,
    seed: int | None = 0,
) -> BootstrapInterval:
    """The bootstrap interval of one model's ``metric`` (e.g. to report ``f1 0.81 ± 0.02``)."""
    import numpy as np

    from ctloop.evaluation import kernels

    check_settings(confidence, resamples, seed)
    name = _metric_of(metric, evaluation)
    parts = [
        kernels.compute(evaluation.rows, name, w)
        for w in resample_weights(evaluation.n, resamples, seed)
    ]
    return _interval(name, np.concatenate(parts), evaluation.metrics[name], confidence, seed)


def _metric_of(metric: str, *evaluations: Evaluation) -> str:
    name = m.spec(metric).name
    for evaluation in evaluations:
        if name not in evaluation.metrics:
            raise InvalidInput(evaluation.missing_metric(metric))
    return name
