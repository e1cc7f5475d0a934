"""The main job, end to end on the embedded store: ``ctloop demo`` / ``make demo``.

At this stage: generate a realistic churn data set, version it, train a baseline and a
gradient-boosted model in tracked runs (params, per-iteration validation metrics, final
metrics, the dataset version as input, a report artifact, the model package), register
them, make the better one ``churn@champion`` with the reason, load it back by that name
(digests verified) and print its lineage. Later stages extend the same job: serve,
monitor, retrain, canary, promote.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from ctloop.client import Client
    from ctloop.data.entities import DatasetVersion
    from ctloop.demo_loop import LoopDemo
    from ctloop.demo_monitoring import MonitoringDemo
    from ctloop.demo_pipeline import PipelineDemo
    from ctloop.demo_serving import ServingDemo

Say = Callable[[str], None]


@dataclass
class DemoResult:
    """What the demo made, for the summary and for tests."""

    store: str
    dataset: DatasetVersion
    run_ids: dict[str, str] = field(default_factory=dict)  # model name -> run id
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    best: str = ""
    versions: dict[str, int] = field(default_factory=dict)  # model name -> registry version
    reloaded_matches: bool = False
    seconds: float = 0.0
    remote: DemoResult | None = None  # the same job over HTTP, when it ran
    pipeline: PipelineDemo | None = None  # the training pipeline's three runs, when they ran
    serving: ServingDemo | None = None  # the champion served, then a canary, when it ran
    monitoring: MonitoringDemo | None = None  # drift injected, caught and named, when it ran
    loop: LoopDemo | None = None  # retrain, gate, canary, promote, roll back, when it ran


def _split(df: pd.DataFrame, holdout: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split by time: the last ``holdout`` share of rows is the validation set."""
    from ctloop.datasets import churn

    ordered = df.sort_values(churn.TIMESTAMP, kind="stable")
    cut = int(len(ordered) * (1 - holdout))
    return ordered.iloc[:cut], ordered.iloc[cut:]


def _features(df: pd.DataFrame) -> pd.DataFrame:
    from ctloop.datasets import churn

    x = df[list(churn.FEATURES)].copy()
    for col in churn.CATEGORICAL:
        x[col] = x[col].astype("category")
    return x


def _scores(y: Any, proba: Any) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score, log_loss, roc_auc_score

    pred = (proba >= 0.5).astype(int)
    return {
        "auc": float(roc_auc_score(y, proba)),
        "accuracy": float(accuracy_score(y, pred)),
        "f1": float(f1_score(y, pred)),
        "logloss": float(log_loss(y, proba, labels=[0, 1])),
    }


