"""Planning: what ``@step`` and ``@pipeline`` make of a pipeline function, before anything runs.

Also how a pipeline is found from a ``module:attribute`` target, and how steps travel to
worker processes (pickled by reference when importable, by value otherwise).
"""

from __future__ import annotations

import math
import pickle
import subprocess
import sys
import textwrap
import typing
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cloudpickle
import pandas as pd
import pytest

from ctloop import pipeline, step
from ctloop.errors import InvalidInput, NotFound
from ctloop.pipelines import OutputRef, Pipeline, PipelineStatus, Step, resolve_pipeline
from ctloop.pipelines.steps import StepOptions

# --- steps and pipelines at module level (importable: pickled by reference) ---------------


@step
def load(n: int) -> list:
    return list(range(n))


@step
def total(values: list, offset: int = 0) -> int:
    return sum(values) + offset


@step
def split(values: list) -> tuple[list, list]:
    half = len(values) // 2
    return values[:half], values[half:]


@step(outputs=("evens", "odds"))
def parity(values: list):  # no return annotation: the names come from outputs=
    return [v for v in values if v % 2 == 0], [v for v in values if v % 2]


@step
def describe(frame: pd.DataFrame, label: str = "frame") -> dict:
    return {"label": label, "type": type(frame).__name__, "sum": int(frame.to_numpy().sum())}


@step
def echo(value: Any) -> Any:
    return value


@pipeline
def basic(n: int = 4, offset: int = 0):
    total(load(n), offset=offset)


renamed = load.with_options(name="load_small")


# --- plan structure -----------------------------------------------------------------------


def test_plan_records_nodes_params_and_edges() -> None:
    plan = basic.plan({"n": 6})
    assert list(plan.nodes) == ["load", "total"]
    loader, summer = plan.nodes["load"], plan.nodes["total"]
    assert loader.step is load and loader.params == {"n": 6} and loader.inputs == {}
    assert summer.params == {"offset": 0}  # the default, applied
    assert summer.inputs == {"values": OutputRef("load", "output")}
    assert summer.upstream == ["load"] and loader.upstream == []
    assert plan.graph() == [
        {
            "name": "load",
            "step": f"{__name__}:load",
            "upstream": [],
            "outputs": ["output"],
        },
        {
            "name": "total",
            "step": f"{__name__}:total",
            "upstream": ["load"],
            "outputs": ["output"],
        },
    ]


def test_plan_uses_pipeline_defaults_and_does_not_run_steps() -> None:
    calls: list[int] = []

    @step
    def spy(n: int) -> int:
        calls.append(n)
        return n

    @pipeline
    def p(n: int = 3):
        spy(n)

    plan = p.plan()
    assert plan.nodes["spy"].params == {"n": 3}
    assert calls == []


def test_same_step_twice_gets_numbered_names() -> None:
    @pipeline
    def p():
        a = load(1)
        b = load(2)
        load(3)
        total(a)
        total(b, offset=5)

    plan = p.plan()
    assert list(plan.nodes) == ["load", "load_2", "load_3", "total", "total_2"]
    assert plan.nodes["load_3"].params == {"n": 3}
    assert plan.nodes["total_2"].inputs == {"values": OutputRef("load_2", "output")}
    assert plan.nodes["total_2"].params == {"offset": 5}


def test_with_options_name_sets_the_node_name() -> None:
    @pipeline
    def p():
        total(renamed(2))
        total(load.with_options(name="load_big")(1000))
        load(1)

    plan = p.plan()
    assert list(plan.nodes) == ["load_small", "total", "load_big", "total_2", "load"]
    assert plan.nodes["total"].upstream == ["load_small"]
    assert plan.nodes["load_small"].step.fn is load.fn
    assert renamed.name == "load_small" and load.name == "load"  # the original is unchanged


def test_explicit_name_clashing_with_a_numbered_one_still_gets_a_unique_name() -> None:
    @pipeline
    def p():
        load.with_options(name="load_2")(1)
        load(2)
        load(3)

    assert list(p.plan().nodes) == ["load_2", "load", "load_3"]


def test_control_flow_on_pipeline_params_shapes_the_plan() -> None:
    @pipeline
    def p(with_total: bool = True, folds: int = 2):
        for k in range(folds):
            values = load(k)
            if with_total:
                total(values)

    assert list(p.plan({"folds": 3}).nodes) == [
        "load",
        "total",
        "load_2",
        "total_2",
        "load_3",
        "total_3",
    ]
    assert list(p.plan({"with_total": False}).nodes) == ["load", "load_2"]


