"""Bounds checks for the tree structures in a model loaded from an untrusted skops file.

scikit-learn walks a fitted tree by the indices stored in it (children, split columns,
category bitsets, sample indices) without bounds checks, so a file with out-of-range
indices loads fine and then crashes the process, or reads outside its memory, at the
first ``predict``. That is why skops leaves ``sklearn.tree._tree.Tree`` and
HistGradientBoosting's ``TreePredictor`` out of its trusted defaults; the KD and ball
trees of nearest-neighbour models have the same weakness. modelyard trusts all of them so
that forests, gradient boosting and KNN load without hand listing, and checks here, once
after loading, what scikit-learn assumes: every child lies inside the tree (and, for
decision trees, after its parent, so walks end), every split reads a column the input has,
every categorical split reads a bitset that exists, every sample index points into the
training data. A fitted model always passes; the checks are vectorised (NumPy).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from modelyard.errors import PermissionDenied

_LEAF = -1  # sklearn.tree._tree.TREE_LEAF
_BITSET_WORDS = 8  # 256 categories as 8 uint32 words (HistGradientBoosting)


def check_fitted_trees(model: Any) -> None:
    """Raise ``PermissionDenied`` if any tree in ``model`` could be walked out of bounds."""
    from sklearn.ensemble._bagging import BaseBagging
    from sklearn.ensemble._forest import BaseForest
    from sklearn.ensemble._gb import BaseGradientBoosting
    from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor
    from sklearn.neighbors import BallTree, KDTree
    from sklearn.tree._tree import Tree

    # Ensembles that pass their own (checked) input to members' trees unchecked. Others
    # (AdaBoost, voting, stacking, chains) call members' predict, which checks its input.
    ensembles = (BaseForest, BaseGradientBoosting, BaseBagging)
    checked: set[int] = set()
    for obj in _objects(model):
        width = getattr(obj, "n_features_in_", None)
        tree = obj.__dict__.get("tree_") if hasattr(obj, "__dict__") else None
        if isinstance(tree, Tree):
            _check_tree(tree, int(width) if width is not None else None)
            checked.add(id(tree))
        if width is not None and isinstance(obj, ensembles):
            _check_members(obj, int(width))
        predictors = getattr(obj, "__dict__", {}).get("_predictors")
        if width is not None and predictors is not None:
            categorical = getattr(getattr(obj, "_bin_mapper", None), "is_categorical_", None)
            for predictor in _objects(predictors):
                if isinstance(predictor, TreePredictor):
                    _check_predictor(predictor, int(width), categorical)
                    checked.add(id(predictor))
    for obj in _objects(model):  # anywhere else: consistent with itself at least
        if isinstance(obj, Tree) and id(obj) not in checked:
            _check_tree(obj, None)
        elif isinstance(obj, TreePredictor) and id(obj) not in checked:
            _refuse("a TreePredictor outside a HistGradientBoosting model")
        elif isinstance(obj, (KDTree, BallTree)):
            _check_neighbors_tree(obj, 2 if isinstance(obj, KDTree) else 1)


def _objects(root: Any) -> Iterator[Any]:
    """Every object reachable from ``root`` through scikit-learn objects' attributes,
    containers and object arrays (each once)."""
    seen: set[int] = set()
    stack = [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, (str, bytes, int, float, bool, type(None))):
            continue
        seen.add(id(obj))
        yield obj
        if isinstance(obj, dict):
            stack.extend(obj.values())
        elif isinstance(obj, (list, tuple, set, frozenset)):
            stack.extend(obj)
        elif isinstance(obj, np.ndarray):
            if obj.dtype == object:
                stack.extend(obj.ravel().tolist())
        elif type(obj).__module__.startswith("sklearn") and hasattr(obj, "__dict__"):
            stack.extend(vars(obj).values())


def _check_members(ensemble: Any, width: int) -> None:
    """Members of a forest, gradient boosting or bagging model see its columns (or the
    subset it records for each)."""
    members = getattr(ensemble, "estimators_", None)
    # gradient boosting: an array (iterations x classes); the others: a list
    members = members.ravel().tolist() if isinstance(members, np.ndarray) else list(members or ())
    subsets = getattr(ensemble, "estimators_features_", None)
    if subsets is not None and len(subsets) != len(members):
        _refuse(f"{type(ensemble).__name__} records columns for {len(subsets)} members")
    for i, member in enumerate(members):
        expected = width if subsets is None else len(subsets[i])
        got = getattr(member, "n_features_in_", expected)
        tree = getattr(member, "tree_", None)
        if tree is not None and (got != expected or tree.n_features != expected):
            _refuse(
                f"member {i} of {type(ensemble).__name__} reads {got} columns, "
                f"not the {expected} it is given"
            )


def _check_tree(tree: Any, width: int | None) -> None:
    n = int(tree.node_count)
    if not 0 < n <= int(tree.capacity):
        _refuse(f"a tree has {n} nodes for room for {tree.capacity}")
    if width is not None and int(tree.n_features) != width:
        _refuse(f"a tree reads {tree.n_features} columns but its estimator has {width}")
    left, right, feature = tree.children_left, tree.children_right, tree.feature
    split = left != _LEAF
    ids = np.arange(n)
    if np.any(split != (right != _LEAF)):
        _refuse("a tree node has one child")
    if split.any():
        kids = np.concatenate([left[split], right[split]])
        parents = np.concatenate([ids[split], ids[split]])
        if np.any(kids <= parents) or np.any(kids >= n):
            _refuse("a tree node points before itself or outside the tree")
        used = feature[split]
        if np.any(used < 0) or np.any(used >= int(tree.n_features)):
            _refuse("a tree splits on a column its input does not have")


def _check_predictor(predictor: Any, width: int, categorical: Any) -> None:
    from sklearn.ensemble._hist_gradient_boosting.common import PREDICTOR_RECORD_DTYPE

    nodes = predictor.nodes
    if not isinstance(nodes, np.ndarray) or nodes.dtype != PREDICTOR_RECORD_DTYPE:
        _refuse("a TreePredictor's nodes have an unexpected layout")
    if nodes.ndim != 1 or nodes.shape[0] == 0:
        _refuse("a TreePredictor has no nodes")
    n = nodes.shape[0]
    split = nodes["is_leaf"] == 0
    ids = np.arange(n)[split]
    left, right = nodes["left"][split].astype(np.int64), nodes["right"][split].astype(np.int64)
    if np.any(left <= ids) or np.any(right <= ids) or np.any(left >= n) or np.any(right >= n):
        _refuse("a TreePredictor node points before itself or outside the tree")
    feature = nodes["feature_idx"][split].astype(np.int64)
    if np.any(feature < 0) or np.any(feature >= width):
        _refuse("a TreePredictor splits on a column its input does not have")
    cat = nodes["is_categorical"][split] != 0
    if not cat.any():
        return
    bitsets = [predictor.raw_left_cat_bitsets, predictor.binned_left_cat_bitsets]
    rows = min(b.shape[0] for b in bitsets)
    if any(b.ndim != 2 or b.shape[1] != _BITSET_WORDS for b in bitsets):
        _refuse("a TreePredictor's category bitsets have an unexpected shape")
    if np.any(nodes["bitset_idx"][split][cat].astype(np.int64) >= rows):
        _refuse("a TreePredictor's categorical split reads a bitset that does not exist")
    known = np.asarray(categorical if categorical is not None else np.zeros(width, bool))
    if known.shape != (width,) or not known[feature[cat]].all():
        _refuse("a TreePredictor splits a column as categorical that is not categorical")


def _check_neighbors_tree(tree: Any, bounds_rows: int) -> None:
    """A KD or ball tree: node ``i``'s children are ``2i+1`` and ``2i+2``; a node holds
    the samples ``idx_array[idx_start:idx_end]`` of ``data``."""
    data, idx, nodes, bounds, _, levels, count, *_, weight = tree.__getstate__()
    if not all(isinstance(a, np.ndarray) for a in (data, idx, nodes, bounds)) or data.ndim != 2:
        _refuse("a neighbour tree's arrays have an unexpected layout")
    n_samples, n_features = data.shape
    n = nodes.shape[0]
    if (
        nodes.ndim != 1
        or not {"idx_start", "idx_end", "is_leaf"} <= set(nodes.dtype.names or ())
        or count != n
        or n != 2 ** int(levels) - 1
        or bounds.shape != (bounds_rows, n, n_features)
        or idx.shape != (n_samples,)
        or (weight is not None and np.shape(weight) != (n_samples,))
    ):
        _refuse("a neighbour tree's arrays do not match its node count or its data")
    if n_samples and (idx.min() < 0 or idx.max() >= n_samples):
        _refuse("a neighbour tree points at a sample it does not hold")
    start, end = nodes["idx_start"], nodes["idx_end"]
    if np.any(start < 0) or np.any(start > end) or np.any(end > n_samples):
        _refuse("a neighbour tree node holds samples outside the data")
    inner = np.flatnonzero(nodes["is_leaf"] == 0)
    if inner.size and 2 * int(inner.max()) + 2 >= n:
        _refuse("a neighbour tree node points outside the tree")


def _refuse(why: str) -> None:
    raise PermissionDenied(
        f"the model file's tree structure is out of bounds ({why}): scikit-learn would read "
        "outside the model's memory when predicting. A model fitted by scikit-learn never "
        "looks like this; load it with trusted=True only if you made the file yourself",
        field="trusted",
    )
