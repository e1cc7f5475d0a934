"""Crafted tree ensembles (consistent digests, out-of-bounds node arrays) are refused clearly.

Each forged package below has a manifest whose digests match its (tampered) files, so every
digest check passes: only ctloop's bounds checks stand between the file and scikit-learn's
unchecked tree walks. The loads run in a child process, so a crash would fail the test
instead of killing the test run.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from package_tampering import edit_skops, edit_tree_nodes, find_states, load_in_subprocess

from ctloop.artifacts.blobstore import BlobStore
from ctloop.models import write_package
from ctloop.models.flavors._tree_bounds import (
    UnsafeModelFile,
    check_node_links,
    check_predictor_arrays,
)


def _set(field: str, value: int, node: int = 0) -> Callable[[np.ndarray], None]:
    def change(nodes: np.ndarray) -> None:
        nodes[field][node] = value

    return change


def _set_json(path: Callable[[dict[str, Any]], dict[str, Any]], value: str) -> Any:
    """Edit a JSON value in the first Tree's state (unmemoised, so only this one changes)."""

    def edit(schema: dict[str, Any], members: dict[str, bytes]) -> None:
        node = path(next(find_states(schema, "Tree")))
        node["content"] = value
        node.pop("__id__", None)

    return edit


def _leaf_with_right_child(nodes: np.ndarray) -> None:
    leaf = int(np.flatnonzero(nodes["left_child"] == -1)[0])
    nodes["right_child"][leaf] = 1


def _wider_tree_than_its_estimator(schema: dict[str, Any], members: dict[str, bytes]) -> None:
    """Tree claims 50 features and splits on feature 40; the forest feeds it 12."""
    from package_tampering import read_npy, write_npy

    tree = next(find_states(schema, "Tree"))
    width = tree["__reduce__"]["args"]["content"][0]
    width["content"] = "50"
    width.pop("__id__", None)
    nodes_ref = tree["content"]["content"]["nodes"]
    nodes = read_npy(members, nodes_ref)
    nodes["feature"][0] = 40
    write_npy(members, nodes_ref, nodes)


def _categorical_split_on_missing_bitset(nodes: np.ndarray) -> None:
    nodes["is_categorical"][0] = 1
    nodes["bitset_idx"][0] = 50


# case -> (model, forgery, expected text in the error)
CASES: dict[str, tuple[str, Any, list[str]]] = {
    "left-child-out-of-range": (
        "forest",
        lambda p: edit_tree_nodes(p, _set("left_child", 10**7)),
        ["tree 'model.steps[1][1].estimators_[0].tree_'", "node 0 has left child 10000000"],
    ),
    "right-child-cycle": (
        "forest",
        lambda p: edit_tree_nodes(p, _set("right_child", 0)),
        ["node 0 has right child 0, outside [1,"],
    ),
    "feature-out-of-range": (
        "gboost",
        lambda p: edit_tree_nodes(p, _set("feature", 12)),
        ["node 0 splits on feature 12, outside [0, 12)"],
    ),
    "leaf-with-a-child": (
        "forest",
        lambda p: edit_tree_nodes(p, _leaf_with_right_child),
        ["is a leaf (left child -1) but has right child 1"],
    ),
    "node-count-larger-than-array": (
        "gboost",
        lambda p: edit_skops(p, _set_json(lambda t: t["content"]["content"]["node_count"], "999")),
        ["node_count is 999 but the node array has"],
    ),
    "shallower-max-depth": (
        "forest",
        lambda p: edit_skops(p, _set_json(lambda t: t["content"]["content"]["max_depth"], "0")),
        ["records max_depth 0"],
    ),
    "tree-wider-than-its-estimator": (
        "forest",
        lambda p: edit_skops(p, _wider_tree_than_its_estimator),
        ["'model.steps[1][1].estimators_[0]'", "has 50 features", "feeds it 12"],
    ),
    "hgb-child-out-of-range": (
        "hgb",
        lambda p: edit_tree_nodes(p, _set("left", 10**6), class_name="TreePredictor"),
        ["tree predictor 'model._predictors[0][0]'", "node 0 has left child 1000000"],
    ),
    "hgb-feature-beyond-input": (
        "hgb",
        lambda p: edit_tree_nodes(p, _set("feature_idx", 40), class_name="TreePredictor"),
        ["predictor [0][0]", "node 0 splits on feature 40, outside [0, 12)"],
    ),
    "hgb-missing-bitset": (
        "hgb",
        lambda p: edit_tree_nodes(p, _categorical_split_on_missing_bitset, "TreePredictor"),
        ["node 0 uses category bitset 50"],
    ),
}


@pytest.fixture(scope="module")
def forged(
    tmp_path_factory: pytest.TempPathFactory, fitted: dict[str, Any], churn_xy: tuple[Any, Any]
) -> dict[str, dict[str, Any]]:
    """Every forged package (and one genuine), loaded once in a child process."""
    x, _ = churn_xy
    root = tmp_path_factory.mktemp("forged")
    blobs = BlobStore(str(root / "artifacts"))
    digests = {}
    for case, (model, forge, _) in {**CASES, "genuine": ("forest", None, [])}.items():
        pkg = root / case
        write_package(fitted[model], pkg, input_example=x.head(50))
        if forge is not None:
            forge(pkg)
        digests[case] = blobs.put(pkg).digest
    results = load_in_subprocess(blobs.root, list(digests.values()))
    return {case: results[digest] for case, digest in digests.items()}