# --- several outputs ----------------------------------------------------------------------


def test_tuple_annotation_makes_numbered_outputs(sqlite_client: Any) -> None:
    assert split.output_names == ("output_0", "output_1")

    @pipeline
    def p(n: int = 6):
        first, second = split(load(n))
        total(second, offset=0)
        total(first, offset=1000)

    plan = p.plan()
    assert plan.nodes["total"].inputs == {"values": OutputRef("split", "output_1")}
    assert plan.nodes["total_2"].inputs == {"values": OutputRef("split", "output_0")}
    run = p.run(executor="inline", client=sqlite_client)
    assert run.output("split", "output_0") == [0, 1, 2]
    assert run.output("total") == 3 + 4 + 5
    assert run.output("total_2") == 1000 + 0 + 1 + 2


def test_outputs_option_names_the_outputs(sqlite_client: Any) -> None:
    assert parity.output_names == ("evens", "odds")

    @pipeline
    def p():
        evens, odds = parity(load(5))
        total(odds)

    plan = p.plan()
    assert plan.graph()[1]["outputs"] == ["evens", "odds"]
    assert plan.nodes["total"].inputs == {"values": OutputRef("parity", "odds")}
    run = p.run(executor="inline", client=sqlite_client)
    assert set(run.step("parity").outputs) == {"evens", "odds"}
    assert run.output("parity", "evens") == [0, 2, 4]
    assert run.output("total") == 1 + 3


def test_outputs_option_wins_over_the_annotation() -> None:
    named = split.with_options(outputs=["head", "tail"])
    assert named.output_names == ("head", "tail")
    assert split.output_names == ("output_0", "output_1")


@pytest.mark.parametrize(
    "annotation",
    ["int", "tuple", "tuple[int, ...]", "list[int]"],
)
def test_other_return_annotations_make_one_output(annotation: str) -> None:
    namespace: dict[str, Any] = {}
    exec(f"def f() -> {annotation}:\n    return (1, 2)\n", namespace)
    assert step(namespace["f"]).output_names == ("output",)


def test_typing_tuple_annotation_makes_numbered_outputs() -> None:
    def f() -> typing.Tuple[int, str, float]:  # noqa: UP006 - the old spelling on purpose
        return 1, "a", 1.0

    assert step(f).output_names == ("output_0", "output_1", "output_2")


def test_tuple_annotation_with_a_local_class_makes_numbered_outputs() -> None:
    class Report:
        pass

    @step
    def make() -> tuple[Report, int]:
        return Report(), 1

    assert make.output_names == ("output_0", "output_1")


# --- placeholders used as values ----------------------------------------------------------


def test_branching_on_a_step_output_is_a_clear_error() -> None:
    @pipeline
    def p():
        if total(load(3)):
            load(1)

    with pytest.raises(
        InvalidInput, match=r"output 'output' of step 'total'.*branch inside a step"
    ):
        p.plan()


def test_bool_of_output_ref_is_a_clear_error() -> None:
    with pytest.raises(InvalidInput, match="cannot decide an if or a loop"):
        bool(OutputRef("train", "model"))


def test_unpacking_a_single_output_is_a_clear_error() -> None:
    @pipeline
    def p():
        a, b = load(4)  # load has one output

    with pytest.raises(InvalidInput, match=r"is one output.*tuple\[A, B\].*outputs="):
        p.plan()
    with pytest.raises(InvalidInput, match="is one output"):
        list(OutputRef("load", "output"))


@pytest.mark.parametrize(
    "wrap",
    [
        lambda ref: [ref],
        lambda ref: [1, [2, ref]],
        lambda ref: (ref, ref),
        lambda ref: {"values": ref},
        lambda ref: {ref},
    ],
    ids=["list", "nested-list", "tuple", "dict", "set"],
)
def test_step_outputs_inside_a_container_argument_are_refused(wrap: Any) -> None:
    @pipeline
    def p():
        echo(wrap(load(2)))

    with pytest.raises(
        InvalidInput, match=r"step 'echo' argument 'value' holds step outputs inside a"
    ):
        p.plan()


