"""``@step``: a typed Python function whose outputs ctloop stores, caches and traces.

Called inside a ``@pipeline`` function while it is being planned, a step does not run: it
records a node of the graph and returns :class:`OutputRef` placeholders that later steps
take as inputs. Called anywhere else it is the plain function, so steps stay unit-testable.
"""

from __future__ import annotations

import contextvars
import functools
import importlib
import inspect
import math
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, overload

from ctloop.errors import InvalidInput

__all__ = ["OutputRef", "Step", "StepOptions", "step"]

# The plan being built by the pipeline function that is running now (None: not planning).
_planning: contextvars.ContextVar[Any] = contextvars.ContextVar("ctloop_planning", default=None)


@dataclass(frozen=True)
class StepOptions:
    """How a step is run.

    Attributes:
        cache: reuse the outputs of an earlier run with the same cache key.
        retries: further attempts after a failure (or a timeout).
        retry_delay: seconds before the first retry; doubled for each next one.
        timeout: seconds an attempt may take; past it the attempt is stopped and the step is
            TIMED_OUT (enforced by the ``local`` and ``ray`` executors; ``inline`` cannot
            stop a function running in its own thread and warns instead).
        outputs: names of the outputs when the function returns a tuple of several.
        name: the step's name in the graph (default: the function's name).
        cache_extra: ``f(params, client) -> JSON`` computed before each run; its value
            joins the cache key. For what the step reads from outside its inputs: e.g. the
            version ``churn@latest`` resolves to now, or the current champion.
        on_cache_hit: ``f(params, client, tracking_run_id)`` called when the step's outputs
            come from the cache instead of a run: for the records the step writes as it
            runs that the new pipeline run must carry too (e.g. ``load_dataset`` logs the
            dataset version as an input of the run, the model's lineage).
    """

    cache: bool = True
    retries: int = 0
    retry_delay: float = 1.0
    timeout: float | None = None
    outputs: tuple[str, ...] | None = None
    name: str | None = None
    cache_extra: Callable[[dict[str, Any], Any], Any] | None = None
    on_cache_hit: Callable[[dict[str, Any], Any, str | None], None] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.cache, bool):
            raise InvalidInput(f"cache must be True or False, not {self.cache!r}")
        if type(self.retries) is not int or self.retries < 0:
            raise InvalidInput(f"retries must be a whole number >= 0, not {self.retries!r}")
        if not _seconds(self.retry_delay) or self.retry_delay < 0:
            raise InvalidInput(f"retry_delay must be >= 0 seconds, not {self.retry_delay!r}")
        if self.timeout is not None and (not _seconds(self.timeout) or self.timeout <= 0):
            raise InvalidInput(f"timeout must be > 0 seconds (or None), not {self.timeout!r}")
        if self.outputs is not None:
            names = list(self.outputs)
            if (
                isinstance(self.outputs, str)
                or not names
                or len(set(names)) != len(names)
                or not all(isinstance(n, str) and n.isidentifier() for n in names)
            ):
                raise InvalidInput(
                    f"outputs must be a tuple of distinct Python identifiers, not "
                    f"{self.outputs!r} (one output needs no name; else e.g. outputs=('X', 'y'))"
                )
        if self.cache_extra is not None and not callable(self.cache_extra):
            raise InvalidInput(f"cache_extra must be a function, not {self.cache_extra!r}")
        if self.on_cache_hit is not None and not callable(self.on_cache_hit):
            raise InvalidInput(f"on_cache_hit must be a function, not {self.on_cache_hit!r}")


def _seconds(value: Any) -> bool:
    return type(value) in (int, float) and math.isfinite(value)


@dataclass(frozen=True)
class OutputRef:
    """A placeholder for an output of a planned step: what a later step receives."""

    node: str  # the step's name in the graph
    output: str  # the output's name

    def __repr__(self) -> str:
        return f"<output {self.output!r} of step {self.node!r}>"

    def __bool__(self) -> bool:
        raise InvalidInput(
            f"{self!r} has no value while the pipeline is being planned, so it cannot decide "
            "an if or a loop; branch inside a step instead"
        )

    def __iter__(self) -> Any:
        raise InvalidInput(
            f"{self!r} is one output; to return several, annotate the step's return type as "
            "tuple[A, B] or pass @step(outputs=('a', 'b'))"
        )


