"""Checks on a skops file before and after skops builds a model from it.

Loading a ``model.skops`` goes through three gates:

1. :func:`inspect_skops` reads the file's schema into skops' node tree (which builds no
   object and imports nothing) and audits every node: its kind must be one ctloop loads
   and its name must be on ctloop's allowlist for that kind (``_sklearn_allowlist``).
   Then, for every ``Tree`` and ``TreePredictor``, it materialises only their plain
   arrays and numbers (numpy ``.npy`` data read with ``allow_pickle=False``) and checks
   every index (``_tree_bounds``). Nothing the file names is imported or built before
   the audit has passed.
2. ``skops.io.load(file, trusted=<ctloop's allowlist>)`` builds the model; skops runs its
   own audit against the same list.
3. :func:`check_model` walks the built objects and checks what only the whole model
   tells: each tree's feature indices fit the input width of the estimator that feeds it,
   gradient boosting writes only to output columns that exist, HistGradientBoosting's
   categorical nodes refer to categorical features, sparse matrices have valid indices.

Only after all three is the model handed to the caller.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ctloop.errors import InvalidInput, PermissionDenied
from ctloop.models.flavors import _tree_bounds as bounds
from ctloop.models.flavors._sklearn_allowlist import (
    TREE,
    TREE_PREDICTOR,
    Allowlist,
    allowlist,
    type_name,
)

__all__ = ["DisallowedTypes", "check_model", "inspect_skops"]

_DICTS = frozenset({"builtins.dict", "collections.OrderedDict", "sklearn.utils._bunch.Bunch"})


class DisallowedTypes(PermissionDenied):
    """The file names types outside ctloop's allowlist; ``names`` lists them."""

    def __init__(self, file: str, names: list[str]) -> None:
        super().__init__(
            f"refusing to load {file}: it holds types that are not on ctloop's allowlist of "
            f"scikit-learn, numpy and scipy types: {', '.join(names)}. ctloop never trusts a "
            "list of types taken from the file itself; if you wrote this model, log it with "
            "flavor='python' and load it with trust=True"
        )
        self.file = file
        self.names = names

    def __reduce__(self) -> tuple[type[DisallowedTypes], tuple[str, list[str]]]:
        return (type(self), (self.file, self.names))


@dataclass
class _Audit:
    disallowed: set[str] = field(default_factory=set)
    trees: list[tuple[str, Any]] = field(default_factory=list)
    predictors: list[tuple[str, Any]] = field(default_factory=list)


def _kind_names(allow: Allowlist) -> dict[str, frozenset[str] | None]:
    """Node kind → names it may carry (None: any, the content is plain JSON)."""
    import numpy as np

    return {
        "ObjectNode": allow.objects,
        "TreeNode": frozenset({TREE}),
        "LossNode": allow.losses,
        "DictNode": _DICTS,
        "DefaultDictNode": frozenset({"collections.defaultdict"}),
        "ListNode": frozenset({"builtins.list"}),
        "SetNode": frozenset({"builtins.set"}),
        "TupleNode": frozenset({"builtins.tuple"}),
        "SliceNode": frozenset({"builtins.slice"}),
        "BytesNode": frozenset({"builtins.bytes"}),
        "BytearrayNode": frozenset({"builtins.bytearray"}),
        "JsonNode": None,
        "NdArrayNode": allow.arrays,
        "MaskedArrayNode": frozenset({type_name(np.ma.MaskedArray)}),
        "DTypeNode": frozenset({"numpy.dtype"}),
        "RandomStateNode": frozenset({"numpy.random.mtrand.RandomState"}),
        "RandomGeneratorNode": allow.random,
        "SparseMatrixNode": allow.sparse,
        "TypeNode": allow.types,
        "FunctionNode": allow.functions,
        "PartialNode": frozenset({"functools.partial"}),
        "CachedNode": allow.all,
    }


def _check_zip(archive: zipfile.ZipFile, file: str) -> None:
    names = [i.filename for i in archive.infolist()]
    if len(names) != len(set(names)):
        raise InvalidInput(f"refusing to load {file}: the archive names a member twice")
    packed = [i.filename for i in archive.infolist() if i.compress_type != zipfile.ZIP_STORED]
    if packed:
        # ctloop writes skops files uncompressed, so sizes are bounded by the file's own
        # size and a compressed member (a possible zip bomb) means someone else wrote it.
        raise InvalidInput(
            f"refusing to load {file}: members {packed[:3]} are compressed; ctloop writes "
            "skops files uncompressed"
        )
    if "schema.json" not in names:
        raise InvalidInput(f"refusing to load {file}: it has no schema.json (not a skops file)")


