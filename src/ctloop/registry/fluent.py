"""Module-level shortcuts: ``ctloop.register_model`` and ``ctloop.load_model``.

They use the process-wide default :class:`~ctloop.Client` (the one ``ctloop.start_run``
uses), built from the environment on first use, never at import.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ctloop.errors import InvalidInput

if TYPE_CHECKING:
    from ctloop.client import Client
    from ctloop.models.loading import LoadedModel
    from ctloop.registry.entities import ModelVersion
    from ctloop.tracking.entities import RunRecord
    from ctloop.tracking.run import Run

__all__ = ["load_model", "register_model"]


def _default_client() -> Client:
    # Imported here: this module sits below the client layer and must not pull it in.
    from ctloop.client.default import default_client

    return default_client()


def _flush_if_active(run_id: str) -> None:
    """Write the metrics a live run still buffers, so the version's snapshot has them."""
    from ctloop.tracking.fluent import active_run

    run = active_run()
    if run is not None and run.id == run_id:
        run.flush()


def register_model(
    run_id: str | RunRecord | Run,
    artifact_path: str = "model",
    *,
    name: str,
    description: str | None = None,
    tags: Mapping[str, Any] | None = None,
) -> ModelVersion:
    """Register the model package a run logged at ``artifact_path`` as the next version of
    model ``name`` (created on first use).

    See :meth:`ctloop.client.models.ModelsAPI.register`.
    """
    from ctloop.tracking.run import Run

    if isinstance(run_id, Run):
        run_id.flush()
    elif isinstance(run_id, str):
        _flush_if_active(run_id)
    return _default_client().models.register(
        run_id, artifact_path, name=name, description=description, tags=tags
    )


def load_model(ref: str, artifact_path: str | None = None, *, trust: bool = False) -> LoadedModel:
    """Load a model by ``NAME@ALIAS``, ``NAME/VERSION``, ``NAME`` or ``runs:/RUN_ID/PATH``,
    or by a run id and the artifact path it logged the model at::

        ctloop.load_model("churn@champion")
        ctloop.load_model(run.id, "model")

    The package is read by digest from the artifact store and verified; ``trust=True`` is
    needed for flavors that run code when loaded (``python``).
    """
    if artifact_path is not None:
        if not isinstance(artifact_path, str):
            raise InvalidInput(
                f"artifact_path must be the path the run logged the model at, got "
                f"{artifact_path!r}; pass trust=... as a keyword"
            )
        ref = f"runs:/{ref}/{artifact_path}"
    return _default_client().models.load(ref, trust=trust)
