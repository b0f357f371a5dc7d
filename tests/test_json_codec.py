"""The one JSON codec, with or without orjson: ``loads_lenient`` accepts and refuses exactly
what the standard library does (MLflow's rule), ``loads_strict`` reads RFC 8259 JSON only
and names the field a number past a double sits in, and ``dumps`` writes what Starlette's
``JSONResponse`` wrote (NumPy and non-finite values as the data plane needs)."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelyard import json_codec


@pytest.fixture(scope="module", autouse=True, params=["orjson", "stdlib"])
def parser(request):
    """Every test runs with orjson (where installed) and with the standard library alone."""
    if request.param == "orjson" and json_codec.orjson is None:
        pytest.skip("orjson is not installed")
    installed = json_codec.orjson
    if request.param == "stdlib":
        json_codec.orjson = None
    yield request.param
    json_codec.orjson = installed


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats()  # NaN and infinities too: json writes and reads them as literals
    | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=20,
)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"a": 1, "b": [1.5, "x", null, true]}',
        b'{"value": NaN, "up": Infinity, "down": -Infinity}',  # json reads these literals
        b'{"big": 123456789012345678901234567890}',  # past 64 bits
        b'{"pair": "\\ud83d\\ude00"}',  # a surrogate pair escape: one character
        b'\xef\xbb\xbf{"bom": 1}',  # a UTF-8 byte-order mark
        '{"utf16": 1}'.encode("utf-16"),
        b'{"k": 1, "k": 2}',  # the last duplicate wins
    ],
)
def test_what_json_accepts_is_read_as_json_reads_it(raw):
    expected, got = json.loads(raw), json_codec.loads_lenient(raw)
    assert repr(got) == repr(expected)  # repr: NaN == NaN for this comparison


@given(JSON_VALUES)
def test_any_document_is_read_exactly_as_json_reads_it(value):
    raw = json.dumps(value).encode()
    assert repr(json_codec.loads_lenient(raw)) == repr(json.loads(raw))


INT64_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=20,
)


@given(INT64_VALUES)
def test_a_database_document_reads_as_json_reads_it_text_or_bytes(value):
    text = json.dumps(value, ensure_ascii=False)
    assert repr(json_codec.loads_int64(text)) == repr(json.loads(text))
    assert repr(json_codec.loads_int64(text.encode())) == repr(json.loads(text))


@pytest.mark.parametrize("raw", [b"{", b'{"a": }', b"\xff\xfe\xfa", b"[" * 100_000])
def test_what_json_refuses_raises_a_decode_error(raw):
    with pytest.raises(json_codec.DecodeError):
        json_codec.loads_lenient(raw)


@pytest.mark.parametrize(
    ("raw", "field", "needle"),
    [
        (b'{"lone": "\\ud800"}', "lone", "surrogate"),  # an escape
        (b'{"low": "a\\uDFFF"}', "low", "surrogate"),
        ('{"raw": "\ud800"}'.encode("utf-8", "surrogatepass"), "raw", "surrogate"),  # bytes
        ('{"utf16": ["\ud800"]}'.encode("utf-16", "surrogatepass"), "utf16[0]", "surrogate"),
        (b'{"tags": [{"k\\ud800": 1}]}', "tags[0].k\\ud800", "surrogate"),  # a key
        (b'"\\udc00"', "body", "surrogate"),
        (b'{"a": [1, {"b": ' + b"9" * 5000 + b"}]}", "a[1].b", "5000 digits"),
        (b'{"n": -' + b"1" * 4301 + b"}", "n", "4301 digits"),
    ],
)
def test_what_nothing_can_take_is_refused_naming_the_field(raw, field, needle):
    """A lone surrogate cannot be encoded as UTF-8 (nor stored); an integer past Python's
    4,300-digit limit cannot be read by ``int``: both are the caller's mistake."""
    with pytest.raises(json_codec.UnusableValue, match=needle) as refused:
        json_codec.loads_lenient(raw)
    assert refused.value.field == field
    assert isinstance(refused.value, ValueError)
    found = json_codec.find_unusable(raw)
    assert found is not None and found.field == field


def test_a_number_past_a_double_is_unusable_only_when_asked_or_strict():
    raw = b'{"data": [1, 1e400, ' + b"9" * 400 + b"]}"
    assert json_codec.loads_lenient(raw)["data"][1] == math.inf  # as json reads it
    assert json_codec.find_unusable(raw) is None
    found = json_codec.find_unusable(raw, floats=True)
    assert found is not None and found.field == "data[1]" and "1e400" in str(found)
    assert json_codec.find_unusable(b"{not json", floats=True) is None
    with pytest.raises(json_codec.UnusableValue, match="1e400") as refused:
        json_codec.loads_strict(raw)
    assert refused.value.field == "data[1]"


