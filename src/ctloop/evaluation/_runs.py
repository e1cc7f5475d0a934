"""Which run evaluation results go to, and writing a JSON artifact to it."""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ctloop.tracking.run import Run


def target_run(run: Run | None) -> Run | None:
    """``run`` if given, else the active fluent run (``ctloop.start_run``), else None."""
    if run is not None:
        return run
    from ctloop.tracking.fluent import active_run

    return active_run()


def json_safe(value: Any) -> Any:
    """``value`` with NaN and ±inf floats as None (JSON has neither), recursively."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def log_json(run: Run, name: str, data: Any) -> None:
    """Store ``data`` as the JSON artifact ``name`` of ``run``."""
    with tempfile.TemporaryDirectory(prefix="ctloop-eval-") as tmp:
        path = Path(tmp) / Path(name).name
        path.write_text(json.dumps(json_safe(data), indent=2, sort_keys=True) + "\n")
        run.log_artifact(path, name)