def test_output_ref_from_another_plan_is_refused() -> None:
    leaked: list[OutputRef] = []

    @pipeline
    def first():
        leaked.append(load(1))

    @pipeline
    def second():
        total(leaked[0])

    first.plan()
    with pytest.raises(InvalidInput, match="is not from this pipeline"):
        second.plan()


def test_bad_step_arguments_name_the_step() -> None:
    @pipeline
    def p():
        total(load(1), offset=1, scale=2)

    with pytest.raises(InvalidInput, match=r"step 'total':.*scale"):
        p.plan()


# --- arguments: params and literals -------------------------------------------------------


def test_json_arguments_are_params_and_others_are_literals() -> None:
    frame = pd.DataFrame({"a": [1, 2], "b": [3, 4]})

    @pipeline
    def p():
        echo({"grid": [1, 2.5, None], "name": "x"})
        echo(value=frame)
        echo((1, 2))
        echo(math.inf)

    nodes = p.plan().nodes
    assert nodes["echo"].params == {"value": {"grid": [1, 2.5, None], "name": "x"}}
    assert nodes["echo"].literals == {}
    assert nodes["echo_2"].params == {} and nodes["echo_2"].literals["value"] is frame
    assert nodes["echo_3"].literals == {"value": (1, 2)}  # tuples are not JSON
    assert nodes["echo_4"].literals == {"value": math.inf}  # neither is inf


def test_dataframe_literal_is_stored_and_passed_to_the_step(sqlite_client: Any) -> None:
    frame = pd.DataFrame({"a": [1, 2], "b": [3, 4]}, index=pd.Index([7, 9], name="id"))
    seen: list[Any] = []

    @step
    def inspect_frame(frame: pd.DataFrame, label: str) -> pd.DataFrame:
        seen.append(frame)
        return frame

    @pipeline
    def p(label: str = "given"):
        inspect_frame(frame, label)

    run = p.run(executor="inline", client=sqlite_client)
    assert run.status is PipelineStatus.COMPLETED
    assert len(seen) == 1 and isinstance(seen[0], pd.DataFrame)
    assert seen[0] is not frame  # it went through the artifact store
    pd.testing.assert_frame_equal(seen[0], frame)
    record = run.step("inspect_frame")
    assert record.params == {"label": "given"}
    assert record.inputs["frame"].materializer == "dataframe/1"
    pd.testing.assert_frame_equal(sqlite_client.pipelines.load(record.inputs["frame"]), frame)
    pd.testing.assert_frame_equal(run.output("inspect_frame"), frame)


def test_literal_is_part_of_the_cache_key(sqlite_client: Any) -> None:
    def make(values: list[int]) -> Pipeline:
        @pipeline(name="literal_cache")
        def p():
            describe(pd.DataFrame({"a": values}))

        return p

    first = make([1, 2]).run(executor="inline", client=sqlite_client)
    same = make([1, 2]).run(executor="inline", client=sqlite_client)
    other = make([1, 3]).run(executor="inline", client=sqlite_client)
    assert not first.step("describe").cache_hit
    assert same.step("describe").cache_hit
    assert not other.step("describe").cache_hit
    assert other.output("describe") == {"label": "frame", "type": "DataFrame", "sum": 4}


# --- pipeline params ----------------------------------------------------------------------


def test_unknown_pipeline_param_is_named() -> None:
    with pytest.raises(InvalidInput, match=r"pipeline 'basic' has no param 'depth'.*n, offset"):
        basic.plan({"n": 2, "depth": 3})
    with pytest.raises(InvalidInput, match="has no param 'depth'"):
        basic.run(executor="inline", depth=3)  # refused before any store is opened


def test_non_json_pipeline_param_is_named() -> None:
    frame = pd.DataFrame({"a": [1]})
    with pytest.raises(InvalidInput, match=r"pipeline param 'n' is a DataFrame.*JSON values"):
        basic.plan({"n": frame})
    with pytest.raises(InvalidInput, match=r"pipeline param 'offset' is a tuple"):
        basic.bind_params({"offset": (1, 2)})
    with pytest.raises(InvalidInput, match=r"pipeline param 'offset' is a float"):
        basic.bind_params({"offset": math.nan})


def test_missing_required_pipeline_param_is_refused() -> None:
    @pipeline
    def p(n: int):
        load(n)

    with pytest.raises(InvalidInput, match=r"pipeline 'p':.*'n'"):
        p.plan()


