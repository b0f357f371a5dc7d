"""Tree structures from an untrusted file are bounds-checked before anything predicts.

Each model here was fitted, then had its tree state edited the way a crafted file would
have it; scikit-learn itself accepts every one of them and would read out of bounds (or
crash the process) at the first ``predict``. They are refused at load instead.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from modelyard.errors import PermissionDenied
from modelyard.registry.formats.fitted_trees import check_fitted_trees
from modelyard.registry.formats.flavors import load_model, save_model


@pytest.fixture(scope="module")
def xy() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(5)
    X = rng.random((80, 3))
    return X, X[:, 0] + rng.normal(scale=0.1, size=80)


def edited_tree(tree: Any, edit: Callable[[np.ndarray], None]) -> Any:
    """A copy of ``tree`` whose node array went through ``edit`` (as a file could have it)."""
    make, args, state = tree.__reduce__()
    nodes = state["nodes"].copy()
    edit(nodes)
    copy = make(*args)
    copy.__setstate__({**state, "nodes": nodes})
    return copy


TREE_EDITS = {
    "a child outside the tree": lambda n: n["left_child"].__setitem__(0, 10**6),
    "a child pointing back to the root": lambda n: n["right_child"].__setitem__(0, 0),
    "a node with one child": lambda n: n["right_child"].__setitem__(0, -1),
    "a split on a missing column": lambda n: n["feature"].__setitem__(0, 10**6),
    "a negative column": lambda n: n["feature"].__setitem__(0, -3),
}


@pytest.mark.parametrize("edit", TREE_EDITS)
def test_a_decision_tree_walking_out_of_bounds_is_refused(edit, xy, tmp_path):
    from sklearn.tree import DecisionTreeRegressor

    X, y = xy
    model = DecisionTreeRegressor(max_depth=3).fit(X, y)
    model.tree_ = edited_tree(model.tree_, TREE_EDITS[edit])
    save_model(model, tmp_path / "m")

    with pytest.raises(PermissionDenied, match="out of bounds") as caught:
        load_model(tmp_path / "m")
    assert caught.value.field == "trusted"


def test_a_forest_member_in_a_gradient_boosting_model_is_checked_too(xy, tmp_path):
    from sklearn.ensemble import GradientBoostingRegressor

    X, y = xy
    model = GradientBoostingRegressor(n_estimators=3, max_depth=2).fit(X, y)
    member = model.estimators_[2, 0]
    member.tree_ = edited_tree(member.tree_, TREE_EDITS["a split on a missing column"])
    save_model(model, tmp_path / "m")

    with pytest.raises(PermissionDenied, match="out of bounds"):
        load_model(tmp_path / "m")


def test_a_forest_member_reading_more_columns_than_the_forest_is_refused(xy):
    from sklearn.ensemble import RandomForestRegressor

    X, y = xy
    model = RandomForestRegressor(n_estimators=2, max_depth=2).fit(X, y)
    model.estimators_[1].n_features_in_ = 30

    with pytest.raises(PermissionDenied, match="member 1 of RandomForestRegressor"):
        check_fitted_trees(model)


def test_a_tree_wider_than_its_estimator_is_refused(xy, tmp_path):
    """Edited in ``schema.json`` itself: the tree's own column count, which bounds its
    splits, must be the columns its estimator checks the input against."""
    from sklearn.tree import DecisionTreeRegressor

    X, y = xy
    save_model(DecisionTreeRegressor(max_depth=2).fit(X, y), tmp_path / "m")
    path = tmp_path / "m" / "model.skops"
    with zipfile.ZipFile(path) as zf:
        files = {name: zf.read(name) for name in zf.namelist()}
    schema = json.loads(files["schema.json"])
    args = schema["content"]["content"]["tree_"]["__reduce__"]["args"]["content"]
    args[0] = {**args[0], "content": "50"}
    del args[0]["__id__"]  # skops would reuse the object of an equal int
    files["schema.json"] = json.dumps(schema).encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    path.write_bytes(buffer.getvalue())

    with pytest.raises(PermissionDenied, match="reads 50 columns but its estimator has 3"):
        load_model(tmp_path / "m")


PREDICTOR_EDITS = {
    "a child outside the tree": lambda n, i: n["left"].__setitem__(i, 10**6),
    "a child pointing back": lambda n, i: n["right"].__setitem__(i, 0),
    "a split on a missing column": lambda n, i: n["feature_idx"].__setitem__(i, 10**4),
    "a categorical split on a numeric column": lambda n, i: n["is_categorical"].__setitem__(i, 1),
}


@pytest.mark.parametrize("edit", PREDICTOR_EDITS)
def test_a_hist_gradient_boosting_tree_walking_out_of_bounds_is_refused(edit, xy, tmp_path):
    from sklearn.ensemble import HistGradientBoostingRegressor

    X, y = xy
    model = HistGradientBoostingRegressor(max_iter=3, max_depth=3).fit(X, y)
    nodes = model._predictors[1][0].nodes
    PREDICTOR_EDITS[edit](nodes, int(np.flatnonzero(nodes["is_leaf"] == 0)[0]))
    save_model(model, tmp_path / "m")

    with pytest.raises(PermissionDenied, match="out of bounds"):
        load_model(tmp_path / "m")


def test_trusted_skips_the_checks_and_fitted_models_pass_them(xy, tmp_path):
    from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor

    X, y = xy
    forest = RandomForestRegressor(n_estimators=3).fit(X, y)
    check_fitted_trees(forest)
    check_fitted_trees(HistGradientBoostingRegressor(max_iter=3).fit(X, y))

    forest.estimators_[0].n_features_in_ = 30  # harmless here: predict is never called
    save_model(forest, tmp_path / "m")
    assert load_model(tmp_path / "m", trusted=True).native.n_estimators == 3


def edited_neighbors_tree(tree: Any, edit: Callable[[list[Any]], None]) -> Any:
    make, args, state = tree.__reduce__()
    state = [s.copy() if isinstance(s, np.ndarray) else s for s in state]
    edit(state)
    copy = make(*args)
    copy.__setstate__(tuple(state))
    return copy


NEIGHBORS_EDITS = {
    "a sample index outside the data": lambda s: s[1].__setitem__(0, 10**9),
    "a node holding samples past the end": lambda s: s[2]["idx_end"].__setitem__(0, 10**6),
    "a leaf turned into a split": lambda s: s[2]["is_leaf"].__setitem__(-1, 0),
    "bounds for fewer nodes": lambda s: s.__setitem__(3, np.ascontiguousarray(s[3][:, :1])),
    "more nodes than stored": lambda s: s.__setitem__(6, 1023),
}


@pytest.mark.parametrize("algorithm", ["kd_tree", "ball_tree"])
@pytest.mark.parametrize("edit", NEIGHBORS_EDITS)
def test_a_nearest_neighbour_tree_walking_out_of_bounds_is_refused(edit, algorithm, xy, tmp_path):
    from sklearn.neighbors import KNeighborsRegressor

    X, y = xy
    model = KNeighborsRegressor(algorithm=algorithm, leaf_size=5).fit(X, y)
    model._tree = edited_neighbors_tree(model._tree, NEIGHBORS_EDITS[edit])
    save_model(model, tmp_path / "m")

    with pytest.raises(PermissionDenied, match="out of bounds"):
        load_model(tmp_path / "m")


def test_members_that_check_their_own_input_may_be_wider(xy, tmp_path):
    """A chain's members read the input plus earlier predictions: genuinely wider."""
    from sklearn.ensemble import AdaBoostRegressor
    from sklearn.multioutput import RegressorChain
    from sklearn.tree import DecisionTreeRegressor

    X, y = xy
    chain = RegressorChain(AdaBoostRegressor(DecisionTreeRegressor(max_depth=2), n_estimators=2))
    chain.fit(X, np.column_stack([y, 2 * y, -y]))
    save_model(chain, tmp_path / "m")

    np.testing.assert_allclose(load_model(tmp_path / "m").predict(X), chain.predict(X))


def test_bagging_members_must_read_the_columns_recorded_for_them(xy):
    from sklearn.ensemble import BaggingRegressor, IsolationForest

    X, y = xy
    bagging = BaggingRegressor(n_estimators=2, max_features=2).fit(X, y)
    check_fitted_trees(bagging)
    check_fitted_trees(IsolationForest(n_estimators=2).fit(X))

    bagging.estimators_features_[0] = bagging.estimators_features_[0][:1]
    with pytest.raises(PermissionDenied, match="member 0 of BaggingRegressor reads 2 columns"):
        check_fitted_trees(bagging)
    bagging.estimators_features_ = bagging.estimators_features_[:1]
    with pytest.raises(PermissionDenied, match="columns for 1 members"):
        check_fitted_trees(bagging)