@pytest.mark.parametrize(
    "value",
    [
        {"runs": [{"info": {"run_id": "a", "start_time": 1}, "data": {}}], "é": "ü"},
        {},
        {1: "a non-string key"},
        {"huge": 2**80},
    ],
)
def test_answers_are_written_as_json_response_wrote_them(value):
    expected = json.dumps(
        value, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")
    ).encode()
    assert json_codec.dumps(value) == expected


def test_non_finite_numbers_never_reach_the_codec_as_floats():
    from modelyard.tracking.mlflow_wire import metric_value_to_json

    assert [metric_value_to_json(v) for v in (math.nan, math.inf, -math.inf, 0.5, 3)] == [
        "NaN",
        "Infinity",
        "-Infinity",
        0.5,
        3,
    ]


# -- the strict rule (inference requests) ---------------------------------------------------

FINITE_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text().filter(lambda t: not any(0xD800 <= ord(c) <= 0xDFFF for c in t)),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=20,
)


@given(FINITE_VALUES)
def test_strict_json_reads_as_json_reads_it(value):
    raw = json.dumps(value).encode()
    assert repr(json_codec.loads_strict(raw)) == repr(json.loads(raw))
    assert repr(json_codec.loads_strict(raw.decode())) == repr(json.loads(raw))


@pytest.mark.parametrize(
    "raw",
    [b'{"value": NaN}', b"[1, Infinity]", b'{"a": [-Infinity]}', b"NaN", "[NaN]"],
)
def test_the_strict_rule_refuses_non_finite_literals(raw):
    with pytest.raises(json_codec.NotStrictJson, match="not a JSON number") as refused:
        json_codec.loads_strict(raw)
    assert isinstance(refused.value, json_codec.DecodeError)
    assert isinstance(refused.value, ValueError)  # what the inference handlers catch


def test_the_lenient_rule_reads_non_finite_literals_as_mlflow_does():
    value = json_codec.loads_lenient(b'{"a": NaN, "b": Infinity, "c": -Infinity}')
    assert math.isnan(value["a"]) and value["b"] == math.inf and value["c"] == -math.inf


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b'{"inputs": [{"data": [1, 1e400]}]}', "inputs[0].data[1]"),
        (b'{"instances": [[' + b"9" * 400 + b", 1]]}", "instances[0][0]"),
        (b'{"x": -1e999}', "x"),
        (b'[{"x0": ' + b"1" * 5000 + b"}]", "[0].x0"),
        (b'{"records": [{"x0": 1}], "key": "\\ud800"}', "key"),
        ('{"name": "\ud800"}'.encode("utf-8", "surrogatepass"), "name"),
    ],
)
def test_the_strict_rule_names_the_field_of_a_value_nothing_can_take(raw, field):
    with pytest.raises(json_codec.UnusableValue) as refused:
        json_codec.loads_strict(raw)
    assert refused.value.field == field


@pytest.mark.parametrize("raw", [b"{", b'{"a": }', b"\xff\xfe\xfa", b"[" * 100_000, b""])
def test_what_is_not_json_raises_a_decode_error_under_either_rule(raw):
    for loads in (json_codec.loads_strict, json_codec.loads_lenient):
        with pytest.raises(json_codec.DecodeError):
            loads(raw)


def test_tiny_numbers_and_exponents_inside_strings_are_read():
    raw = b'{"tiny": 1e-400, "text": "e100 and 1E999"}'
    assert json_codec.loads_strict(raw) == {"tiny": 0.0, "text": "e100 and 1E999"}


def test_numpy_values_and_non_finite_floats_are_written_as_numbers_and_null():
    np = pytest.importorskip("numpy")
    value = {
        "outputs": [{"data": np.array([1.5, np.nan, 3.0]), "n": np.int64(7)}],
        "score": float("inf"),
        "objects": np.array(["a", None], dtype=object),
        "big": 2**70,
        "é": "ü",
    }
    assert json.loads(json_codec.dumps(value)) == {
        "outputs": [{"data": [1.5, None, 3.0], "n": 7}],
        "score": None,
        "objects": ["a", None],
        "big": 2**70,
        "é": "ü",
    }
    assert json_codec.dumps({"note": "NaN and Infinity"}) == b'{"note":"NaN and Infinity"}'