def inspect_skops(path: Path, file: str = "model.skops") -> None:
    """Audit a skops file (kinds, names, tree arrays) without building the model.

    Raises:
        DisallowedTypes: names outside ctloop's allowlist (a PermissionDenied).
        UnsafeModelFile: a tree whose indices are out of bounds (an InvalidInput).
        InvalidInput: a malformed file.
    """
    try:
        import skops.io  # noqa: F401 - registers skops' node types
        from skops.io._audit import NODE_TYPE_MAPPING, get_tree
        from skops.io._protocol import PROTOCOL
        from skops.io._utils import read_schema
    except ImportError as exc:
        from ctloop.errors import MissingExtraError

        if exc.name == "skops":
            raise MissingExtraError("skops", "all", "scikit-learn models") from exc
        raise InvalidInput(
            f"the installed skops does not provide what ctloop audits files with ({exc}); "
            "install a supported version (see ctloop's requirements)"
        ) from exc

    allow = allowlist()
    kinds = {cls: key for (key, proto), cls in NODE_TYPE_MAPPING.items() if proto == PROTOCOL}
    try:
        with zipfile.ZipFile(path) as archive:
            _check_zip(archive, file)
            schema, context = read_schema(archive)
            root = get_tree(schema, context, trusted=sorted(allow.all))
    except (zipfile.BadZipFile, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InvalidInput(
            f"refusing to load {file}: it is not a valid skops file ({exc})"
        ) from exc
    except RecursionError:
        raise InvalidInput(f"refusing to load {file}: its schema is nested too deeply") from None

    audit = _audit(root, kinds, _kind_names(allow), allow)
    if audit.disallowed:
        raise DisallowedTypes(file, sorted(audit.disallowed))
    for where, node in audit.trees:
        _check_tree_node(f"{file}: tree {where!r}", node)
    for where, node in audit.predictors:
        _check_predictor_node(f"{file}: tree predictor {where!r}", node)


def _children(node: Any, path: str, attributes: bool) -> Iterator[tuple[Any, str, bool]]:
    """(child, path, child-is-an-attribute-dict) for every child of a skops node."""
    from skops.io._audit import Node

    for name, child in node.children.items():
        if (
            child is None
            or isinstance(child, str | type)
            or not isinstance(child, Node | list | dict)
        ):
            continue
        if isinstance(child, Node):
            if name == "attrs":
                yield child, path, True
            elif name == "key_types":
                yield child, f"{path}.<keys>", False
            else:
                yield child, path if name in ("content", "args") else f"{path}.{name}", False
        elif isinstance(child, list):
            for i, item in enumerate(child):
                yield item, f"{path}[{i}]", False
        else:
            for key, item in child.items():
                yield item, f"{path}.{key}" if attributes else f"{path}[{key!r}]", False


def _audit(
    root: Any,
    kinds: dict[type, str],
    names: dict[str, frozenset[str] | None],
    allow: Allowlist,
) -> _Audit:
    """Walk every node once (iteratively: a crafted file may nest deeply)."""
    from skops.io._audit import Node

    audit = _Audit()
    seen: set[int] = set()
    stack: list[tuple[Any, str, bool]] = [(root, "model", False)]
    while stack:
        node, path, attributes = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        kind = kinds.get(type(node))
        name = f"{node.module_name}.{node.class_name}"
        if kind is None or kind not in names:
            audit.disallowed.add(f"{name} (stored as {type(node).__name__})")
            continue
        allowed = names[kind]
        if allowed is not None and name not in allowed:
            audit.disallowed.add(name)
            continue
        if kind == "RandomGeneratorNode":
            generator = f"numpy.random.{getattr(node, 'bit_generator_name', None)}"
            if generator not in allow.bit_generators:
                audit.disallowed.add(generator)
        if kind == "TreeNode":
            audit.trees.append((path, node))
        elif kind == "ObjectNode" and name == TREE_PREDICTOR:
            audit.predictors.append((path, node))
        for child_type in node.children.values():
            if isinstance(child_type, type):
                child_name = f"{child_type.__module__}.{child_type.__name__}"
                if child_name not in allow.types:
                    audit.disallowed.add(child_name)
        for child, child_path, child_attrs in _children(node, path, attributes):
            if isinstance(child, Node):
                stack.append((child, child_path, child_attrs))
    return audit


def _build(node: Any, where: str) -> Any:
    """Build a (fully audited) subtree of plain values: arrays, numbers, dicts, tuples."""
    try:
        return node.construct()
    except (ValueError, TypeError, KeyError, AttributeError, OSError) as exc:
        raise InvalidInput(f"{where}: cannot read its arrays ({exc})") from exc


def _check_tree_node(where: str, node: Any) -> None:
    import numpy as np

    args = _build(node.args, where)
    state = _build(node.attrs, where)
    if not isinstance(args, tuple) or len(args) != 3:
        bounds.refuse(where, "its constructor arguments are not (n_features, n_classes, n_outputs)")
    n_features = bounds.as_int(args[0], "n_features", where, minimum=1)
    n_outputs = bounds.as_int(args[2], "n_outputs", where, minimum=1)
    n_classes = args[1]
    if (
        not isinstance(n_classes, np.ndarray)
        or n_classes.ndim != 1
        or n_classes.dtype.kind not in "iu"
        or len(n_classes) != n_outputs
        or (n_classes < 1).any()
    ):
        bounds.refuse(where, f"n_classes {n_classes!r} does not list {n_outputs} positive counts")
    if not isinstance(state, dict):
        bounds.refuse(where, "its state is not a dict")
    bounds.check_tree_arrays(
        where,
        state.get("nodes"),
        state.get("values"),
        node_count=bounds.as_int(state.get("node_count"), "node_count", where, minimum=1),
        n_features=n_features,
        n_outputs=n_outputs,
        max_n_classes=int(n_classes.max()),
        max_depth=bounds.as_int(state.get("max_depth"), "max_depth", where),
    )


def _check_predictor_node(where: str, node: Any) -> None:
    state = _build(node.attrs, where) if node.attrs is not None else None
    if not isinstance(state, dict):
        bounds.refuse(where, "its state is not a dict")
    bounds.check_predictor_arrays(
        where,
        state.get("nodes"),
        state.get("raw_left_cat_bitsets"),
        state.get("binned_left_cat_bitsets"),
        n_features=None,  # checked against the estimator's width in check_model
    )


# --- after skops built the model -----------------------------------------------------------


def check_model(model: Any, file: str = "model.skops") -> None:
    """Check the built model's trees against the estimators that feed them.

    Raises:
        UnsafeModelFile: an index that would leave its buffer at predict time.
    """
    import numpy as np
    import scipy.sparse
    from sklearn.tree._tree import Tree

    try:
        from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor
    except ImportError:  # pragma: no cover - every supported scikit-learn has it
        TreePredictor = ()  # noqa: N806

    seen: set[int] = set()
    stack: list[tuple[Any, str]] = [(model, "model")]
    while stack:
        obj, path = stack.pop()
        if id(obj) in seen or obj is None or isinstance(obj, str | int | float | bool | bytes):
            continue
        seen.add(id(obj))
        where = f"{file}: {path!r}"
        if isinstance(obj, Tree):
            _check_built_tree(where, obj)
            continue
        if isinstance(obj, TreePredictor):
            bounds.check_predictor_arrays(
                where, obj.nodes, obj.raw_left_cat_bitsets, obj.binned_left_cat_bitsets, None
            )
            continue
        if scipy.sparse.issparse(obj):
            _check_sparse(where, obj)
            continue
        if isinstance(obj, np.ndarray):
            if obj.dtype == object:
                stack.extend((v, f"{path}[{i}]") for i, v in enumerate(obj.ravel()))
            continue
        if isinstance(obj, dict):
            stack.extend((v, f"{path}[{k!r}]") for k, v in obj.items())
            continue
        if isinstance(obj, list | tuple | set | frozenset):
            stack.extend((v, f"{path}[{i}]") for i, v in enumerate(obj))
            continue
        attrs = getattr(obj, "__dict__", None)
        if isinstance(attrs, dict):
            _check_estimator(file, path, obj, attrs)
            stack.extend((v, f"{path}.{k}") for k, v in attrs.items())


def _check_built_tree(where: str, tree: Any) -> None:
    if not 1 <= tree.node_count <= tree.capacity:
        bounds.refuse(where, f"node_count {tree.node_count} exceeds its capacity {tree.capacity}")
    nodes, values = bounds.tree_state_arrays(tree)
    bounds.check_tree_arrays(
        where,
        nodes,
        values,
        node_count=tree.node_count,
        n_features=tree.n_features,
        n_outputs=tree.n_outputs,
        max_n_classes=tree.max_n_classes,
        max_depth=tree.max_depth,
    )


def _check_sparse(where: str, matrix: Any) -> None:
    fmt = matrix.format
    try:
        if fmt in ("csr", "csc"):
            matrix.check_format(full_check=True)
        elif fmt == "coo":
            for axis, index in enumerate(matrix.coords):
                if index.size and (index.min() < 0 or index.max() >= matrix.shape[axis]):
                    raise ValueError(f"axis {axis} index outside [0, {matrix.shape[axis]})")
        else:
            raise ValueError(f"sparse format {fmt!r} is not loaded")
    except ValueError as exc:
        bounds.refuse(where, f"invalid sparse matrix: {exc}")


def _width(where: str, value: Any, what: str) -> int:
    return bounds.as_int(value, what, where, minimum=1)


def _check_estimator(file: str, path: str, obj: Any, attrs: dict[str, Any]) -> None:
    """Cross-object checks for the estimators whose trees read their input unchecked."""
    import numpy as np
    from sklearn.tree import BaseDecisionTree
    from sklearn.tree._tree import Tree

    where = f"{file}: {path!r}"

    tree = attrs.get("tree_")
    if isinstance(tree, Tree) and "n_features_in_" in attrs:
        width = _width(where, attrs["n_features_in_"], "n_features_in_")
        if tree.n_features != width:
            bounds.refuse(
                where, f"its tree has {tree.n_features} features but the estimator takes {width}"
            )

    members = attrs.get("estimators_")
    if members is not None and "n_features_in_" in attrs:
        # not np.asarray(list): a Pipeline has __len__/__getitem__ and would be unpacked
        if isinstance(members, np.ndarray):
            flat = list(members.ravel())
        elif isinstance(members, list | tuple):
            flat = list(members)
        else:
            flat = []
        subsets = attrs.get("estimators_features_")
        width = _width(where, attrs["n_features_in_"], "n_features_in_")
        for i, member in enumerate(flat):
            if not isinstance(member, BaseDecisionTree):
                continue
            expected = width
            if subsets is not None:
                try:
                    expected = len(subsets[i])
                except (IndexError, TypeError):
                    bounds.refuse(where, f"estimators_features_ has no entry for tree {i}")
            got = getattr(member, "n_features_in_", None)
            tree_width = getattr(getattr(member, "tree_", None), "n_features", None)
            if got != expected or tree_width != expected:
                bounds.refuse(
                    f"{file}: {path + f'.estimators_[{i}]'!r}",
                    f"its tree has {tree_width} features (n_features_in_ {got}) but the "
                    f"ensemble feeds it {expected}",
                )
    _check_gradient_boosting(where, obj, attrs)
    _check_hist_gradient_boosting(where, obj, attrs)


def _check_gradient_boosting(where: str, obj: Any, attrs: dict[str, Any]) -> None:
    """GradientBoosting adds tree k of each stage into output column k, unchecked."""
    import numpy as np
    from sklearn.ensemble._gb import BaseGradientBoosting

    if not isinstance(obj, BaseGradientBoosting) or "estimators_" not in attrs:
        return
    stages = attrs["estimators_"]
    if not isinstance(stages, np.ndarray) or stages.ndim != 2:
        bounds.refuse(where, "estimators_ is not a 2-D array of trees")
    per_stage = stages.shape[1]
    columns = _width(where, attrs.get("n_trees_per_iteration_"), "n_trees_per_iteration_")
    if per_stage != columns:
        bounds.refuse(where, f"{per_stage} trees per stage but {columns} output columns")
    if per_stage > 1:
        classes = attrs.get("classes_")
        init = attrs.get("init_")
        init_classes = getattr(init, "classes_", None)
        if (
            classes is None
            or len(classes) != per_stage
            or (init != "zero" and (init_classes is None or len(init_classes) != per_stage))
        ):
            bounds.refuse(where, f"{per_stage} trees per stage do not match its classes")


def _check_hist_gradient_boosting(where: str, obj: Any, attrs: dict[str, Any]) -> None:
    """Feature and categorical-bitset indices of HistGradientBoosting predictors."""
    import numpy as np
    from sklearn.ensemble._hist_gradient_boosting.gradient_boosting import (
        BaseHistGradientBoosting,
    )

    if not isinstance(obj, BaseHistGradientBoosting) or "_predictors" not in attrs:
        return
    width = _width(where, attrs.get("n_features_in_"), "n_features_in_")
    mapper = attrs.get("_bin_mapper")
    is_categorical = getattr(mapper, "is_categorical_", None)
    if is_categorical is not None:
        is_categorical = np.asarray(is_categorical)
        if is_categorical.shape != (width,):
            bounds.refuse(
                where, f"its binner describes {is_categorical.shape} features, expected {width}"
            )
    columns = _width(where, attrs.get("n_trees_per_iteration_"), "n_trees_per_iteration_")
    for i, iteration in enumerate(attrs["_predictors"]):
        if len(iteration) > columns:
            bounds.refuse(where, f"iteration {i} has {len(iteration)} trees for {columns} outputs")
        for k, predictor in enumerate(iteration):
            here = f"{where} predictor [{i}][{k}]"
            nodes = predictor.nodes
            internal = nodes["is_leaf"] == 0
            feature = nodes["feature_idx"].astype(np.int64)
            bad = np.flatnonzero(internal & ((feature < 0) | (feature >= width)))
            if bad.size:
                n = int(bad[0])
                bounds.refuse(
                    here, f"node {n} splits on feature {feature[n]}, outside [0, {width})"
                )
            categorical = np.flatnonzero(internal & (nodes["is_categorical"] != 0))
            if categorical.size and (
                is_categorical is None or not is_categorical[feature[categorical]].all()
            ):
                bounds.refuse(
                    here, "a categorical split is on a feature the binner treats as numeric"
                )
