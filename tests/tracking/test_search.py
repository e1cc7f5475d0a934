"""Run search: the filter language and its SQL, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest

from ctloop.errors import InvalidInput
from ctloop.store.filters import parse_filter, parse_order_by


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


def test_filter_by_metric_param_and_tag(client: Any) -> None:
    _runs(client)
    page = client.runs.search(
        "search", filter="metrics.auc > 0.8 and params.model = 'rf' and tags.team = 'b'"
    )
    assert _names(page) == ["rf-2"]


def test_filter_operators(client: Any) -> None:
    _runs(client)
    s = client.runs.search
    assert set(_names(s("search", "metrics.auc >= 0.88"))) == {"rf-2", "gbm-1"}
    assert set(_names(s("search", "params.model != 'rf'"))) == {"gbm-1", "lin-1"}
    assert set(_names(s("search", "params.model IN ('gbm', 'linear')"))) == {"gbm-1", "lin-1"}
    assert set(_names(s("search", "params.model NOT IN ('rf')"))) == {"gbm-1", "lin-1"}
    assert set(_names(s("search", "run_name LIKE 'rf-%'"))) == {"rf-1", "rf-2"}
    assert _names(s("search", "run_name LIKE 'RF-%'")) == []  # LIKE is case-sensitive
    assert set(_names(s("search", "run_name ILIKE 'RF-%'"))) == {"rf-1", "rf-2"}
    assert _names(s("search", "status = 'failed'")) == ["gbm-1"]
    assert _names(s("search", "metrics.missing > 0")) == []


def test_search_across_all_experiments(client: Any) -> None:
    _runs(client)
    assert "other" in _names(client.runs.search(filter="metrics.auc > 0.95"))
    assert _names(client.runs.search(["elsewhere"])) == ["other"]


def test_order_by_metric_and_paging(client: Any) -> None:
    _runs(client)
    page = client.runs.search("search", order_by=["metrics.auc DESC"], limit=3)
    assert _names(page) == ["rf-2", "gbm-1", "rf-1"]
    assert page.next_page_token is not None
    rest = client.runs.search(
        "search", order_by=["metrics.auc DESC"], limit=3, page_token=page.next_page_token
    )
    assert _names(rest) == ["lin-1"] and rest.next_page_token is None
    asc = client.runs.search("search", order_by="metrics.auc ASC")
    assert _names(asc) == ["lin-1", "rf-1", "gbm-1", "rf-2"]
    by_param = client.runs.search("search", order_by=["params.model", "metrics.auc DESC"])
    assert _names(by_param) == ["gbm-1", "lin-1", "rf-2", "rf-1"]


def test_runs_without_the_order_metric_sort_last(client: Any) -> None:
    _runs(client)
    bare = client.runs.create("search", name="no-metric")
    client.runs.end(bare.id)
    for direction in ("ASC", "DESC"):
        names = _names(client.runs.search("search", order_by=f"metrics.auc {direction}"))
        assert names[-1] == "no-metric"


@pytest.mark.parametrize(
    ("text", "token", "position"),
    [
        ("metrics.auc foo 0.8", "foo", 13),
        ("metrics.auc > 'high'", "'high'", 15),
        ("nonsense.auc > 1", "nonsense", 1),
        ("metrics.auc > 0.8 or params.x = 'y'", "or", 19),
        ("params.model > 'rf'", ">", 14),
        ("params.model IN 'rf'", "'rf'", 17),
        ("colour = 'red'", "colour", 1),
    ],
)
def test_malformed_filter_points_at_the_bad_token(text: str, token: str, position: int) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_filter(text)
    assert info.value.token == token  # type: ignore[attr-defined]
    assert f"at character {position}" in str(info.value)
    assert repr(text) in str(info.value) or text in str(info.value)


def test_truncated_filter_says_what_was_expected() -> None:
    with pytest.raises(InvalidInput, match="expected a number at the end"):
        parse_filter("metrics.auc >")


def test_quoted_keys_and_dotted_keys() -> None:
    (c1,) = parse_filter("metrics.`val auc` < 1")
    assert c1.key == "val auc"
    (c2,) = parse_filter("metrics.val.auc < 1")
    assert c2.key == "val.auc"
    (c3,) = parse_filter("params.\"my param\" = 'it''s'")
    assert (c3.key, c3.value) == ("my param", "it's")


def test_order_by_errors() -> None:
    with pytest.raises(InvalidInput, match="ASC or DESC"):
        parse_order_by(["metrics.auc SIDEWAYS"])
    assert parse_order_by("start_time")[0].key == "start_time"


def test_bad_limit_and_token(client: Any) -> None:
    with pytest.raises(InvalidInput, match="invalid limit 0"):
        client.runs.search(limit=0)
    with pytest.raises(InvalidInput, match="invalid page_token"):
        client.runs.search(page_token="garbage!")