def test_bind_params_applies_defaults() -> None:
    assert basic.bind_params({"offset": 2}) == {"n": 4, "offset": 2}


def test_pipeline_that_calls_no_steps_is_refused() -> None:
    @pipeline
    def empty(n: int = 1):
        return n + 1

    with pytest.raises(InvalidInput, match="pipeline 'empty' calls no steps"):
        empty.plan()


def test_pipeline_name_is_checked() -> None:
    with pytest.raises(InvalidInput, match="invalid pipeline name"):
        pipeline(name="no spaces allowed")(lambda: None)
    assert pipeline(name="churn.v2", experiment="churn")(lambda: None).experiment == "churn"
    assert basic.name == "basic" and basic.experiment == "basic"


# --- calling steps and pipelines directly -------------------------------------------------


def test_step_called_outside_a_pipeline_is_the_plain_function() -> None:
    assert total([1, 2, 3], offset=10) == 16
    assert split([1, 2, 3, 4]) == ([1, 2], [3, 4])
    assert isinstance(load, Step) and load.__name__ == "load" and load.__wrapped__ is load.fn


def test_calling_a_pipeline_directly_says_to_use_run() -> None:
    with pytest.raises(InvalidInput, match=r"run a pipeline with basic\.run\(\*\*params\)"):
        basic(n=3)


def test_pipeline_inside_a_pipeline_inlines_its_steps() -> None:
    @pipeline
    def prepare(n: int = 2):
        return load(n)

    @pipeline
    def outer(n: int = 5):
        values = prepare(n)
        total(values)
        total(prepare(1))

    plan = outer.plan()
    assert list(plan.nodes) == ["load", "total", "load_2", "total_2"]
    assert plan.nodes["load"].params == {"n": 5}
    assert plan.nodes["total"].upstream == ["load"]
    assert plan.nodes["total_2"].upstream == ["load_2"]


# --- what @step refuses -------------------------------------------------------------------


def test_step_refuses_async_functions() -> None:
    async def fetch(url: str) -> str:
        return url

    with pytest.raises(InvalidInput, match=r"step '.*fetch' is async or a generator"):
        step(fetch)


def test_step_refuses_generators() -> None:
    def rows(n: int):
        yield from range(n)

    with pytest.raises(InvalidInput, match="async or a generator"):
        step(retries=1)(rows)


@pytest.mark.parametrize(
    "fn",
    [lambda *values: 1, lambda n, **extra: 1],
    ids=["star-args", "star-star-kwargs"],
)
def test_step_refuses_star_args(fn: Any) -> None:
    with pytest.raises(InvalidInput, match=r"takes \*.*steps need named parameters"):
        step(fn)


def test_step_refuses_a_class() -> None:
    class Model:
        pass

    with pytest.raises(InvalidInput, match="@step decorates a function"):
        step(Model)


