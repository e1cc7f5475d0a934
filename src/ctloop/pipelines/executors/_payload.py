"""How a step task travels to another process: cloudpickle, with the project's code by value
where a worker could not import it."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ctloop.pipelines.worker import StepTask


def dumps_task(task: StepTask, *, by_value: bool = False) -> bytes:
    """Pickle ``task``; with ``by_value`` the step's own module travels as code.

    ``by_value`` is for workers that may not have the user's files (a Ray cluster):
    cloudpickle then sends the functions of project-local modules themselves.
    """
    import cloudpickle

    with _by_value(task) if by_value else contextlib.nullcontext():
        return bytes(cloudpickle.dumps(task))


def loads_task(data: bytes) -> StepTask:
    import pickle

    task: StepTask = pickle.loads(data)
    return task


@contextlib.contextmanager
def _by_value(task: StepTask) -> Iterator[None]:
    import cloudpickle

    from ctloop.pipelines.fingerprint import is_project_local

    registered = []
    name = task.step.fn.__module__
    module = sys.modules.get(name)
    if module is not None and name != "__main__" and is_project_local(module):
        already = name in cloudpickle.list_registry_pickle_by_value()
        if not already:
            cloudpickle.register_pickle_by_value(module)
            registered.append(module)
    try:
        yield
    finally:
        for m in registered:
            cloudpickle.unregister_pickle_by_value(m)
