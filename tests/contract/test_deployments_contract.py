"""``client.deployments`` on every backend: SQLite, PostgreSQL and over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import ctloop
from ctloop.client.deployments import KEEP
from ctloop.errors import Conflict, InvalidInput, NotFound
from ctloop.serving.entities import Deployment, Route


@pytest.fixture(autouse=True)
def _no_active_run() -> Iterator[None]:
    yield
    while ctloop.active_run() is not None:
        ctloop.end_run()


@pytest.fixture(scope="module")
def fitted() -> tuple[Any, Any]:
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    frame = pd.DataFrame({"age": [22, 35, 47, 58], "spend": [9.5, 20.0, 31.0, 48.5]})
    return LogisticRegression().fit(frame, [0, 0, 1, 1]), frame


@pytest.fixture
def churn(backend_client: Any, fitted: tuple[Any, Any]) -> Any:
    """Model 'churn' with versions 1-4, ``champion`` on 2; returns the client."""
    model, frame = fitted
    for _ in range(4):
        with ctloop.start_run(experiment="churn", client=backend_client) as run:
            run.log_model(model, input_example=frame)
        backend_client.models.register(run.id, name="churn")
    backend_client.models.set_alias("churn", "champion", 2, reason="best auc")
    return backend_client


def test_create_from_an_alias_routes_everything_to_its_version(churn: Any) -> None:
    d = churn.deployments.create("churn-api", "churn@champion", description="scoring")
    assert isinstance(d, Deployment)
    assert (d.name, d.model, d.revision) == ("churn-api", "churn", 1)
    assert d.routes == [Route(version=2, weight=100, variant="champion")]
    assert d.shadows == [] and d.sticky_key is None and d.log_payloads is True
    assert d.description == "scoring"
    assert churn.deployments.get("churn-api") == d
    assert churn.deployments.list() == [d]
    [created] = churn.deployments.history("churn-api")
    assert created.revision == 1 and created.routes == d.routes and created.reason is None


def test_create_from_a_version_or_the_latest_names_the_variant_by_version(churn: Any) -> None:
    pinned = churn.deployments.create("b", "churn/3", sticky_key="field:customer_id")
    latest = churn.deployments.create("a", "churn", log_payloads=False)
    assert pinned.routes == [Route(3, 100, "v3")] and pinned.sticky_key == "field:customer_id"
    assert latest.routes == [Route(4, 100, "v4")] and latest.log_payloads is False
    assert [d.name for d in churn.deployments.list()] == ["a", "b"]


def test_the_route_pins_the_version_the_alias_named_at_creation(churn: Any) -> None:
    churn.deployments.create("churn-api", "churn@champion")
    churn.models.set_alias("churn", "champion", 4)
    d = churn.deployments.get("churn-api")
    assert d.routes == [Route(2, 100, "champion")] and d.revision == 1


def test_set_traffic_bumps_the_revision_and_records_an_event(churn: Any) -> None:
    churn.deployments.create("churn-api", "churn@champion")
    d = churn.deployments.set_traffic(
        "churn-api", ["2=90", "3=10"], shadows=[4], sticky_key="header:X-User-Id", reason="canary"
    )
    assert d.revision == 2
    assert d.routes == [Route(2, 90, "champion"), Route(3, 10, "canary")]
    assert d.shadows == [4] and d.sticky_key == "header:X-User-Id"
    assert churn.deployments.get("churn-api").revision == 2
    first, second = churn.deployments.history("churn-api")
    assert (first.revision, second.revision) == (1, 2)
    assert second.routes == d.routes and second.shadows == [4]
    assert second.sticky_key == "header:X-User-Id" and second.reason == "canary"
    assert second.actor and second.created_at >= first.created_at


def test_every_change_goes_up_by_one_and_a_repeat_changes_nothing(churn: Any) -> None:
    deployments = churn.deployments
    deployments.create("churn-api", "churn@champion")
    splits: list[dict[int, int]] = [{2: 90, 3: 10}, {2: 50, 3: 50}, {3: 100}]
    revisions = [deployments.set_traffic("churn-api", s).revision for s in splits]
    assert revisions == [2, 3, 4]
    again = deployments.set_traffic("churn-api", {3: 100}, reason="same again")
    assert again.revision == 4
    assert [e.revision for e in deployments.history("churn-api")] == [1, 2, 3, 4]
    assert again.routes == [Route(3, 100, "canary")]  # a kept version keeps its variant


def test_variants_can_be_named_and_default_to_v_version_when_several_are_new(
    churn: Any,
) -> None:
    deployments = churn.deployments
    deployments.create("churn-api", "churn/1")
    d = deployments.set_traffic("churn-api", ["2=80", "3=10", "4=10"])
    assert [r.variant for r in d.routes] == ["v2", "v3", "v4"]
    d = deployments.set_traffic("churn-api", ["2=90:champion", "4=10:challenger"])
    assert d.routes == [Route(2, 90, "champion"), Route(4, 10, "challenger")]
    d = deployments.set_traffic("churn-api", [(2, 95), (4, 5, "canary")])
    assert d.routes == [Route(2, 95, "champion"), Route(4, 5, "canary")]


def test_shadows_and_sticky_key_are_kept_unless_given(churn: Any) -> None:
    deployments = churn.deployments
    deployments.create("churn-api", "churn@champion", sticky_key="header:X-User-Id")
    deployments.set_traffic("churn-api", {2: 100}, shadows=[3, 4])
    d = deployments.set_traffic("churn-api", {2: 90, 1: 10})
    assert d.shadows == [3, 4] and d.sticky_key == "header:X-User-Id"
    d = deployments.set_traffic("churn-api", None, shadows=[], sticky_key=None)
    assert d.shadows == [] and d.sticky_key is None and d.revision == 4
    assert d.routes == [Route(2, 90, "champion"), Route(1, 10, "canary")]
    d = deployments.set_traffic("churn-api", None, sticky_key="field:customer_id")
    assert d.sticky_key == "field:customer_id" and d.revision == 5


@pytest.mark.parametrize(
    ("weights", "expected"),
    [
        (["2=90", "3=5"], "add up to 95, not 100"),
        ({2: 60, 3: 60}, "2=60 3=60 add up to 120"),
        (["2=90", "2=10"], "version 2 appears twice"),
        (["2-90"], "invalid traffic split '2-90': write VERSION=WEIGHT"),
        (["2=abc"], "invalid traffic split '2=abc'"),
        (["2=100:"], "no variant name after ':'"),
        (["2=90:x y", "3=10"], "invalid variant 'x y'"),
        (["2=90:a", "3=10:a"], "variant 'a' names two routes"),
        ({2: 101}, "invalid weight 101 for version 2"),
        ({0: 100}, "invalid version 0"),
        ([], "the traffic split is empty"),
    ],
)
def test_a_bad_split_is_refused_naming_the_values(churn: Any, weights: Any, expected: str) -> None:
    churn.deployments.create("churn-api", "churn@champion")
    with pytest.raises(InvalidInput, match=expected.replace("(", r"\(")):
        churn.deployments.set_traffic("churn-api", weights)
    assert churn.deployments.get("churn-api").revision == 1


def test_versions_and_shadows_must_exist_and_not_overlap(churn: Any) -> None:
    deployments = churn.deployments
    deployments.create("churn-api", "churn@champion")
    with pytest.raises(NotFound, match="model 'churn' has no version 9 \\(latest is 4\\)"):
        deployments.set_traffic("churn-api", {2: 90, 9: 10})
    with pytest.raises(NotFound, match="has no version 7"):
        deployments.set_traffic("churn-api", {2: 100}, shadows=[7])
    with pytest.raises(InvalidInput, match="version 2 is both routed and shadowed"):
        deployments.set_traffic("churn-api", {2: 100}, shadows=[2])
    with pytest.raises(InvalidInput, match="shadow version 3 is given twice"):
        deployments.set_traffic("churn-api", {2: 100}, shadows=[3, 3])
    deployments.set_traffic("churn-api", None, shadows=[3])
    with pytest.raises(InvalidInput, match="version 3 is both routed and shadowed"):
        deployments.set_traffic("churn-api", {3: 100})  # against the shadow it keeps
    assert deployments.get("churn-api").revision == 2


def test_set_traffic_needs_something_to_change(churn: Any) -> None:
    churn.deployments.create("churn-api", "churn@champion")
    with pytest.raises(InvalidInput, match="nothing to change"):
        churn.deployments.set_traffic("churn-api", None, sticky_key=KEEP)


@pytest.mark.parametrize("bad", ["X-User-Id", "header:", "cookie:sid", "field:a b", "header:a:b"])
def test_a_bad_sticky_key_is_refused(churn: Any, bad: str) -> None:
    with pytest.raises(InvalidInput, match="write header:NAME .* or field:NAME"):
        churn.deployments.create("churn-api", "churn@champion", sticky_key=bad)
    churn.deployments.create("churn-api", "churn@champion")
    with pytest.raises(InvalidInput, match=f"invalid sticky key '{bad}'"):
        churn.deployments.set_traffic("churn-api", None, sticky_key=bad)


def test_create_refuses_unknown_models_and_taken_names(churn: Any) -> None:
    deployments = churn.deployments
    with pytest.raises(NotFound, match="no model named 'churm'; did you mean 'churn'"):
        deployments.create("churn-api", "churm@champion")
    with pytest.raises(NotFound, match="has no alias 'challenger' \\(it has: champion\\)"):
        deployments.create("churn-api", "churn@challenger")
    with pytest.raises(NotFound, match="has no version 8"):
        deployments.create("churn-api", "churn/8")
    with pytest.raises(InvalidInput, match="names a run's package, not a registered version"):
        deployments.create("churn-api", "runs:/abc123/model")
    with pytest.raises(InvalidInput, match="invalid deployment name"):
        deployments.create("bad name", "churn@champion")
    assert deployments.list() == []
    deployments.create("churn-api", "churn@champion")
    with pytest.raises(Conflict, match="a deployment named 'churn-api' exists already"):
        deployments.create("churn-api", "churn/1")


def test_delete_removes_the_deployment_and_its_history(churn: Any) -> None:
    deployments = churn.deployments
    deployments.create("churn-api", "churn@champion")
    deployments.create("other", "churn/1")
    deployments.set_traffic("churn-api", {2: 50, 3: 50})
    deployments.delete("churn-api")
    assert [d.name for d in deployments.list()] == ["other"]
    for call in (deployments.get, deployments.history, deployments.delete):
        with pytest.raises(NotFound, match="no deployment named 'churn-api'"):
            call("churn-api")
    again = deployments.create("churn-api", "churn/4")  # the name is free again, from 1
    assert again.revision == 1 and len(deployments.history("churn-api")) == 1


def test_unknown_deployments_get_a_hint(churn: Any) -> None:
    churn.deployments.create("churn-api", "churn@champion")
    with pytest.raises(NotFound, match="did you mean 'churn-api'\\?"):
        churn.deployments.set_traffic("churn-apj", {2: 100})


# --- the REST API itself ------------------------------------------------------------------


def _error(response: Any, status: int) -> str:
    """Check the one error shape and the status; return the message."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    return str(body["error"]["message"])