def test_the_genuine_package_loads(forged: dict[str, dict[str, Any]]) -> None:
    assert forged["genuine"]["ok"], forged["genuine"]


@pytest.mark.parametrize("case", sorted(CASES))
def test_forged_tree_is_refused_with_a_clear_error(
    case: str, forged: dict[str, dict[str, Any]]
) -> None:
    result = forged[case]
    assert not result["ok"], f"{case} loaded: {result}"
    assert result["type"] == "UnsafeModelFile", result
    for text in CASES[case][2]:
        assert text in result["message"], result["message"]
    assert "corrupted or was crafted" in result["message"]


# --- the checks themselves, on plain arrays ----------------------------------------------------


def links(pairs: list[tuple[int, int]], features: list[int]) -> tuple[np.ndarray, ...]:
    left = np.array([p[0] for p in pairs])
    right = np.array([p[1] for p in pairs])
    return left == -1, left, right, np.array(features)


def test_a_valid_tree_reports_its_depth() -> None:
    # 0 -> (1, 2); 2 -> (3, 4)
    is_leaf, left, right, feature = links(
        [(1, 2), (-1, -1), (3, 4), (-1, -1), (-1, -1)], [0, -2, 1, -2, -2]
    )
    assert check_node_links("t", is_leaf, left, right, feature, n_features=2) == 2


@pytest.mark.parametrize(
    ("pairs", "features", "message"),
    [
        ([(1, 1), (-1, -1)], [0, -2], "same node 1 as left and right child"),
        # children pointing back up the tree (a cycle) or out of the array
        (
            [(1, 2), (3, 0), (-1, -1), (-1, -1)],
            [0, 0, -2, -2],
            r"node 1 has right child 0, outside \[2, 4\)",
        ),
        (
            [(1, 2), (-1, -1), (1, 3), (-1, -1)],
            [0, -2, 0, -2],
            r"node 2 has left child 1, outside \[3, 4\)",
        ),
        ([(1, 9), (-1, -1)], [0, -2], r"node 0 has right child 9, outside \[1, 2\)"),
        ([(1, 2), (-1, -1), (-1, -1)], [-1, -2, -2], "splits on feature -1"),
        ([], [], "the tree has no nodes"),
    ],
)
def test_bad_links_are_named(
    pairs: list[tuple[int, int]], features: list[int], message: str
) -> None:
    is_leaf, left, right, feature = links(pairs, features)
    with pytest.raises(UnsafeModelFile, match=message):
        check_node_links("t", is_leaf.astype(bool), left, right, feature, n_features=2)


def test_two_parents_are_refused() -> None:
    # 0 -> (1, 2), 1 -> (2, 3): node 2 would be reached twice
    is_leaf = np.array([False, False, True, True])
    left, right = np.array([1, 2, -1, -1]), np.array([2, 3, -1, -1])
    with pytest.raises(UnsafeModelFile, match="node 2 is the child of 2 nodes"):
        check_node_links("t", is_leaf, left, right, np.array([0, 0, -2, -2]), n_features=1)


def test_predictor_bitsets_must_be_eight_words() -> None:
    from sklearn.ensemble._hist_gradient_boosting.common import PREDICTOR_RECORD_DTYPE

    nodes = np.zeros(1, dtype=PREDICTOR_RECORD_DTYPE)
    nodes["is_leaf"] = 1
    good = np.zeros((0, 8), dtype=np.uint32)
    check_predictor_arrays("p", nodes, good, good, n_features=3)
    with pytest.raises(UnsafeModelFile, match=r"raw category bitsets have shape \(0, 4\)"):
        check_predictor_arrays("p", nodes, np.zeros((0, 4), np.uint32), good, n_features=3)


def test_without_the_checks_such_a_file_crashes_at_predict(
    tmp_path: Path, fitted: dict[str, Any], churn_xy: tuple[Any, Any]
) -> None:
    """The control: skops trusting ``Tree`` builds the forged model; ``predict`` then crashes."""
    import subprocess
    import sys

    x, _ = churn_xy
    pkg = tmp_path / "forged"
    write_package(fitted["forest"], pkg)
    edit_tree_nodes(pkg, _set("left_child", 2**40))  # 64 TiB past the node array
    x.head(20).to_parquet(tmp_path / "x.parquet")
    script = (
        "import sys, pandas as pd, skops.io as sio\n"
        "model = sio.load(sys.argv[1], trusted=sio.get_untrusted_types(file=sys.argv[1]))\n"
        "model.predict(pd.read_parquet(sys.argv[2]))\n"
        "print('predicted')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, str(pkg / "model.skops"), str(tmp_path / "x.parquet")],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode != 0 and "predicted" not in proc.stdout, proc
