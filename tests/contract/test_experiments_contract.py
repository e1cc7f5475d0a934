"""``client.experiments`` behaves the same on every backend."""

from __future__ import annotations

from typing import Any

import pytest

from ctloop.errors import Conflict, InvalidInput, NotFound


def test_create_get_list(backend_client: Any) -> None:
    made = backend_client.experiments.create("churn", "monthly churn")
    assert made.name == "churn" and made.description == "monthly churn"
    assert backend_client.experiments.get("churn").id == made.id
    assert backend_client.experiments.get(made.id).name == "churn"
    again = backend_client.experiments.get_or_create("churn")
    assert again.id == made.id
    backend_client.experiments.get_or_create("fraud")
    listed = {e.name: e.run_count for e in backend_client.experiments.list()}
    assert listed == {"churn": 0, "fraud": 0}


def test_errors_are_the_same_classes_with_the_same_messages(backend_client: Any) -> None:
    backend_client.experiments.create("churn")
    with pytest.raises(Conflict, match="experiment 'churn' already exists"):
        backend_client.experiments.create("churn")
    with pytest.raises(NotFound, match="no experiment named 'ghost'"):
        backend_client.experiments.get("ghost")
    with pytest.raises(InvalidInput, match="invalid experiment name"):
        backend_client.experiments.create("../x")
