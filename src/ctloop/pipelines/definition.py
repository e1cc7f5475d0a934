"""``@pipeline``: a function that calls steps; calling it plans the graph, ``.run`` runs it.

Planning calls the pipeline function once with the run's params. Each step call inside it
adds a node and returns placeholders (:class:`~ctloop.pipelines.steps.OutputRef`); passing
a placeholder to another step is an edge. Plain values become the step's params (part of
its cache key). Python control flow on the pipeline's own params works while planning; on
step outputs it cannot (they do not exist yet): branch inside a step instead.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

from ctloop.errors import CtloopError, InvalidInput, NotFound
from ctloop.pipelines.steps import OutputRef, Step, _planning

if TYPE_CHECKING:
    from ctloop.client import Client
    from ctloop.pipelines.entities import PipelineRun

__all__ = ["Node", "Pipeline", "PipelineFailed", "Plan", "pipeline", "resolve_pipeline"]


class PipelineFailed(CtloopError):
    """A pipeline run ended FAILED; ``.run`` is its record (steps, errors, logs)."""

    def __init__(self, message: str, run: PipelineRun) -> None:
        super().__init__(message)
        self.run = run


@dataclass
class Node:
    """One step call in a plan."""

    name: str
    step: Step
    params: dict[str, Any] = field(default_factory=dict)  # JSON values
    inputs: dict[str, OutputRef] = field(default_factory=dict)  # from other steps
    literals: dict[str, Any] = field(default_factory=dict)  # other values, stored at run start

    @property
    def upstream(self) -> list[str]:
        return sorted({ref.node for ref in self.inputs.values()})


class Plan:
    """The graph of one pipeline run, built by calling the pipeline function."""

    def __init__(self) -> None:
        self.nodes: dict[str, Node] = {}

    def add(
        self, step: Step, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[OutputRef, ...]:
        from ctloop.pipelines.materializers import _is_json

        name = step.name
        n = 2
        while name in self.nodes:
            name = f"{step.name}_{n}"
            n += 1
        node = Node(name, step)
        for arg, value in step.bind(args, kwargs).items():
            if isinstance(value, OutputRef):
                if value.node not in self.nodes:
                    raise InvalidInput(f"{value!r} is not from this pipeline")
                node.inputs[arg] = value
            elif _contains_ref(value):
                raise InvalidInput(
                    f"step {name!r} argument {arg!r} holds step outputs inside a "
                    f"{type(value).__name__}; pass each output as its own argument"
                )
            elif _is_json(value):
                node.params[arg] = value
            else:
                node.literals[arg] = value
        self.nodes[name] = node
        return tuple(OutputRef(name, out) for out in step.output_names)

    def graph(self) -> list[dict[str, Any]]:
        """The plan as stored: each node's name, step, upstream and outputs, in plan order."""
        return [
            {
                "name": n.name,
                "step": n.step.path,
                "upstream": n.upstream,
                "outputs": list(n.step.output_names),
            }
            for n in self.nodes.values()
        ]