def _baseline(x_train: pd.DataFrame) -> Any:
    """Logistic regression on imputed, scaled numerics and one-hot categoricals."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from ctloop.datasets import churn

    pre = ColumnTransformer(
        [
            (
                "num",
                make_pipeline(SimpleImputer(strategy="median"), StandardScaler()),
                list(churn.NUMERIC),
            ),
            ("cat", OneHotEncoder(handle_unknown="ignore"), list(churn.CATEGORICAL)),
        ]
    )
    return Pipeline([("prep", pre), ("model", LogisticRegression(max_iter=500, C=1.0))])


Trained = tuple[dict[str, float], int, Any]  # final metrics, their step, the fitted model


def _train_logreg(run: Any, xt: Any, yt: Any, xv: Any, yv: Any) -> Trained:
    model = _baseline(xt)
    params = {
        "model": "logistic_regression",
        "C": 1.0,
        "max_iter": 500,
        "preprocessing": "median-impute+scale+one-hot",
    }
    run.log_params(params)
    model.fit(xt, yt)
    return (
        {
            **{f"train_{k}": v for k, v in _scores(yt, model.predict_proba(xt)[:, 1]).items()},
            **{f"val_{k}": v for k, v in _scores(yv, model.predict_proba(xv)[:, 1]).items()},
        },
        0,
        model,
    )


def _train_hgb(run: Any, xt: Any, yt: Any, xv: Any, yv: Any) -> Trained:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import log_loss, roc_auc_score

    params = {
        "model": "hist_gradient_boosting",
        "learning_rate": 0.08,
        "max_iter": 200,
        "max_leaf_nodes": 31,
        "l2_regularization": 1.0,
        "early_stopping": False,
    }
    run.log_params(params)
    model = HistGradientBoostingClassifier(
        learning_rate=0.08,
        max_iter=200,
        max_leaf_nodes=31,
        l2_regularization=1.0,
        categorical_features="from_dtype",
        early_stopping=False,
        random_state=0,
    )
    model.fit(xt, yt)
    best_auc, best_iter = -1.0, 0
    for i, proba in enumerate(model.staged_predict_proba(xv), start=1):
        p = proba[:, 1]
        auc = float(roc_auc_score(yv, p))
        run.log_metrics(
            {"val_auc": auc, "val_logloss": float(log_loss(yv, p, labels=[0, 1]))}, step=i
        )
        if auc > best_auc:
            best_auc, best_iter = auc, i
    run.log_metric("best_iteration", best_iter)
    # final figures are logged at the last iteration's step, after the per-iteration curve
    return (
        {
            **{f"train_{k}": v for k, v in _scores(yt, model.predict_proba(xt)[:, 1]).items()},
            **{f"val_{k}": v for k, v in _scores(yv, model.predict_proba(xv)[:, 1]).items()},
        },
        model.n_iter_,
        model,
    )


def run_demo(
    store: str | None = None,
    *,
    rows: int = 20_000,
    seed: int = 7,
    say: Say = print,
    server: bool = True,
    pipeline: bool = True,
    serving: bool = True,
    monitoring: bool = True,
    loop: bool = True,
) -> DemoResult:
    """Run the main job; returns what the local pass made.

    ``store`` defaults to a new temp folder. With ``server`` the same job runs a second time
    against ``ctloop server`` (started here on a free loopback port, serving its own store
    under ``store/served``), through the HTTP backend only. With ``pipeline`` the churn
    training pipeline (``examples/churn/pipeline.py``) then runs three times on the local
    store: cold, fully cached, and on a new data version. With ``serving`` the champion is
    served (:mod:`ctloop.demo_serving`); with ``monitoring`` too, a drift is then injected
    into its traffic and its monitor must name the drifted features
    (:mod:`ctloop.demo_monitoring`); with ``loop`` too, the continuous-training loop then
    retrains, gates, canaries and promotes, and catches a broken candidate
    (:mod:`ctloop.demo_loop`).
    """
    from ctloop.client import Client

    where = store or tempfile.mkdtemp(prefix="ctloop-demo-")
    local = Client(store=where)
    work = Path(local.settings.store_folder()) / "workspace"
    say(f"store      {local.settings.store_url()}")
    try:
        result = _job(local, work, rows=rows, seed=seed, say=say)
        result.store = where
        _summary(local, result, say)
        if pipeline:
            from ctloop.demo_pipeline import run_pipeline_stage

            say("")
            result.pipeline = run_pipeline_stage(local, work, rows=rows, seed=seed, say=say)
            if result.pipeline is not None:
                folder = local.settings.store_folder()
                say(f"  ctloop --store {folder} pipeline runs")
                say(f"  ctloop --store {folder} pipeline show {result.pipeline.runs[-1].id}")
        if serving:
            from ctloop.demo_serving import DEPLOYMENT, run_serving_stage

            say("")
            result.serving = run_serving_stage(local, seed=seed, say=say)
            if result.serving is not None:
                folder = local.settings.store_folder()
                say(f"  ctloop --store {folder} deployments show {DEPLOYMENT}")
                say(f"  ctloop --store {folder} deployments history {DEPLOYMENT}")
        if serving and monitoring and result.serving is not None:
            from ctloop.demo_monitoring import run_monitoring_stage

            say("")
            result.monitoring = run_monitoring_stage(local, seed=seed, say=say)
            if result.monitoring is not None:
                folder = local.settings.store_folder()
                say(f"  ctloop --store {folder} monitor reports {DEPLOYMENT}")
                say(f"  ctloop --store {folder} alerts list {DEPLOYMENT}")
        if loop and result.monitoring is not None:
            from ctloop.demo_loop import run_loop_stage

            say("")
            result.loop = run_loop_stage(local, seed=seed, say=say)
    finally:
        local.close()
    if server:
        say("")
        with _served(Path(local.settings.store_folder()) / "served") as url:
            say(f"server     ctloop server at {url} (a second store, reached only over HTTP)")
            remote = Client(store=url)
            try:
                again = _job(remote, work / "remote", rows=rows, seed=seed, say=say)
            finally:
                remote.close()
        result.remote = again
        say(
            f"remote     same job over HTTP: churn@{again.dataset.version}, "
            f"churn/{again.versions[again.best]} is champion, reloaded predictions "
            f"{'identical' if again.reloaded_matches else 'DIFFER'}"
        )
        served = Path(local.settings.store_folder()) / "served"
        say(f"  explore it: ctloop --store {served} models lineage churn@champion")
    return result


def _served(folder: Path) -> contextlib.AbstractContextManager[str]:
    """``ctloop server`` for ``folder`` in a child process on a free loopback port."""
    from ctloop._internal.child import ctloop_child_server

    def args(port: int) -> list[str]:
        return ["--store", str(folder), "server", "--host", "127.0.0.1", "--port", str(port),
                "--log-level", "warning"]  # fmt: skip

    return ctloop_child_server(args, "/healthz", what="ctloop server")


def _job(client: Client, work: Path, *, rows: int, seed: int, say: Say) -> DemoResult:
    """Data → two tracked models → registry → champion → reload → lineage, on ``client``."""
    import ctloop
    from ctloop.datasets import churn

    started = time.perf_counter()
    # 1. data: generate, write, version (a second add of the same bytes is a no-op)
    work.mkdir(parents=True, exist_ok=True)
    df = churn.generate(n_rows=rows, seed=seed)
    data_file = work / "churn.parquet"
    df.to_parquet(data_file, index=False)
    version = client.datasets.add(data_file, name="churn", description="synthetic churn")
    say(
        f"dataset    churn@{version.version}  {version.row_count} rows, "
        f"{len(version.schema or [])} columns, sha256 {version.digest[:12]}"
    )

    # 2. train two models in tracked runs on the same time-ordered split
    train, valid = _split(df, holdout=0.2)
    xt, yt = _features(train), train[churn.TARGET].to_numpy()
    xv, yv = _features(valid), valid[churn.TARGET].to_numpy()
    result = DemoResult(store=client.settings.store_url(), dataset=version)
    models: dict[str, Any] = {}
    for name, train_fn in (("baseline", _train_logreg), ("gbm", _train_hgb)):
        with ctloop.start_run(
            experiment="churn",
            name=f"demo-{name}",
            client=client,
            tags={"demo": "true", "stage": "train"},
        ) as run:
            run.log_input(version, context="training")
            run.log_params(
                {
                    "rows_train": len(train),
                    "rows_valid": len(valid),
                    "seed": seed,
                    "split": "time-ordered 80/20",
                }
            )
            final, last_step, model = train_fn(run, xt, yt, xv, yv)
            run.log_metrics(final, step=last_step)
            # the package keeps the signature (inferred from the training frame, so the
            # nullable columns are known), pinned requirements and lineage
            run.log_model(model, name="model", input_example=xt)
            models[name] = model
            report = work / f"report-{name}.json"
            report.write_text(json.dumps({"model": name, "metrics": final}, indent=2))
            run.log_artifact(report, name="report.json")
        result.run_ids[name] = run.id
        result.metrics[name] = final
        say(
            f"run        {run.name} ({run.id})  val_auc {final['val_auc']:.4f}  "
            f"val_f1 {final['val_f1']:.4f}"
        )
    result.best = max(result.metrics, key=lambda m: result.metrics[m]["val_auc"])

    # 3. register both, make the better one champion (with the reason), load it back
    for name in ("baseline", "gbm"):
        mv = client.models.register(
            result.run_ids[name], "model", name="churn", tags={"candidate": name}
        )
        result.versions[name] = mv.version
    champion = result.versions[result.best]
    best_auc = result.metrics[result.best]["val_auc"]
    client.models.set_alias(
        "churn",
        "champion",
        champion,
        reason=f"highest val_auc ({best_auc:.4f}) on the time-ordered holdout of "
        f"churn@{version.version}",
    )
    say(f"registry   churn/{champion} is now churn@champion ({result.best})")
    loaded = client.models.load("churn@champion")
    sample = xv.head(200)
    same = (loaded.predict_proba(sample) == models[result.best].predict_proba(sample)).all()
    result.reloaded_matches = bool(same)
    say(
        f"loaded     churn@champion ({loaded.flavor}), digests verified; predictions on 200 "
        f"holdout rows {'identical' if same else 'DIFFER'} to the trained model"
    )
    lin = client.models.lineage("churn@champion")
    say(
        f"lineage    churn/{champion} <- run {lin.run.name} ({lin.run.id[:12]}) <- "
        + ", ".join(f"{i.dataset}@{i.version}" for i in lin.inputs)
        + (f" <- git {lin.code.git_commit[:12]}" if lin.code and lin.code.git_commit else "")
    )
    result.seconds = time.perf_counter() - started
    return result


def _summary(client: Client, result: DemoResult, say: Say) -> None:
    best = result.metrics[result.best]
    base = result.metrics["baseline"]
    say("")
    say(
        f"best model {result.best}: val_auc {best['val_auc']:.4f} "
        f"(baseline {base['val_auc']:.4f}, {best['val_auc'] - base['val_auc']:+.4f})"
    )
    say(f"done in {result.seconds:.1f}s. Explore what was recorded:")
    store = client.settings.store_folder()
    say(f"  ctloop --store {store} data show churn")
    say(f"  ctloop --store {store} runs list -e churn -o 'metrics.val_auc DESC'")
    ids = " ".join(result.run_ids.values())
    say(f"  ctloop --store {store} runs compare {ids}")
    say(f"  ctloop --store {store} runs metrics {result.run_ids['gbm']} val_auc")
    say(f"  ctloop --store {store} models versions churn")
    say(f"  ctloop --store {store} models lineage churn@champion")