class Step:
    """A function decorated with ``@step``. See :func:`step`."""

    def __init__(self, fn: Callable[..., Any], options: StepOptions) -> None:
        if not callable(fn) or inspect.isclass(fn):
            raise InvalidInput(f"@step decorates a function, not {fn!r}")
        if inspect.iscoroutinefunction(fn) or inspect.isgeneratorfunction(fn):
            raise InvalidInput(
                f"step {fn.__qualname__!r} is async or a generator; steps must be plain "
                "functions that return their outputs"
            )
        self.fn = fn
        self.options = options
        self.name: str = options.name or fn.__name__
        self.path = f"{fn.__module__}:{fn.__qualname__}"
        self.signature = inspect.signature(fn)
        for p in self.signature.parameters.values():
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                raise InvalidInput(
                    f"step {self.path} takes *{p.name}; steps need named parameters so each "
                    "input can be stored and traced"
                )
        self.output_names: tuple[str, ...] = options.outputs or _outputs_from_annotation(fn)
        functools.update_wrapper(self, fn)

    def __repr__(self) -> str:
        return f"<step {self.name} ({self.path})>"

    def with_options(self, **changes: Any) -> Step:
        """A copy of this step with some options changed, e.g. ``train.with_options(name="b")``."""
        if "outputs" in changes:
            changes["outputs"] = _output_names(changes["outputs"])
        try:
            options = replace(self.options, **changes)
        except TypeError as exc:
            raise InvalidInput(f"unknown step option: {exc}") from None
        return Step(self.fn, options)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        plan = _planning.get()
        if plan is None:
            return self.fn(*args, **kwargs)
        refs = plan.add(self, args, kwargs)
        return refs[0] if len(refs) == 1 else refs

    def bind(self, args: Sequence[Any], kwargs: dict[str, Any]) -> dict[str, Any]:
        """The arguments of one call by parameter name, defaults applied."""
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise InvalidInput(f"step {self.name!r}: {exc}") from None
        bound.apply_defaults()
        return dict(bound.arguments)

    def __reduce__(self) -> Any:
        # By reference when the module attribute is this very step (a worker imports it),
        # else by value (steps defined in __main__, in a function, or made by with_options).
        name = self.fn.__module__
        qualname = self.fn.__qualname__
        if name and name != "__main__" and "<" not in qualname and not _sent_by_value(name):
            module = importlib.import_module(name)
            if _lookup(module, qualname) is self:
                return (_import_step, (name, qualname))
        return (Step, (self.fn, self.options))


def _sent_by_value(module: str) -> bool:
    import cloudpickle

    return module in cloudpickle.list_registry_pickle_by_value()


def _lookup(module: Any, qualname: str) -> Any:
    obj = module
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
    return obj


def _import_step(module: str, qualname: str) -> Step:
    found = _lookup(importlib.import_module(module), qualname)
    if not isinstance(found, Step):
        raise InvalidInput(f"{module}:{qualname} is not a @step any more")
    return found


def _output_names(outputs: Any) -> tuple[str, ...] | None:
    if outputs is None:
        return None
    if isinstance(outputs, str):
        raise InvalidInput(
            f"outputs={outputs!r} is one string; name several outputs with a tuple, e.g. "
            f"outputs=({outputs!r}, 'other'); a single output needs no name"
        )
    try:
        return tuple(outputs)
    except TypeError:
        raise InvalidInput(f"outputs must be a tuple of names, not {outputs!r}") from None


def _outputs_from_annotation(fn: Callable[..., Any]) -> tuple[str, ...]:
    """``output`` for one return value; ``output_0, output_1 …`` for ``-> tuple[A, B]``."""
    try:
        ret = typing.get_type_hints(fn).get("return")
    except Exception:  # names the annotation uses do not resolve here: read it as written
        return _outputs_from_text(getattr(fn, "__annotations__", {}).get("return"))
    if typing.get_origin(ret) is tuple:
        parts = typing.get_args(ret)
        if parts and Ellipsis not in parts and parts != ((),):
            return tuple(f"output_{i}" for i in range(len(parts)))
    return ("output",)


def _outputs_from_text(annotation: Any) -> tuple[str, ...]:
    """The outputs of a return annotation kept as text (``from __future__ import annotations``)."""
    import ast

    if not isinstance(annotation, str):
        return ("output",)
    try:
        node = ast.parse(annotation, mode="eval").body
    except SyntaxError:
        return ("output",)
    if not isinstance(node, ast.Subscript):
        return ("output",)
    base = node.value
    name = base.attr if isinstance(base, ast.Attribute) else getattr(base, "id", "")
    if name not in ("tuple", "Tuple"):
        return ("output",)
    parts = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
    if any(isinstance(p, ast.Constant) and p.value is Ellipsis for p in parts):
        return ("output",)
    return tuple(f"output_{i}" for i in range(len(parts)))


@overload
def step(fn: Callable[..., Any], /) -> Step: ...


@overload
def step(
    *,
    cache: bool = True,
    retries: int = 0,
    retry_delay: float = 1.0,
    timeout: float | None = None,
    outputs: Sequence[str] | None = None,
    name: str | None = None,
    cache_extra: Callable[[dict[str, Any], Any], Any] | None = None,
    on_cache_hit: Callable[[dict[str, Any], Any, str | None], None] | None = None,
) -> Callable[[Callable[..., Any]], Step]: ...


def step(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    cache: bool = True,
    retries: int = 0,
    retry_delay: float = 1.0,
    timeout: float | None = None,
    outputs: Sequence[str] | None = None,
    name: str | None = None,
    cache_extra: Callable[[dict[str, Any], Any], Any] | None = None,
    on_cache_hit: Callable[[dict[str, Any], Any, str | None], None] | None = None,
) -> Step | Callable[[Callable[..., Any]], Step]:
    """Make a function a pipeline step: ``@step`` or ``@step(cache=False, retries=2, …)``.

    Each output is stored in the artifact store by type (DataFrame → Parquet, ndarray →
    .npy, fitted model → model package, JSON-able → JSON, anything else → cloudpickle with
    a warning) and passed to later steps by digest. A step is skipped, its outputs reused,
    when an earlier run had the same code (its source and the project-local functions it
    calls), params and input digests. See :class:`StepOptions` for the options.
    """
    options = StepOptions(
        cache=cache,
        retries=retries,
        retry_delay=retry_delay,
        timeout=timeout,
        outputs=_output_names(outputs),
        name=name,
        cache_extra=cache_extra,
        on_cache_hit=on_cache_hit,
    )
    if fn is not None:
        return Step(fn, options)
    return lambda f: Step(f, options)
