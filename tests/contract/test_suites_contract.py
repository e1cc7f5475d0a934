"""Validation suites attached to dataset versions behave the same on every backend."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from ctloop._internal.environment import current_user
from ctloop.errors import InvalidInput, NotFound
from ctloop.validation import Suite, SuiteRecord, infer_suite, load_frame, validate

EDITED = """\
# my own notes survive the round trip
ctloop_suite: 1
name: orders
columns:
  qty:
    dtype: int64
    range: {min: 0, max: 5, severity: warn}
"""


def _add(client: Any, tmp_path: Path, rows: list[int], name: str = "orders") -> Any:
    data = tmp_path / "orders.csv"
    pd.DataFrame({"qty": rows, "sku": ["a", "b"] * (len(rows) // 2)}).to_csv(data, index=False)
    return client.datasets.add(data, name, pointer=False)


def test_attach_get_and_list_suites(backend_client: Any, tmp_path: Path) -> None:
    v1 = _add(backend_client, tmp_path, [1, 2, 3, 4])
    v2 = _add(backend_client, tmp_path, [1, 2, 3, 40])
    assert backend_client.datasets.suites("orders@1") == []

    inferred = infer_suite(v1, client=backend_client)
    assert inferred.inferred_from == "orders@1" and inferred.name == "orders"
    record = backend_client.datasets.attach_suite("orders@1", inferred)
    assert isinstance(record, SuiteRecord)
    assert (record.dataset, record.name) == ("orders@1", "default")
    assert record.dataset_version_id == v1.id
    assert record.digest == hashlib.sha256(inferred.to_yaml().encode()).hexdigest()
    assert record.created_by == current_user()

    got = backend_client.datasets.get_suite("orders@1")
    assert got == inferred
    assert backend_client.datasets.get_suite(v1) == inferred  # a DatasetVersion works too

    edited = Suite.from_yaml(EDITED)
    other = backend_client.datasets.attach_suite(v1, edited, "hand-made", created_by="ana")
    assert other.created_by == "ana"
    kept = backend_client.datasets.get_suite("orders@1", "hand-made")
    assert kept.to_yaml() == EDITED  # the user's comments and layout are what is stored
    assert [r.name for r in backend_client.datasets.suites(v1)] == ["default", "hand-made"]
    assert backend_client.datasets.suites("orders@2") == []

    # attaching under a taken name replaces that link only
    backend_client.datasets.attach_suite("orders@1", edited)
    assert backend_client.datasets.get_suite("orders@1") == edited
    (default,) = [r for r in backend_client.datasets.suites("orders@1") if r.name == "default"]
    assert default.digest == other.digest

    # the attached suite validates the data of a version, read back from the store
    frame = load_frame(backend_client, "orders@2")
    assert frame["qty"].tolist() == [1, 2, 3, 40]
    report = validate(frame, backend_client.datasets.get_suite("orders@1", "hand-made"))
    assert report.success and [r.check for r in report.warnings] == ["qty.range"]
    assert v2.version == 2


def test_latest_resolves_and_errors_say_what_to_do(backend_client: Any, tmp_path: Path) -> None:
    _add(backend_client, tmp_path, [1, 2])
    suite = Suite.from_yaml(EDITED)
    record = backend_client.datasets.attach_suite("orders", suite)
    assert record.dataset == "orders@1"
    assert backend_client.datasets.get_suite("orders@latest") == suite

    with pytest.raises(NotFound) as missing:
        backend_client.datasets.get_suite("orders@1", "strict")
    message = str(missing.value)
    assert "has no validation suite named 'strict'" in message
    assert "'default'" in message and "ctloop data suite orders@1 --attach --name strict" in message
    with pytest.raises(NotFound, match="no dataset named 'nope'"):
        backend_client.datasets.attach_suite("nope@1", suite)
    with pytest.raises(NotFound, match="has no version 9"):
        backend_client.datasets.suites("orders@9")
    with pytest.raises(InvalidInput, match="invalid suite name"):
        backend_client.datasets.attach_suite("orders@1", suite, "bad name!")
    with pytest.raises(InvalidInput, match="needs a ctloop.validation.Suite"):
        backend_client.datasets.attach_suite("orders@1", EDITED)
