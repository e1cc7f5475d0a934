"""The one-item forms of the runs API, shared by the local and the HTTP backend.

Each backend implements ``log_params``, ``log_batch``, ``get`` and ``log_artifact``; these
are defined once on top of them, so the two backends cannot drift apart on them (the model
package and its lineage, for one, are built the same way whichever backend stores it).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ctloop._internal.names import check_relative_path
from ctloop.tracking.entities import RunArtifact, RunRecord


class RunsShortcuts:
    """``log_param``, ``log_metric``, ``log_metrics`` and ``log_model`` in terms of the
    calls each backend implements (the batch calls, ``get`` and ``log_artifact``)."""

    def get(self, run_id: str) -> RunRecord:
        raise NotImplementedError

    def log_artifact(
        self, run_id: str, path: str | os.PathLike[str], name: str | None = None
    ) -> RunArtifact:
        raise NotImplementedError

    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        raise NotImplementedError

    def log_batch(
        self,
        run_id: str,
        metrics: Iterable[Any] = (),
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> None:
        raise NotImplementedError

    def log_param(self, run_id: str, key: str, value: Any) -> None:
        """Record one param (see ``log_params``)."""
        self.log_params(run_id, {key: value})

    def log_metric(
        self,
        run_id: str,
        key: str,
        value: float,
        step: int | None = None,
        timestamp: int | None = None,
    ) -> None:
        """Write one metric point now (the :class:`~ctloop.Run` handle batches instead)."""
        self.log_batch(run_id, metrics=[(key, value, step, timestamp)])

    def log_metrics(
        self, run_id: str, metrics: Mapping[str, float], step: int | None = None
    ) -> None:
        """Write several metrics at one step now."""
        self.log_batch(run_id, metrics=[(k, v, step, None) for k, v in metrics.items()])

    def log_model(
        self,
        run_id: str,
        model: Any,
        name: str = "model",
        input_example: Any = None,
        flavor: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> RunArtifact:
        """Write ``model`` as a model package and log it as the run's artifact ``name``.

        The package records the signature (inferred from ``input_example``), pinned
        requirements and the lineage: this run, the artifact path, the run's input dataset
        versions and its git commit. See :func:`ctloop.models.write_package` for flavors.
        """
        import tempfile

        from ctloop.models.package import write_package

        artifact_path = check_relative_path(name)
        run = self.get(run_id)
        lineage = {
            "run_id": run.id,
            "artifact_path": artifact_path,
            "inputs": [
                {"dataset": i.dataset, "version": i.version, "digest": i.digest} for i in run.inputs
            ],
            "git_commit": run.source.get("git_commit"),
            "git_dirty": run.source.get("git_dirty"),
        }
        with tempfile.TemporaryDirectory(prefix="ctloop-model-") as tmp:
            folder = Path(tmp) / "package"
            write_package(
                model,
                folder,
                flavor=flavor,
                input_example=input_example,
                lineage=lineage,
                metadata=dict(metadata) if metadata is not None else None,
            )
            return self.log_artifact(run_id, folder, artifact_path)
