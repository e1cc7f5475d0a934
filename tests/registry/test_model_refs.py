"""Model references: NAME/V, NAME@ALIAS, NAME, runs:/RUN_ID/PATH — and their errors."""

from __future__ import annotations

import pytest

from ctloop.errors import InvalidInput
from ctloop.registry.refs import ModelRef, check_alias, parse_model_ref


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("churn", ModelRef(name="churn")),
        ("churn@latest", ModelRef(name="churn")),
        ("churn/latest", ModelRef(name="churn")),
        ("churn/3", ModelRef(name="churn", version=3)),
        ("churn@3", ModelRef(name="churn", version=3)),
        ("churn@champion", ModelRef(name="churn", alias="champion")),
        ("my.model-v2_x/12", ModelRef(name="my.model-v2_x", version=12)),
        ("models:/churn/2", ModelRef(name="churn", version=2)),
        ("models:/churn@challenger", ModelRef(name="churn", alias="challenger")),
        ("runs:/0123abcd/model", ModelRef(run_id="0123abcd", artifact_path="model")),
        ("runs:/0123abcd/sub/./model", ModelRef(run_id="0123abcd", artifact_path="sub/model")),
    ],
)
def test_references_parse(text: str, expected: ModelRef) -> None:
    assert parse_model_ref(text) == expected


def test_references_print_in_their_canonical_form() -> None:
    assert [str(parse_model_ref(t)) for t in ("churn", "churn@3", "churn@champion")] == [
        "churn@latest",
        "churn/3",
        "churn@champion",
    ]
    assert str(parse_model_ref("runs:/abc/model")) == "runs:/abc/model"
    assert parse_model_ref(("churn", 4)) == ModelRef(name="churn", version=4)
    assert parse_model_ref("churn").is_latest and not parse_model_ref("churn/1").is_latest
    assert parse_model_ref("runs:/abc/model").is_run


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("", "it is empty or not a string"),
        (None, "it is empty or not a string"),
        (3, "it is empty or not a string"),
        ("churn/", "the version after '/' must be a whole number from 1, not ''"),
        ("churn/x", "the version after '/' must be a whole number from 1, not 'x'"),
        ("churn/0", "not '0'"),
        ("churn/-1", "not '-1'"),
        ("churn/1/2", "not '1/2'"),
        ("churn@", "it has no alias after '@'"),
        ("churn@v3", "'v3' is not an alias; name version 3 as churn/3"),
        ("churn@bad alias", "'bad alias' is not a valid alias name"),
        ("@champion", "it has no model name"),
        ("/3", "it has no model name"),
        ("bad name", "invalid model name 'bad name'"),
        ("runs:/", "'' is not a run id"),
        ("runs:/abc", "it names no artifact after the run id"),
        ("runs:/abc/", "it names no artifact after the run id"),
        ("runs:/abc/../etc", "'..' is not allowed"),
        ("runs://abs/model", "'' is not a run id"),
        (("churn", 0), "versions count from 1, not 0"),
        (("churn", "3"), "a pair must be (NAME, VERSION)"),
    ],
)
def test_malformed_references_name_the_value_and_the_forms(value: object, why: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_model_ref(value)
    message = str(info.value)
    assert message.startswith(f"invalid model reference {value!r}: ")
    assert why in message
    assert message.endswith(
        "use NAME/VERSION, NAME@ALIAS, NAME (the latest version) or runs:/RUN_ID/PATH"
    )


@pytest.mark.parametrize("alias", ["champion", "challenger", "Shadow-2", "a", "x_" + "y" * 62])
def test_valid_aliases(alias: str) -> None:
    assert check_alias(alias) == alias


@pytest.mark.parametrize(
    ("alias", "why"),
    [
        ("latest", "is reserved"),
        ("LATEST", "is reserved"),
        ("7", "use 1-64 letters"),
        ("v7", "looks like a version number"),
        ("V12", "looks like a version number"),
        ("_x", "use 1-64 letters"),
        ("a.b", "use 1-64 letters"),
        ("a" * 65, "use 1-64 letters"),
        (None, "use 1-64 letters"),
    ],
)
def test_invalid_aliases(alias: object, why: str) -> None:
    with pytest.raises(InvalidInput, match=why):
        check_alias(alias)
