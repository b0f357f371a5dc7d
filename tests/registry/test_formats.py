"""Models round-trip through their native, safe formats; pickle needs an explicit opt-in."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from modelyard.errors import InvalidParameter, NotFound, PermissionDenied
from modelyard.registry.formats.flavors import (
    MANIFEST_FILE,
    infer_flavor,
    load_model,
    read_manifest,
    save_model,
)
from modelyard.registry.formats.python_model import PythonModel
from modelyard.registry.formats.signature import infer_signature


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(3)
    X = pd.DataFrame({"price": rng.random(120), "visits": rng.random(120), "age": rng.random(120)})
    return X, (X["price"] + 0.2 * X["visits"] > 0.6).astype(int)


def shout(values):  # a user's own function: not a type skops may trust by default
    return values


def test_a_gradient_boosting_model_loads_without_listing_its_types(data, tmp_path):
    from sklearn.ensemble import HistGradientBoostingClassifier

    X, y = data
    model = HistGradientBoostingClassifier(max_iter=5).fit(X, y)

    manifest = save_model(model, tmp_path / "m", input_example=X.head(3), run_id="abc")
    loaded = load_model(tmp_path / "m")

    assert manifest["serialization_format"] == "skops"
    assert any("TreePredictor" in t for t in manifest["untrusted_types"])
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    assert loaded.run_id == "abc"


def test_the_manifest_records_signature_example_and_exact_versions(data, tmp_path):
    import sklearn
    from sklearn.linear_model import LogisticRegression

    X, y = data
    save_model(LogisticRegression().fit(X, y), tmp_path / "m", input_example=X.head(2))
    manifest = read_manifest(tmp_path / "m")

    assert manifest["flavor"] == "sklearn"
    assert manifest["signature"]["inputs"][0] == {"name": "price", "type": "double"}
    assert manifest["signature"]["outputs"][0]["tensor-spec"]["dtype"] == "int64"
    assert manifest["requirements"]["scikit-learn"] == sklearn.__version__
    assert f"scikit-learn=={sklearn.__version__}" in (tmp_path / "m/requirements.txt").read_text()
    pd.testing.assert_frame_equal(load_model(tmp_path / "m").input_example(), X.head(2))


def test_a_type_outside_the_allow_list_is_refused_with_the_way_to_trust_it(data, tmp_path):
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer
    from sklearn.tree import DecisionTreeClassifier

    X, y = data
    model = make_pipeline(FunctionTransformer(shout), DecisionTreeClassifier()).fit(X, y)
    save_model(model, tmp_path / "m")

    with pytest.raises(PermissionDenied, match=r"test_formats\.shout.*trusted_types=") as caught:
        load_model(tmp_path / "m")
    unsafe = [t for t in read_manifest(tmp_path / "m")["untrusted_types"] if "shout" in t]
    loaded = load_model(tmp_path / "m", trusted_types=unsafe)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    assert caught.value.field == "trusted_types"


def test_the_types_the_manifest_records_neither_grant_trust_nor_are_needed(data, tmp_path):
    """The uploader writes ``MLmodel.json`` too: what it says the file needs changes nothing
    (gadget files that list themselves there: ``test_skops_gadgets``)."""
    from sklearn.ensemble import RandomForestClassifier

    X, y = data
    model = RandomForestClassifier(n_estimators=2).fit(X, y)
    save_model(model, tmp_path / "m")
    manifest_path = tmp_path / "m" / MANIFEST_FILE
    manifest = json.loads(manifest_path.read_text())
    for recorded in ([], None, ["builtins.eval"]):
        manifest["untrusted_types"] = recorded
        manifest_path.write_text(json.dumps(manifest))

        np.testing.assert_array_equal(load_model(tmp_path / "m").predict(X), model.predict(X))


def test_a_pickled_model_loads_only_when_trusted(data, tmp_path):
    import pickle

    from sklearn.linear_model import LogisticRegression

    X, y = data
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "model.pkl").write_bytes(pickle.dumps(LogisticRegression().fit(X, y)))
    manifest = {"flavor": "sklearn", "model_file": "model.pkl", "serialization_format": "pickle"}
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest))

    with pytest.raises(PermissionDenied, match=r"trusted=True"):
        load_model(folder)
    assert load_model(folder, trusted=True).predict(X).shape == (120,)


def test_lightgbm_uses_its_native_format_and_predicts_labels(data, tmp_path):
    lightgbm = pytest.importorskip("lightgbm")
    X, y = data
    model = lightgbm.LGBMClassifier(n_estimators=5, verbose=-1).fit(X, y)

    save_model(model, tmp_path / "m", input_example=X.head(2))
    loaded = load_model(tmp_path / "m")

    assert (tmp_path / "m/model.lgb").is_file()
    assert isinstance(loaded.native, lightgbm.Booster)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


def test_xgboost_uses_its_native_format(data, tmp_path):
    xgboost = pytest.importorskip("xgboost")
    X, y = data
    model = xgboost.XGBClassifier(n_estimators=5, max_depth=2).fit(X, y)

    save_model(model, tmp_path / "m")
    loaded = load_model(tmp_path / "m")

    assert read_manifest(tmp_path / "m")["flavor"] == "xgboost"
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


def test_onnx_models_run_in_onnxruntime(data, tmp_path):
    pytest.importorskip("onnxruntime")
    skl2onnx = pytest.importorskip("skl2onnx")
    from sklearn.linear_model import LogisticRegression

    X, y = data
    sk_model = LogisticRegression().fit(X, y)
    onnx_model = skl2onnx.to_onnx(sk_model, X.head(1).to_numpy(dtype=np.float32))

    save_model(onnx_model, tmp_path / "m", input_example=X.head(2))

    np.testing.assert_array_equal(load_model(tmp_path / "m").predict(X), sk_model.predict(X))


class Doubler(PythonModel):
    """Post-processing around another model."""

    def __init__(self, inner):
        self.inner = inner

    def predict(self, model_input):
        return self.inner.predict(model_input) * 2


def test_a_python_model_is_pickled_only_with_explicit_trust(data, tmp_path):
    from sklearn.linear_model import LogisticRegression

    X, y = data
    model = Doubler(LogisticRegression().fit(X, y))

    with pytest.raises(PermissionDenied, match="pass trusted=True"):
        save_model(model, tmp_path / "m")
    assert not (tmp_path / "m").exists()  # nothing half-written is left behind

    save_model(model, tmp_path / "m", trusted=True)
    with pytest.raises(PermissionDenied, match="pass trusted=True"):
        load_model(tmp_path / "m")
    assert set(load_model(tmp_path / "m", trusted=True).predict(X)) <= {0, 2}


def test_predict_reorders_columns_and_names_a_missing_one(data, tmp_path):
    from sklearn.linear_model import LogisticRegression

    X, y = data
    model = LogisticRegression().fit(X, y)
    save_model(model, tmp_path / "m", input_example=X.head(2))
    loaded = load_model(tmp_path / "m")

    np.testing.assert_array_equal(loaded.predict(X[["age", "visits", "price"]]), model.predict(X))
    with pytest.raises(InvalidParameter, match="missing column 'age'"):
        loaded.predict(X[["price", "visits"]])


def test_an_unknown_model_type_says_to_wrap_it(tmp_path):
    with pytest.raises(InvalidParameter, match="wrap anything else in a modelyard PythonModel"):
        infer_flavor(object())


def test_saving_over_an_existing_model_is_refused(data, tmp_path):
    from sklearn.linear_model import LogisticRegression

    X, y = data
    save_model(LogisticRegression().fit(X, y), tmp_path / "m")
    with pytest.raises(InvalidParameter, match="already exists"):
        save_model(LogisticRegression().fit(X, y), tmp_path / "m")


def test_a_folder_without_a_model_is_not_found(tmp_path):
    with pytest.raises(NotFound, match="holds no saved model"):
        load_model(tmp_path)


def test_signatures_describe_tensors_for_arrays():
    signature = infer_signature(np.zeros((4, 3), dtype=np.float32), np.zeros(4))
    assert signature.inputs == [
        {"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 3]}}
    ]
    assert signature.column_names is None


MLFLOW_MLMODEL = """\
flavors:
  python_function:
    loader_module: mlflow.sklearn
    model_path: model.skops
  sklearn:
    pickled_model: model.skops
    serialization_format: skops
    sklearn_version: 1.9.1
    skops_trusted_types: null
