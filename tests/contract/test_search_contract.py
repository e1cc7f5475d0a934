"""Run search (filters, ordering, paging, its errors) is the same on every backend."""

from __future__ import annotations

from typing import Any

import pytest

from ctloop.errors import InvalidInput, NotFound
from ctloop.store.filters import parse_filter


def _runs(client: Any) -> dict[str, str]:
    spec = [
        ("rf-1", "rf", 0.81, "a", "FINISHED"),
        ("rf-2", "rf", 0.92, "b", "FINISHED"),
        ("gbm-1", "gbm", 0.88, "a", "FAILED"),
        ("lin-1", "linear", 0.55, "b", "FINISHED"),
    ]
    ids = {}
    for name, model, auc, team, status in spec:
        run = client.runs.create("search", name=name, tags={"team": team})
        client.runs.log_batch(run.id, metrics=[("auc", auc, 0, None)], params={"model": model})
        client.runs.end(run.id, status)
        ids[name] = run.id
    other = client.runs.create("elsewhere", name="other")
    client.runs.log_metric(other.id, "auc", 0.99)
    return ids


def _names(page: Any) -> list[str]:
    return [r.name for r in page.runs]


def test_filter_by_metric_param_and_tag(backend_client: Any) -> None:
    ids = _runs(backend_client)
    page = backend_client.runs.search(
        "search", filter="metrics.auc > 0.8 and params.model = 'rf' and tags.team = 'b'"
    )
    assert _names(page) == ["rf-2"] and page.next_page_token is None
    (found,) = page.runs
    assert found == backend_client.runs.get(ids["rf-2"])  # search returns whole runs


def test_filter_operators(backend_client: Any) -> None:
    _runs(backend_client)
    s = backend_client.runs.search
    assert set(_names(s("search", "metrics.auc >= 0.88"))) == {"rf-2", "gbm-1"}
    assert set(_names(s("search", "params.model != 'rf'"))) == {"gbm-1", "lin-1"}
    assert set(_names(s("search", "params.model IN ('gbm', 'linear')"))) == {"gbm-1", "lin-1"}
    assert set(_names(s("search", "params.model NOT IN ('rf')"))) == {"gbm-1", "lin-1"}
    assert set(_names(s("search", "run_name LIKE 'rf-%'"))) == {"rf-1", "rf-2"}
    assert _names(s("search", "run_name LIKE 'RF-%'")) == []  # LIKE is case-sensitive
    assert set(_names(s("search", "run_name ILIKE 'RF-%'"))) == {"rf-1", "rf-2"}
    assert _names(s("search", "status = 'failed'")) == ["gbm-1"]
    assert _names(s("search", "metrics.missing > 0")) == []


def test_search_across_all_experiments(backend_client: Any) -> None:
    _runs(backend_client)
    assert "other" in _names(backend_client.runs.search(filter="metrics.auc > 0.95"))
    assert _names(backend_client.runs.search(["elsewhere"])) == ["other"]
    both = backend_client.runs.search(("elsewhere", "search"), filter="metrics.auc > 0.9")
    assert set(_names(both)) == {"other", "rf-2"}
    experiment_id = backend_client.experiments.get("elsewhere").id
    assert _names(backend_client.runs.search(experiment_id)) == ["other"]


def test_order_by_metric_and_paging(backend_client: Any) -> None:
    _runs(backend_client)
    search = backend_client.runs.search
    page = search("search", order_by=["metrics.auc DESC"], limit=3)
    assert _names(page) == ["rf-2", "gbm-1", "rf-1"]
    assert page.next_page_token is not None
    rest = search("search", order_by=["metrics.auc DESC"], limit=3, page_token=page.next_page_token)
    assert _names(rest) == ["lin-1"] and rest.next_page_token is None
    asc = search("search", order_by="metrics.auc ASC")
    assert _names(asc) == ["lin-1", "rf-1", "gbm-1", "rf-2"]
    by_param = search("search", order_by=("params.model", "metrics.auc DESC"))
    assert _names(by_param) == ["gbm-1", "lin-1", "rf-2", "rf-1"]
    newest_first = search("search")
    assert _names(newest_first) == ["lin-1", "gbm-1", "rf-2", "rf-1"]


def test_runs_without_the_order_metric_sort_last(backend_client: Any) -> None:
    _runs(backend_client)
    bare = backend_client.runs.create("search", name="no-metric")
    backend_client.runs.end(bare.id)
    for direction in ("ASC", "DESC"):
        names = _names(backend_client.runs.search("search", order_by=f"metrics.auc {direction}"))
        assert names[-1] == "no-metric"


@pytest.mark.parametrize(
    ("text", "position"),
    [
        ("metrics.auc foo 0.8", 13),
        ("metrics.auc > 'high'", 15),
        ("nonsense.auc > 1", 1),
        ("metrics.auc > 0.8 or params.x = 'y'", 19),
        ("params.model > 'rf'", 14),
        ("params.model IN 'rf'", 17),
        ("colour = 'red'", 1),
        ("metrics.auc >", None),
    ],
)
def test_malformed_filter_gives_the_parsers_message(
    backend_client: Any, text: str, position: int | None
) -> None:
    with pytest.raises(InvalidInput) as expected:
        parse_filter(text)
    with pytest.raises(InvalidInput) as info:
        backend_client.runs.search(filter=text)
    assert str(info.value) == str(expected.value)
    if position is not None:
        assert f"at character {position}" in str(info.value)


def test_bad_order_limit_token_and_experiment(backend_client: Any) -> None:
    search = backend_client.runs.search
    with pytest.raises(InvalidInput, match="ASC or DESC"):
        search(order_by=["metrics.auc SIDEWAYS"])
    with pytest.raises(InvalidInput, match=r"^invalid limit 0: use an integer from 1 to 10000$"):
        search(limit=0)
    with pytest.raises(InvalidInput, match=r"^invalid limit 10001"):
        search(limit=10_001)
    with pytest.raises(InvalidInput, match=r"^invalid page_token 'garbage!'"):
        search(page_token="garbage!")
    with pytest.raises(NotFound, match="^no experiment named 'ghost'"):
        search(["ghost"])