# --- StepOptions --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"retries": -1}, r"retries must be a whole number >= 0, not -1"),
        ({"retries": 1.5}, r"retries must be a whole number"),
        ({"retry_delay": -0.1}, r"retry_delay must be >= 0 seconds, not -0.1"),
        ({"timeout": 0}, r"timeout must be > 0 seconds"),
        ({"timeout": -5}, r"timeout must be > 0 seconds"),
        ({"timeout": math.nan}, r"timeout must be > 0 seconds"),
        ({"outputs": ()}, r"outputs must be a tuple of distinct Python identifiers"),
        ({"outputs": ("a", "a")}, r"outputs must be a tuple of distinct"),
        ({"outputs": ("model", "2nd")}, r"outputs must be a tuple of distinct Python identifiers"),
        ({"outputs": ("a", 1)}, r"outputs must be a tuple of distinct Python identifiers"),
    ],
    ids=lambda v: repr(v) if isinstance(v, dict) else "",
)
def test_step_options_are_validated(options: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        step(**options)
    with pytest.raises(InvalidInput, match=message):
        load.with_options(**options)


def test_valid_step_options_are_kept() -> None:
    s = step(cache=False, retries=2, retry_delay=0, timeout=1.5, outputs=["a", "b"], name="x")(
        lambda: (1, 2)
    )
    assert s.options == StepOptions(
        cache=False, retries=2, retry_delay=0, timeout=1.5, outputs=("a", "b"), name="x"
    )
    assert s.name == "x" and s.output_names == ("a", "b")


def test_with_options_refuses_unknown_options() -> None:
    with pytest.raises(InvalidInput, match="unknown step option.*retry"):
        load.with_options(retry=3)


def test_outputs_given_as_one_string_is_refused() -> None:
    try:
        s = step(outputs="model")(lambda: 1)
    except InvalidInput:
        return
    raise AssertionError(f"accepted, with outputs {s.output_names}")


@pytest.mark.parametrize(
    "options",
    [{"retries": True}, {"retry_delay": math.nan}, {"retry_delay": "1"}, {"timeout": "5"}],
    ids=["retries-bool", "delay-nan", "delay-str", "timeout-str"],
)
def test_step_options_of_the_wrong_type_are_invalid_input(options: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput):
        StepOptions(**options)


# --- resolve_pipeline ---------------------------------------------------------------------


@pytest.fixture
def plan_modules(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A unique module-name prefix; sys.path and the modules imported are restored after."""
    monkeypatch.setattr(sys, "path", list(sys.path))  # resolve_pipeline may prepend folders
    prefix = f"plan{uuid.uuid4().hex[:8]}_"
    yield prefix
    for name in [m for m in sys.modules if m.startswith(prefix)]:
        del sys.modules[name]


PIPELINE_MODULE = """
from ctloop import pipeline, step

@step
def one() -> int:
    return 1

@pipeline
def flow():
    one()

not_a_pipeline = one
nothing = None
"""


def write_module(folder: Path, name: str, source: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.py"
    path.write_text(textwrap.dedent(source))
    return path


def test_resolve_module_attribute_from_the_working_folder(
    tmp_path: Path, plan_modules: str
) -> None:
    write_module(tmp_path, f"{plan_modules}flows", PIPELINE_MODULE)  # tmp_path is the cwd
    found = resolve_pipeline(f"{plan_modules}flows:flow")
    assert isinstance(found, Pipeline) and found.name == "flow"
    assert found is sys.modules[f"{plan_modules}flows"].flow
    assert list(found.plan().nodes) == ["one"]


def test_resolve_dotted_module_in_a_package(tmp_path: Path, plan_modules: str) -> None:
    package = tmp_path / f"{plan_modules}pkg"
    write_module(package, "__init__", "")
    write_module(package, "training", PIPELINE_MODULE)
    assert resolve_pipeline(f"{plan_modules}pkg.training:flow").name == "flow"


def test_resolve_file_path_with_sibling_imports(tmp_path: Path, plan_modules: str) -> None:
    folder = tmp_path / "elsewhere" / "jobs"
    write_module(folder, f"{plan_modules}helpers", "STEPS = 2\n")
    write_module(
        folder,
        f"{plan_modules}job",
        PIPELINE_MODULE.replace(
            "from ctloop", f"import {plan_modules}helpers as helpers\nfrom ctloop"
        ).replace("    one()", "    for _ in range(helpers.STEPS):\n        one()"),
    )
    found = resolve_pipeline(f"elsewhere/jobs/{plan_modules}job.py:flow")
    assert found.name == "flow"
    assert list(found.plan().nodes) == ["one", "one_2"]
    absolute = resolve_pipeline(f"{folder / plan_modules}job.py:flow")
    assert absolute.name == "flow"


def test_resolve_missing_module_is_not_found(plan_modules: str) -> None:
    with pytest.raises(NotFound, match=rf"cannot import '{plan_modules}nowhere'.*file\.py:attr"):
        resolve_pipeline(f"{plan_modules}nowhere:flow")


def test_resolve_missing_file_is_not_found(plan_modules: str) -> None:
    with pytest.raises(NotFound, match=r"no such file: 'jobs/absent\.py'"):
        resolve_pipeline("jobs/absent.py:flow")


def test_resolve_reraises_a_missing_import_inside_the_module(
    tmp_path: Path, plan_modules: str
) -> None:
    write_module(tmp_path, f"{plan_modules}broken", "import zz_not_installed_anywhere\n")
    with pytest.raises(ModuleNotFoundError, match="zz_not_installed_anywhere") as info:
        resolve_pipeline(f"{plan_modules}broken:flow")
    assert not isinstance(info.value, NotFound)


def test_resolve_reports_the_missing_dependency_not_the_module(
    tmp_path: Path, plan_modules: str
) -> None:
    write_module(tmp_path, f"{plan_modules}features_v2", f"import {plan_modules}features\n")
    with pytest.raises(ModuleNotFoundError, match=rf"'{plan_modules}features'") as info:
        resolve_pipeline(f"{plan_modules}features_v2:flow")
    assert not isinstance(info.value, NotFound)


def test_resolve_missing_attribute_is_not_found(tmp_path: Path, plan_modules: str) -> None:
    write_module(tmp_path, f"{plan_modules}flows", PIPELINE_MODULE)
    with pytest.raises(NotFound, match=rf"module '{plan_modules}flows' has no attribute 'flo'"):
        resolve_pipeline(f"{plan_modules}flows:flo")
    empty = write_module(tmp_path, f"{plan_modules}empty", "")
    with pytest.raises(NotFound, match=rf"module '{empty}' has no attribute 'flow'"):
        resolve_pipeline(f"{empty}:flow")


@pytest.mark.parametrize(
    ("attr", "kind"), [("not_a_pipeline", "Step"), ("write_module", "function")]
)
def test_resolve_something_else_is_not_a_pipeline(
    tmp_path: Path, plan_modules: str, attr: str, kind: str
) -> None:
    write_module(
        tmp_path,
        f"{plan_modules}flows",
        PIPELINE_MODULE + "\ndef write_module():\n    return 1\n",
    )
    with pytest.raises(InvalidInput, match=rf"flows:{attr} is a {kind}, not a @pipeline"):
        resolve_pipeline(f"{plan_modules}flows:{attr}")


@pytest.mark.parametrize("target", ["flows", "flows:", ":flow", "", "flows.py"])
def test_resolve_malformed_target_is_invalid(target: str) -> None:
    with pytest.raises(InvalidInput, match=r"does not name a pipeline; use MODULE:ATTRIBUTE"):
        resolve_pipeline(target)


# --- pickling steps for worker processes --------------------------------------------------


def test_module_level_step_pickles_by_reference() -> None:
    for s in (load, split, parity):
        payload = cloudpickle.dumps(s)
        assert pickle.loads(payload) is s
        assert len(payload) < 200  # a name, not the function's code


def test_step_defined_in_a_function_pickles_by_value() -> None:
    factor = 3

    @step(retries=2, outputs=("scaled", "size"))
    def scale(values: list) -> tuple[list, int]:
        return [v * factor for v in values], len(values)

    copy = pickle.loads(cloudpickle.dumps(scale))
    assert isinstance(copy, Step) and copy is not scale
    assert copy.name == "scale" and copy.path == scale.path
    assert copy.options == scale.options and copy.output_names == ("scaled", "size")
    assert copy([1, 2]) == ([3, 6], 2)


def test_with_options_copy_pickles_by_value() -> None:
    copy = pickle.loads(cloudpickle.dumps(renamed))
    assert copy is not renamed and copy is not load
    assert copy.name == "load_small" and copy(3) == [0, 1, 2]


def test_step_of_a_module_registered_by_value_pickles_by_value(
    tmp_path: Path, plan_modules: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib

    name = f"{plan_modules}shipped"
    write_module(tmp_path / "src", name, PIPELINE_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path / "src"))
    module = importlib.import_module(name)
    cloudpickle.register_pickle_by_value(module)
    try:
        payload = cloudpickle.dumps(module.one)
    finally:
        cloudpickle.unregister_pickle_by_value(module)
    del sys.modules[name]  # a worker that cannot import it
    sys.path.remove(str(tmp_path / "src"))
    copy = pickle.loads(payload)
    assert isinstance(copy, Step) and copy() == 1
    assert name not in sys.modules


# --- the public names ---------------------------------------------------------------------


def test_ctloop_pipelines_step_is_the_decorator_whatever_was_imported_first() -> None:
    code = (
        "import ctloop\n"
        "ctloop.step, ctloop.pipeline\n"
        "from ctloop.pipelines import pipeline, step\n"
        "print(callable(step), callable(pipeline))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.split() == ["True", "True"]


def test_a_pipeline_param_named_like_a_run_option_is_refused() -> None:
    def flow(cache: bool = True) -> None:
        load(1)

    with pytest.raises(InvalidInput, match="param named 'cache'.*rename"):
        pipeline(flow)
