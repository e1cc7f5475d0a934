"""Bounds checks on the node arrays of scikit-learn's trees.

scikit-learn's compiled tree code follows ``left``/``right`` child indices and reads
``X[row, feature]`` without bounds checks (it is built with ``boundscheck=False``). A model
file whose indices point outside the node array, or at a feature the input does not have,
makes ``predict`` read (or, through the output index of gradient boosting, write) outside
its buffers: a crash of the serving process at best. These checks prove, before the model
is used, that every walk from the root stays inside the arrays and ends at a leaf:

- children of an internal node lie strictly after it and inside the node array, so every
  walk moves forward and stops (no cycles), and no node has two parents;
- features of internal nodes lie inside ``[0, n_features)``; leaves carry no feature;
- the categorical bitsets a HistGradientBoosting node points at exist and are 8 words wide;
- the tree is no deeper than its recorded ``max_depth`` (``decision_path`` sizes a buffer
  by it).

scikit-learn's builders number children after their parents (nodes are appended as the
tree grows), so genuine models always pass.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NoReturn

from ctloop.errors import InvalidInput

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "UnsafeModelFile",
    "check_node_links",
    "check_predictor_arrays",
    "check_tree_arrays",
    "refuse",
]

TREE_LEAF = -1  # sklearn.tree._tree.TREE_LEAF
TREE_UNDEFINED = -2  # sklearn.tree._tree.TREE_UNDEFINED (the feature of a leaf)
BITSET_WORDS = 8  # HistGradientBoosting bitsets: 8 x uint32 = 256 categories
TREE_FIELDS = ("left_child", "right_child", "feature", "threshold", "missing_go_to_left")
PREDICTOR_FIELDS = ("left", "right", "feature_idx", "is_leaf", "is_categorical", "bitset_idx")
SHOWN = 3  # offending nodes quoted per problem


class UnsafeModelFile(InvalidInput):
    """A model file whose content would make its library read or write out of bounds."""


def refuse(where: str, what: str) -> NoReturn:
    """Raise :class:`UnsafeModelFile` for ``where`` saying ``what`` is wrong."""
    raise UnsafeModelFile(
        f"{where}: {what}; refusing to load a model whose arrays would make scikit-learn "
        "read outside its memory (the file is corrupted or was crafted)"
    )


def _report(where: str, bad: np.ndarray, describe: Any) -> None:
    import numpy as np

    hits = np.flatnonzero(bad)
    if hits.size:
        shown = "; ".join(describe(int(i)) for i in hits[:SHOWN])
        more = f" (and {hits.size - SHOWN} more)" if hits.size > SHOWN else ""
        refuse(where, shown + more)


def as_int(value: Any, what: str, where: str, minimum: int = 0) -> int:
    """An int from a JSON or numpy integer (bools and floats refused)."""
    import numpy as np

    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        refuse(where, f"{what} is {value!r}, not an integer")
    number = int(value)
    if number < minimum:
        refuse(where, f"{what} is {number}, below {minimum}")
    return number


def check_node_links(
    where: str,
    is_leaf: np.ndarray,
    left: np.ndarray,
    right: np.ndarray,
    feature: np.ndarray,
    n_features: int | None,
) -> int:
    """Check children and features of every internal node; returns the tree's depth.

    ``n_features=None`` checks only that features are not negative (the upper bound is
    then checked against the owning estimator's input width).
    """
    import numpy as np

    n = len(is_leaf)
    if n < 1:
        refuse(where, "the tree has no nodes")
    idx = np.arange(n, dtype=np.int64)
    internal = ~is_leaf
    _report(
        where,
        internal & ((left <= idx) | (left >= n)),
        lambda i: f"node {i} has left child {left[i]}, outside [{i + 1}, {n})",
    )
    _report(
        where,
        internal & ((right <= idx) | (right >= n)),
        lambda i: f"node {i} has right child {right[i]}, outside [{i + 1}, {n})",
    )
    _report(
        where,
        internal & (left == right),
        lambda i: f"node {i} has the same node {left[i]} as left and right child",
    )
    upper = n_features if n_features is not None else np.iinfo(np.int64).max
    shown_upper = f", {n_features})" if n_features is not None else ", ∞)"
    _report(
        where,
        internal & ((feature < 0) | (feature >= upper)),
        lambda i: f"node {i} splits on feature {feature[i]}, outside [0{shown_upper}",
    )
    children = np.concatenate([left[internal], right[internal]])
    parents = np.bincount(children, minlength=n) if children.size else np.zeros(n, np.int64)
    _report(where, parents > 1, lambda i: f"node {i} is the child of {parents[i]} nodes")
    # Level by level from the root: children lie after parents and have one parent each,
    # so this visits every reachable node once and ends.
    depth, frontier = 0, np.array([0], dtype=np.int64)
    while True:
        inner = frontier[internal[frontier]]
        if inner.size == 0:
            return depth
        frontier = np.concatenate([left[inner], right[inner]])
        depth += 1


def check_tree_arrays(
    where: str,
    nodes: Any,
    values: Any,
    *,
    node_count: int,
    n_features: int,
    n_outputs: int,
    max_n_classes: int,
    max_depth: int,
) -> None:
    """Check a ``sklearn.tree._tree.Tree``'s state: node and value arrays, indices, depth."""
    import numpy as np

    if not isinstance(nodes, np.ndarray) or nodes.ndim != 1 or nodes.dtype.names is None:
        refuse(where, "its nodes are not a 1-D structured array")
    missing = [f for f in TREE_FIELDS if f not in (nodes.dtype.names or ())]
    if missing:
        refuse(where, f"its node array lacks the fields {missing}")
    if len(nodes) != node_count:
        refuse(where, f"node_count is {node_count} but the node array has {len(nodes)} rows")
    if not isinstance(values, np.ndarray) or values.shape != (
        node_count,
        n_outputs,
        max_n_classes,
    ):
        shape = getattr(values, "shape", type(values).__name__)
        refuse(
            where,
            f"its value array has shape {shape}, expected "
            f"({node_count}, {n_outputs}, {max_n_classes})",
        )
    left = nodes["left_child"].astype(np.int64)
    right = nodes["right_child"].astype(np.int64)
    feature = nodes["feature"].astype(np.int64)
    is_leaf = left == TREE_LEAF
    _report(
        where,
        is_leaf & (right != TREE_LEAF),
        lambda i: f"node {i} is a leaf (left child -1) but has right child {right[i]}",
    )
    _report(
        where,
        is_leaf & (feature != TREE_UNDEFINED),
        lambda i: f"leaf node {i} names feature {feature[i]} (leaves have -2)",
    )
    depth = check_node_links(where, is_leaf, left, right, feature, n_features)
    if depth > max_depth:
        refuse(where, f"the tree is {depth} levels deep but records max_depth {max_depth}")


def check_predictor_arrays(
    where: str, nodes: Any, raw_bitsets: Any, binned_bitsets: Any, n_features: int | None
) -> None:
    """Check a HistGradientBoosting ``TreePredictor``: nodes, children, bitset indices."""
    import numpy as np

    if not isinstance(nodes, np.ndarray) or nodes.ndim != 1 or nodes.dtype.names is None:
        refuse(where, "its nodes are not a 1-D structured array")
    missing = [f for f in PREDICTOR_FIELDS if f not in (nodes.dtype.names or ())]
    if missing:
        refuse(where, f"its node array lacks the fields {missing}")
    rows = []
    for name, bitsets in (("raw", raw_bitsets), ("binned", binned_bitsets)):
        if (
            not isinstance(bitsets, np.ndarray)
            or bitsets.ndim != 2
            or bitsets.shape[1] != BITSET_WORDS
            or bitsets.dtype != np.uint32
        ):
            shape = getattr(bitsets, "shape", type(bitsets).__name__)
            refuse(
                where,
                f"its {name} category bitsets have shape {shape}, expected (n, {BITSET_WORDS}) "
                "uint32",
            )
        rows.append(bitsets.shape[0])
    left = nodes["left"].astype(np.int64)
    right = nodes["right"].astype(np.int64)
    feature = nodes["feature_idx"].astype(np.int64)
    is_leaf = nodes["is_leaf"] != 0
    check_node_links(where, is_leaf, left, right, feature, n_features)
    bitset = nodes["bitset_idx"].astype(np.int64)
    categorical = ~is_leaf & (nodes["is_categorical"] != 0)
    _report(
        where,
        categorical & (bitset >= min(rows)),
        lambda i: f"node {i} uses category bitset {bitset[i]}, outside [0, {min(rows)})",
    )


def tree_state_arrays(tree: Any) -> tuple[np.ndarray, np.ndarray]:
    """The node and value arrays of a built ``Tree``, read within its allocation."""
    state = tree.__getstate__()
    return state["nodes"], state["values"]