def test_the_rest_api_keeps_an_omitted_sticky_key_and_answers_errors_in_one_shape(
    tmp_path: Any, fitted: tuple[Any, Any]
) -> None:
    import httpx

    from ctloop.testing import running_server

    model, frame = fitted
    with ctloop.Client(store=str(tmp_path / "store")) as local:
        with ctloop.start_run(experiment="churn", client=local) as run:
            run.log_model(model, input_example=frame)
        local.models.register(run.id, name="churn")
        local.deployments.create("api", "churn/1", sticky_key="header:X-User-Id")
    with (
        running_server(str(tmp_path / "store"), auth=True) as url,
        ctloop.Client(store=str(tmp_path / "store")) as local,
    ):
        _, read = local.tokens.create("read")
        _, write = local.tokens.create("write")
        base = url + "/api/v1/deployments"

        def auth(secret: str) -> dict[str, str]:
            return {"Authorization": f"Bearer {secret}"}

        assert httpx.get(base + "/api", headers=auth(read)).json()["revision"] == 1
        refused = httpx.put(base + "/api/traffic", json={"shadows": []}, headers=auth(read))
        assert "needs 'write'" in _error(refused, 403)
        kept = httpx.put(
            base + "/api/traffic",
            json={"routes": [{"version": 1, "weight": 100}]},
            headers=auth(write),
        )
        assert kept.status_code == 200 and kept.json()["sticky_key"] == "header:X-User-Id"
        cleared = httpx.put(base + "/api/traffic", json={"sticky_key": None}, headers=auth(write))
        assert cleared.json()["sticky_key"] is None and cleared.json()["revision"] == 2
        bad = httpx.put(
            base + "/api/traffic",
            json={"routes": [{"version": 1, "weight": 60}, {"version": 1, "weight": 40}]},
            headers=auth(write),
        )
        assert "version 1 appears twice" in _error(bad, 400)
        huge = httpx.put(
            base + "/api/traffic",
            json={"routes": [{"version": 2**40, "weight": 100}]},
            headers=auth(write),
        )
        assert "invalid version" in _error(huge, 400)
        assert "no deployment named 'nope'" in _error(
            httpx.delete(base + "/nope", headers=auth(write)), 404
        )
        assert local.deployments.get("api").revision == 2


def test_concurrent_changes_never_share_a_revision(churn: Any) -> None:
    from concurrent.futures import ThreadPoolExecutor

    churn.deployments.create("churn-api", "churn@champion")

    def change(k: int) -> int:  # every split differs, so every call is a change
        return int(churn.deployments.set_traffic("churn-api", {2: k, 3: 100 - k}).revision)

    with ThreadPoolExecutor(4) as pool:
        revisions = list(pool.map(change, range(1, 21)))
    assert sorted(revisions) == list(range(2, 22))
    history = churn.deployments.history("churn-api")
    assert [e.revision for e in history] == list(range(1, 22))
    assert churn.deployments.get("churn-api").routes == history[-1].routes
