"""The pipeline stage of the main job: the churn training template, run three times.

1. cold: load ▶ validate ▶ split ▶ train ▶ evaluate ▶ gate vs the champion ▶ register;
2. again, unchanged: every step comes from the cache;
3. on a new data version (the table grown by half): what depends on the data runs again,
   what does not (the reference suite) stays cached.

The template is ``examples/churn/pipeline.py`` of the repository (found from the current
folder or from an editable install); without it this stage is skipped, saying why.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ctloop.client import Client
    from ctloop.pipelines.entities import PipelineRun

Say = Callable[[str], None]

TEMPLATE = Path("examples") / "churn" / "pipeline.py"
TARGET = "churn_pipeline"


@dataclass
class PipelineDemo:
    """The three runs the stage made (for the summary and tests)."""

    runs: list[PipelineRun] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    template: str = ""


def find_template() -> Path | None:
    """``examples/churn/pipeline.py`` under the current folder or the source checkout."""
    import ctloop

    for root in (Path.cwd(), Path(ctloop.__file__).resolve().parents[2]):
        candidate = root / TEMPLATE
        if candidate.is_file():
            return candidate
    return None


def run_pipeline_stage(
    client: Client,
    work: Path,
    *,
    rows: int,
    seed: int,
    say: Say,
    template: Path | None = None,
    executor: str = "local",
) -> PipelineDemo | None:
    """Run the template three times on ``client`` (see the module docstring)."""
    from ctloop.datasets import churn
    from ctloop.pipelines.definition import resolve_pipeline
    from ctloop.validation.infer import infer_suite

    found = template or find_template()
    if found is None:
        say(f"pipeline   skipped: {TEMPLATE} not found (run the demo from the repository root)")
        return None
    pipe = resolve_pipeline(f"{found}:{TARGET}")
    result = PipelineDemo(template=str(found))

    # the reference suite: inferred from churn@1, reviewed (here: taken as is), attached
    suite = infer_suite("churn@1", client=client)
    client.datasets.attach_suite("churn@1", suite)
    say(f"suite      {len(suite.checks)} checks inferred from churn@1 and attached to it")

    def run(label: str, **params: Any) -> PipelineRun:
        started = time.perf_counter()
        record = pipe.run(executor=executor, client=client, echo=False, **params)
        result.seconds.append(time.perf_counter() - started)
        result.runs.append(record)
        say(f"pipeline   {label}: {_line(record, result.seconds[-1])}")
        return record

    first = run("run 1 (cold)     ", dataset="churn@latest")
    say(f"  gate     {_gate_line(first)}")
    run("run 2 (unchanged)", dataset="churn@latest")

    # later: the same table grown by half (the generator continues it row for row)
    grown = churn.generate(n_rows=rows + rows // 2, seed=seed)
    grown_file = work / "churn-grown.parquet"
    grown_file.parent.mkdir(parents=True, exist_ok=True)
    grown.to_parquet(grown_file, index=False)
    new = client.datasets.add(grown_file, name="churn", description="grown by half")
    say(f"dataset    churn@{new.version}  {new.row_count} rows ({rows // 2} new)")
    third = run("run 3 (new data) ", dataset="churn@latest")
    say(f"  gate     {_gate_line(third)}")
    return result


def _line(run: PipelineRun, seconds: float) -> str:
    ran = [s.name for s in run.steps if s.status.value == "COMPLETED"]
    cached = [s.name for s in run.steps if s.cache_hit]
    took = f"{seconds:.1f}s" if seconds >= 1 else f"{seconds * 1000:.0f} ms"
    parts = [f"{run.status.value} in {took}", f"{len(cached)}/{len(run.steps)} cached"]
    if ran and cached:
        parts.append(f"ran {', '.join(ran)}")
    return "; ".join(parts) + f"  ({run.id[:8]})"


def _gate_line(run: PipelineRun) -> str:
    if run.status.value != "COMPLETED":
        return "did not run"
    decision = run.output("gate")
    registered = run.output("register")
    checks = "; ".join(
        f"{c.get('name', '?')}: {c.get('status', '?')}"
        + (f" [{c['interval'][0]:+.4f}, {c['interval'][1]:+.4f}]" if c.get("interval") else "")
        for c in decision.get("checks", [])
    )
    outcome = (
        f"registered churn/{registered['version']} as churn@{registered['alias']}"
        if registered.get("registered")
        else "not registered"
    )
    return f"{'PASSED' if decision.get('passed') else 'FAILED'} ({checks}) → {outcome}"