mlflow_version: 3.17.2
signature:
  inputs: '[{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 3]}}]'
  outputs: '[{"type": "tensor", "tensor-spec": {"dtype": "int64", "shape": [-1]}}]'
"""


def test_models_saved_by_mlflow_load_with_the_same_safety(data, tmp_path):
    """The layout MLflow 3.17 writes (read off ``mlflow.sklearn.save_model``)."""
    import skops.io
    from sklearn.ensemble import RandomForestClassifier

    X, y = data
    model = RandomForestClassifier(n_estimators=2).fit(X.to_numpy(), y)
    (tmp_path / "m").mkdir()
    skops.io.dump(model, tmp_path / "m" / "model.skops")
    (tmp_path / "m" / "MLmodel").write_text(MLFLOW_MLMODEL)

    loaded = load_model(tmp_path / "m")

    np.testing.assert_array_equal(loaded.predict(X.to_numpy()), model.predict(X.to_numpy()))
    assert loaded.signature.inputs[0]["tensor-spec"]["shape"] == [-1, 3]


@pytest.mark.parametrize("flavor", ["sklearn", "lightgbm", "xgboost", "onnx", "python"])
@pytest.mark.parametrize("name", ["../secret.bin", "/etc/hostname"])
def test_a_manifest_cannot_point_a_loader_outside_the_model_folder(tmp_path, flavor, name):
    folder = tmp_path / "model"
    folder.mkdir()
    (tmp_path / "secret.bin").write_bytes(b"not yours")
    manifest = {"flavor": flavor, "model_file": name, "serialization_format": "skops"}
    (folder / "MLmodel.json").write_text(json.dumps(manifest))
    with pytest.raises(InvalidParameter, match="outside the model folder") as caught:
        load_model(folder, trusted=True)
    assert caught.value.field == "model_file"


def test_an_input_example_outside_the_model_folder_is_refused(data, tmp_path):
    from sklearn.linear_model import LinearRegression

    X, y = data
    save_model(LinearRegression().fit(X, y), tmp_path / "m", input_example=X.head(2))
    manifest = json.loads((tmp_path / "m" / "MLmodel.json").read_text())
    manifest["input_example"] = "../../../../etc/passwd"
    (tmp_path / "m" / "MLmodel.json").write_text(json.dumps(manifest))
    with pytest.raises(InvalidParameter, match="input_example"):
        load_model(tmp_path / "m")