def _contains_ref(value: Any, depth: int = 0) -> bool:
    if isinstance(value, OutputRef):
        return True
    if depth > 5:
        return False
    if isinstance(value, list | tuple | set | frozenset):
        return any(_contains_ref(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return any(_contains_ref(v, depth + 1) for v in value.values())
    return False


# Keyword arguments of Pipeline.run; a pipeline param of the same name could not be passed.
RUN_OPTIONS = frozenset(
    {
        "executor",
        "cache",
        "client",
        "raise_on_failure",
        "max_workers",
        "ray_address",
        "echo",
        "params",
        "run_tags",
    }
)


class Pipeline:
    """A function decorated with ``@pipeline``. See :func:`pipeline`."""

    def __init__(
        self, fn: Callable[..., Any], name: str | None = None, experiment: str | None = None
    ) -> None:
        from ctloop._internal.names import check_name

        self.fn = fn
        self.name = name or fn.__name__
        check_name(self.name, "pipeline")
        self.experiment = experiment or self.name
        self.signature = inspect.signature(fn)
        taken = sorted(set(self.signature.parameters) & RUN_OPTIONS)
        if taken:
            raise InvalidInput(
                f"pipeline {self.name!r} has a param named {taken[0]!r}, which is an option of "
                f"{self.name}.run(...); rename the param"
            )
        functools.update_wrapper(self, fn)

    def __repr__(self) -> str:
        return f"<pipeline {self.name}>"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if _planning.get() is not None:  # a pipeline used inside another: inline its steps
            return self.fn(*args, **kwargs)
        raise InvalidInput(
            f"run a pipeline with {self.name}.run(**params) (or: ctloop pipeline run "
            f"{self.fn.__module__}:{self.fn.__name__}); calling it only plans, inside "
            "another pipeline"
        )

    def check_param_names(self, names: Iterable[str]) -> None:
        """:class:`InvalidInput` naming the first of ``names`` the pipeline has no param for."""
        known = list(self.signature.parameters)
        unknown = sorted(set(names) - set(known))
        if unknown:
            raise InvalidInput(
                f"pipeline {self.name!r} has no param {unknown[0]!r} "
                f"(its params: {', '.join(known) or 'none'})"
            )

    def bind_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """The run's params by name, defaults applied; each must be a JSON value."""
        from ctloop.pipelines.materializers import _is_json

        self.check_param_names(params)
        try:
            bound = self.signature.bind(**params)
        except TypeError as exc:
            raise InvalidInput(f"pipeline {self.name!r}: {exc}") from None
        bound.apply_defaults()
        values = dict(bound.arguments)
        for key, value in values.items():
            if not _is_json(value):
                raise InvalidInput(
                    f"pipeline param {key!r} is a {type(value).__name__}; params are recorded "
                    "and must be JSON values (str, number, bool, None, lists and dicts of them)"
                    " — pass data as a dataset reference such as 'churn@3'"
                )
        return values

    def plan(self, params: Mapping[str, Any] | None = None) -> Plan:
        """The graph this pipeline makes for ``params`` (nothing runs)."""
        values = self.bind_params(params or {})
        plan = Plan()
        token = _planning.set(plan)
        try:
            self.fn(**values)
        finally:
            _planning.reset(token)
        if not plan.nodes:
            raise InvalidInput(f"pipeline {self.name!r} calls no steps")
        return plan

    def run(
        self,
        executor: str = "local",
        *,
        cache: bool = True,
        client: Client | None = None,
        raise_on_failure: bool = True,
        max_workers: int | None = None,
        ray_address: str | None = None,
        echo: bool = True,
        params: Mapping[str, Any] | None = None,
        run_tags: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> PipelineRun:
        """Run the pipeline and record it; returns the finished :class:`PipelineRun`.

        Args:
            executor: ``inline`` (this thread, for debugging), ``local`` (worker
                processes, independent steps in parallel) or ``ray``.
            cache: reuse outputs of identical earlier step runs (``False``: run all).
            client: the store (default: ``ctloop.Client()`` from the environment).
            raise_on_failure: raise :class:`PipelineFailed` when a step fails.
            max_workers: parallel steps for ``local`` and ``ray`` (default: CPUs).
            ray_address: the Ray cluster to join (default: start a local one).
            echo: print what steps print as they run (it is kept in the step runs' logs
                either way).
            params: the pipeline's params (or give them as keyword arguments).
            run_tags: tags of the run's tracking run, set when it is created (who started
                it and why, e.g. the loop's intent).
        """
        from ctloop.pipelines.runner import run_plan

        all_params = {**(params or {}), **kwargs}
        values = self.bind_params(all_params)
        plan = self.plan(values)
        return run_plan(
            self,
            plan,
            values,
            executor=executor,
            cache=cache,
            client=client,
            raise_on_failure=raise_on_failure,
            max_workers=max_workers,
            ray_address=ray_address,
            echo=echo,
            tags=run_tags,
        )


@overload
def pipeline(fn: Callable[..., Any], /) -> Pipeline: ...


@overload
def pipeline(
    *, name: str | None = None, experiment: str | None = None
) -> Callable[[Callable[..., Any]], Pipeline]: ...


def pipeline(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    experiment: str | None = None,
) -> Pipeline | Callable[[Callable[..., Any]], Pipeline]:
    """Make a function that calls steps a pipeline: ``@pipeline`` or ``@pipeline(name=…)``.

    Args:
        name: the pipeline's name in the store (default: the function's name).
        experiment: the experiment its tracking runs go to (default: the name).

    Example::

        @step
        def load(ref: str) -> pd.DataFrame: ...

        @step
        def train(df: pd.DataFrame, depth: int = 6) -> RandomForestClassifier: ...

        @pipeline
        def training(ref: str = "churn@latest", depth: int = 6):
            train(load(ref), depth=depth)

        run = training.run(executor="local", depth=8)
    """
    if fn is not None:
        return Pipeline(fn, name, experiment)
    return lambda f: Pipeline(f, name, experiment)


def resolve_pipeline(target: str) -> Pipeline:
    """The pipeline named by ``module:attribute`` (or ``path/to/file.py:attribute``)."""
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise InvalidInput(
            f"{target!r} does not name a pipeline; use MODULE:ATTRIBUTE, e.g. "
            "examples.churn.pipeline:churn_pipeline"
        )
    if module_name.endswith(".py"):
        path = Path(module_name)
        if not path.is_file():
            raise NotFound(f"no such file: {module_name!r}")
        module = _import_file(path)
    else:
        cwd = str(Path.cwd())
        if cwd not in sys.path:
            sys.path.insert(0, cwd)
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and (exc.name == module_name or module_name.startswith(exc.name + ".")):
                raise NotFound(
                    f"cannot import {module_name!r} (from {cwd}); run from the folder that "
                    "holds it, or give the file: path/to/file.py:attribute"
                ) from None
            raise
    found = getattr(module, attr, None)
    if found is None:
        raise NotFound(f"module {module_name!r} has no attribute {attr!r}")
    if not isinstance(found, Pipeline):
        raise InvalidInput(f"{target} is a {type(found).__name__}, not a @pipeline")
    return found


def _import_file(path: Path) -> Any:
    import importlib.util

    name = path.stem
    if not name.isidentifier():
        raise InvalidInput(
            f"cannot import {str(path)!r}: {name!r} is not a Python module name; rename the file"
        )
    if name in sys.stdlib_module_names:
        raise InvalidInput(
            f"cannot import {str(path)!r}: it would shadow the standard library module "
            f"{name!r}; rename the file"
        )
    folder = str(path.resolve().parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)  # its siblings import as they would when run directly
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)  # no half-built module left behind
        raise
    return module
