"""Step values as files: tables as Parquet, arrays as .npy, models in the registry's safe
formats, JSON for small values; anything else refused naming the step, unless trusted."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from modelyard.errors import InvalidParameter
from modelyard.pipelines.values import UnstorableOutput, decode, encode


def round_trip(value, trusted: bool = False):
    kind, files, meta = encode(value, step="s", output="return", trusted=trusted)
    return kind, decode(kind, files, meta)


@pytest.mark.parametrize(
    "value",
    [None, True, 3, 2.5, "text", [1, "a", None], {"a": {"b": [1.5]}}],
)
def test_small_values_are_json(value):
    assert round_trip(value) == ("json", value)


def test_tuples_come_back_as_lists_and_nan_survives():
    kind, back = round_trip({"pair": (1, 2), "missing": float("nan")})
    assert kind == "json"
    assert back["pair"] == [1, 2] and np.isnan(back["missing"])


def test_tables_are_parquet_and_keep_their_type():
    frame = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", None]})
    kind, back = round_trip(frame)
    assert kind == "parquet"
    pd.testing.assert_frame_equal(back, frame)
    series = pd.Series([1.0, 2.0], name="price")
    kind, back = round_trip(series)
    pd.testing.assert_series_equal(back, series)
    table = pa.table({"a": [1, 2]})
    kind, back = round_trip(table)
    assert isinstance(back, pa.Table) and back.equals(table)


def test_arrays_are_npy_without_pickle_and_object_arrays_are_refused():
    array = np.arange(6, dtype=np.float32).reshape(2, 3)
    kind, back = round_trip(array)
    assert kind == "numpy" and back.dtype == np.float32
    np.testing.assert_array_equal(back, array)
    with pytest.raises(UnstorableOutput, match=r"numpy\.ndarray"):
        encode(np.array([object()]), step="s", output="return", trusted=False)


def test_scikit_learn_models_are_stored_with_skops_and_predict_the_same():
    from sklearn.ensemble import RandomForestRegressor

    x = np.random.default_rng(0).normal(size=(50, 3))
    model = RandomForestRegressor(n_estimators=3, random_state=0).fit(x, x[:, 0])
    kind, files, meta = encode(model, step="train", output="return", trusted=False)
    assert kind == "model" and meta["flavor"] == "sklearn"
    assert "model.skops" in files and not any(name.endswith(".pkl") for name in files)
    back = decode(kind, files, meta)
    np.testing.assert_array_equal(back.predict(x), model.predict(x))


class Opaque:
    pass


def test_an_unstorable_value_is_refused_naming_the_step_output_and_type():
    with pytest.raises(UnstorableOutput) as err:
        encode(Opaque(), step="train", output="model", trusted=False)
    message = str(err.value)
    assert "step 'train': output 'model'" in message
    assert "Opaque" in message and "trusted_outputs=True" in message
    assert err.value.field == "train"


def test_a_trusted_step_stores_anything_with_cloudpickle():
    kind, back = round_trip(Opaque(), trusted=True)
    assert kind == "cloudpickle" and isinstance(back, Opaque)


def test_a_dict_with_non_string_keys_is_not_json():
    with pytest.raises(UnstorableOutput):
        encode({1: "a"}, step="s", output="return", trusted=False)


def test_a_stored_model_file_cannot_escape_its_folder():
    from sklearn.linear_model import LinearRegression

    model = LinearRegression().fit([[0.0], [1.0]], [0.0, 1.0])
    kind, files, meta = encode(model, step="s", output="return", trusted=False)
    files["../escaped.skops"] = files.pop("model.skops")
    with pytest.raises(InvalidParameter, match="escapes its folder"):
        decode(kind, files, meta)
