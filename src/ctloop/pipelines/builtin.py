"""Built-in steps for training pipelines: load a dataset version, validate, evaluate, gate,
register. Use them like your own steps::

    from ctloop.pipelines import builtin as ct

    @pipeline
    def training(dataset: str = "churn@latest"):
        data = ct.validate(ct.load_dataset(dataset), ct.dataset_suite("churn@1"))
        ...
        decision = ct.gate(model, X_test, y_test, model_name="churn", spec={...})
        ct.register(model, decision, model_name="churn", input_example=X_train)

Steps that read something besides their inputs (the version ``churn@latest`` names now,
the current champion) put it in their cache key (``cache_extra``), so a cached result is
never stale.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ctloop.pipelines.context import step_context
from ctloop.pipelines.steps import step

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["dataset_suite", "evaluate_model", "gate", "load_dataset", "register", "validate"]


# --- data -----------------------------------------------------------------------------------


def _dataset_now(params: dict[str, Any], client: Any) -> str:
    """The digest the reference names now (``churn@latest`` moves when data is added)."""
    return str(client.datasets.resolve(params["ref"]).digest)


def _log_input(params: dict[str, Any], client: Any, tracking_run_id: str | None) -> None:
    """The version the reference names is an input of this pipeline run too, cached or not."""
    if tracking_run_id is not None:
        client.runs.log_input(tracking_run_id, client.datasets.resolve(params["ref"]), "training")


@step(cache_extra=_dataset_now, on_cache_hit=_log_input)
def load_dataset(ref: str) -> pd.DataFrame:
    """The data of dataset version ``ref`` (``NAME@VERSION`` or ``NAME@latest``).

    The version is recorded as an input of the pipeline's tracking run (lineage).
    """
    from ctloop.validation.frames import load_frame

    ctx = step_context()
    version = ctx.client.datasets.resolve(ref)
    if ctx.tracking_run_id is not None:
        ctx.client.runs.log_input(ctx.tracking_run_id, version, "training")
    print(f"loaded {version.name}@{version.version} ({version.row_count} rows)")
    return load_frame(ctx.client, version)


def _suite_now(params: dict[str, Any], client: Any) -> list[str | None]:
    version = client.datasets.resolve(params["ref"])
    attached = {s.name: s.digest for s in client.datasets.suites(version)}
    return [version.digest, attached.get(params.get("name") or "default")]


@step(cache_extra=_suite_now)
def dataset_suite(ref: str, name: str = "default") -> dict[str, Any]:
    """The validation suite attached to dataset version ``ref`` as a dict (``Suite.to_dict``);
    with none attached, one inferred from that version (the same each time)."""
    from ctloop.errors import NotFound
    from ctloop.validation.infer import infer_suite

    client = step_context().client
    try:
        suite = client.datasets.get_suite(ref, name)
        print(f"using the suite {name!r} attached to {ref}")
    except NotFound:
        suite = infer_suite(ref, client=client)
        print(
            f"no suite {name!r} attached to {ref}: inferred one from it (to review and keep "
            f"it: ctloop data suite {ref} -o suite.yaml --attach)"
        )
    return suite.to_dict()


@step
def validate(data: pd.DataFrame, suite: dict[str, Any]) -> pd.DataFrame:
    """Check ``data`` against ``suite``; fail the pipeline when an ``error`` check fails.

    Returns the data unchanged, so later steps take validated data only. The report is
    printed (kept in the step's logs) and its counts are logged as metrics.
    """
    from ctloop.tracking.fluent import active_run
    from ctloop.validation.checks import check
    from ctloop.validation.suite import Suite

    report = check(data, Suite.from_dict(suite, source="the suite passed to validate"))
    print(report.summary() if report.success and not report.warnings else report.to_text())
    run = active_run()
    if run is not None:
        counts = report.counts
        run.log_metrics({f"validation.{k}": float(v) for k, v in counts.items()})
    report.raise_for_errors()
    return data


# --- models ---------------------------------------------------------------------------------


@step
def evaluate_model(model: Any, X: pd.DataFrame, y: pd.Series) -> dict[str, Any]:
    """The model's metrics on a holdout (logged to the pipeline's tracking run)."""
    from ctloop.evaluation.scoring import evaluate

    result = evaluate(model, X, y)
    print(", ".join(f"{k} {v:.4f}" for k, v in sorted(result.metrics.items())))
    return {"task": result.task, "n": result.n, "metrics": dict(result.metrics)}


def _champion_now(params: dict[str, Any], client: Any) -> str | None:
    """The version the champion alias names now (a gate against it must re-run when it moves)."""
    from ctloop.errors import NotFound

    try:
        return str(client.models.resolve(f"{params['model_name']}@{params['alias']}").id)
    except NotFound:
        return None


@step(cache_extra=_champion_now)
def gate(
    model: Any,
    X: pd.DataFrame,
    y: pd.Series,
    model_name: str,
    spec: dict[str, Any],
    alias: str = "champion",
) -> dict[str, Any]:
    """Gate the candidate ``model`` against ``spec`` and the version ``alias`` of
    ``model_name`` on the same holdout; returns ``GateResult.to_dict()`` (``passed`` …).

    A failed gate does not fail the pipeline: it is the answer. The result is logged to
    the tracking run (``gate.passed``, the bootstrap bounds, ``gate.json``).
    """
    from ctloop.evaluation.gate import Gate
    from ctloop.evaluation.scoring import evaluate, evaluate_champion

    client = step_context().client
    candidate = evaluate(model, X, y, log=False)
    champion = evaluate_champion(client, model_name, X, y, alias)
    result = Gate.from_dict(spec).check(candidate, champion)
    result.log()
    print(result)
    return result.to_dict()


@step
def register(
    model: Any,
    decision: dict[str, Any],
    model_name: str,
    alias: str = "challenger",
    input_example: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """Register ``model`` as the next version of ``model_name`` and point ``alias`` at it,
    only when ``decision`` (a gate result) passed. Returns what it did."""
    if not decision.get("passed"):
        print(f"gate failed: {model_name} not registered")
        return {"registered": False, "reason": "the gate failed"}
    ctx = step_context()
    if ctx.tracking_run_id is None:  # pragma: no cover - the runner always makes one
        raise RuntimeError("register needs the pipeline's tracking run")
    client = ctx.client
    from ctloop.tracking.fluent import active_run

    run = active_run()
    if run is not None:
        run.flush()
    client.runs.log_model(
        ctx.tracking_run_id,
        model,
        "model",
        input_example=input_example,
        metadata={"pipeline_run_id": ctx.pipeline_run_id, "step_run_id": ctx.step_run_id},
    )
    version = client.models.register(ctx.tracking_run_id, "model", name=model_name)
    reason = f"passed the gate in pipeline run {ctx.pipeline_run_id}"
    client.models.set_alias(model_name, alias, version.version, reason=reason)
    print(f"registered {model_name}/{version.version} as {model_name}@{alias}")
    return {"registered": True, "version": version.version, "alias": alias}
