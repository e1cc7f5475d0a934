"""Aliases: set, move, delete, rollback — and the history of every move, kept forever."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ctloop._internal.environment import current_user
from ctloop.errors import Conflict, InvalidInput, NotFound

MakeRun = Callable[..., str]


@pytest.fixture
def churn(client: Any, model_run: MakeRun) -> Any:
    """Model 'churn' with versions 1-4; returns client.models."""
    for _ in range(4):
        client.models.register(model_run(), name="churn")
    return client.models


def moves(models: Any, alias: str | None = "champion") -> list[tuple[Any, ...]]:
    return [
        (e.alias, e.action, e.from_version, e.to_version, e.reason)
        for e in models.alias_history("churn", alias)
    ]


def test_set_move_delete_rollback_are_recorded_exactly(churn: Any) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    v = churn.set_alias("churn", "champion", 1, reason="first")
    assert (v.version, v.aliases) == (1, ["champion"])
    churn.set_alias("churn", "champion", 3, reason="better auc")
    assert churn.resolve("churn@champion").version == 3
    churn.delete_alias("churn", "champion", reason="incident")
    with pytest.raises(NotFound, match="has no alias 'champion'"):
        churn.resolve("churn@champion")
    churn.rollback("churn", "champion", reason="undo the delete")
    assert churn.resolve("churn@champion").version == 3

    assert moves(churn) == [
        ("champion", "set", None, 1, "first"),
        ("champion", "set", 1, 3, "better auc"),
        ("champion", "delete", 3, None, "incident"),
        ("champion", "rollback", None, 3, "undo the delete"),
    ]
    events = churn.alias_history("churn", "champion")
    after = datetime.now(UTC) + timedelta(seconds=1)
    assert all(e.actor == current_user() and e.name == "churn" for e in events)
    assert all(before <= e.created_at <= after for e in events)
    assert [e.id for e in events] == sorted(e.id for e in events)
    assert [e.created_at for e in events] == sorted(e.created_at for e in events)


def test_rollback_walks_back_one_move_at_a_time(churn: Any) -> None:
    """Rollback is an undo stack: a second rollback goes further back, not forth again."""
    for version in (1, 2, 3):
        churn.set_alias("churn", "champion", version)
    assert churn.rollback("churn", reason="canary failed").version == 2
    assert churn.rollback("churn", reason="2 is bad too").version == 1
    with pytest.raises(Conflict) as info:
        churn.rollback("churn")
    assert str(info.value) == (
        "alias 'champion' of model 'churn' has no previous version to roll back to: it was "
        f"created pointing at version 1 by {current_user()}; to point it elsewhere, run: "
        "ctloop models promote churn VERSION --alias champion --reason …"
    )
    assert churn.resolve("churn@champion").version == 1
    assert moves(churn)[3:] == [
        ("champion", "rollback", 3, 2, "canary failed"),
        ("champion", "rollback", 2, 1, "2 is bad too"),
    ]


def test_a_move_after_a_rollback_is_what_the_next_rollback_undoes(churn: Any) -> None:
    for version in (1, 2, 3):
        churn.set_alias("churn", "champion", version)
    churn.rollback("churn")  # 3 -> 2
    churn.set_alias("churn", "champion", 4)  # 2 -> 4
    assert churn.rollback("churn").version == 2  # undoes 2 -> 4
    assert churn.rollback("churn").version == 1  # undoes 1 -> 2; 2 -> 3 was undone already


def test_rollback_of_the_first_move_is_a_conflict_and_records_nothing(churn: Any) -> None:
    churn.set_alias("churn", "champion", 2)
    with pytest.raises(Conflict, match="no previous version to roll back to"):
        churn.rollback("churn", "champion")
    assert moves(churn) == [("champion", "set", None, 2, None)]


def test_rollback_with_every_move_undone_is_a_conflict(churn: Any) -> None:
    churn.set_alias("churn", "champion", 2)
    churn.delete_alias("churn", "champion")
    churn.rollback("churn")  # restores 2; the only move left created the alias
    with pytest.raises(Conflict, match="no previous version"):
        churn.rollback("churn")


def test_rollback_of_an_alias_never_set_is_not_found(churn: Any) -> None:
    with pytest.raises(NotFound) as info:
        churn.rollback("churn", "champion")
    assert str(info.value) == (
        "model 'churn' has no alias 'champion'; set one with: "
        "ctloop models promote churn VERSION --alias champion --reason …"
    )
    with pytest.raises(NotFound, match="no model named 'fraud'"):
        churn.rollback("fraud", "champion")


def test_setting_an_alias_to_its_current_version_records_nothing(churn: Any) -> None:
    churn.set_alias("churn", "champion", 2, reason="go")
    churn.set_alias("churn", "champion", 2, reason="again")
    assert moves(churn) == [("champion", "set", None, 2, "go")]


def test_aliases_are_independent_and_history_covers_all_of_them(churn: Any) -> None:
    churn.set_alias("churn", "champion", 1)
    churn.set_alias("churn", "challenger", 2)
    churn.set_alias("churn", "champion", 2, reason="challenger won")
    churn.rollback("churn", "champion")
    assert churn.resolve("churn@challenger").version == 2
    assert churn.resolve("churn@champion").version == 1
    assert churn.get("churn").aliases == {"challenger": 2, "champion": 1}
    assert moves(churn, None) == [
        ("champion", "set", None, 1, None),
        ("challenger", "set", None, 2, None),
        ("champion", "set", 1, 2, "challenger won"),
        ("champion", "rollback", 2, 1, None),
    ]
    assert [e.alias for e in churn.alias_history("churn", "challenger")] == ["challenger"]


def test_events_are_never_rewritten(churn: Any) -> None:
    churn.set_alias("churn", "champion", 1, reason="first")
    first = churn.alias_history("churn")
    for version in (2, 3, 4):
        churn.set_alias("churn", "champion", version)
    churn.rollback("churn")
    churn.delete_alias("churn", "champion")
    assert churn.alias_history("churn")[: len(first)] == first


def test_latest_is_reserved_and_alias_names_are_checked(churn: Any) -> None:
    with pytest.raises(InvalidInput, match="the alias 'latest' is reserved"):
        churn.set_alias("churn", "latest", 1)
    with pytest.raises(InvalidInput, match="reserved"):
        churn.delete_alias("churn", "latest")
    for bad in ("3", "v3", "has space", "-x", "a" * 65, "", "x@y", "x/y"):
        with pytest.raises(InvalidInput, match="alias"):
            churn.set_alias("churn", bad, 1)
    assert churn.alias_history("churn") == []
    assert churn.resolve("churn@latest").version == 4


def test_setting_an_alias_to_a_missing_version_or_model(churn: Any) -> None:
    with pytest.raises(NotFound, match="model 'churn' has no version 9 \\(latest is 4\\)"):
        churn.set_alias("churn", "champion", 9)
    with pytest.raises(NotFound, match="no model named 'fraud'"):
        churn.set_alias("fraud", "champion", 1)
    with pytest.raises(InvalidInput, match="invalid model version 0"):
        churn.set_alias("churn", "champion", 0)
    with pytest.raises(NotFound, match="model 'churn' has no alias 'champion'"):
        churn.delete_alias("churn", "champion")
    assert churn.alias_history("churn") == []
