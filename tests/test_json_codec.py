"""The handlers' JSON codec accepts and refuses exactly what the standard library does,
and writes what Starlette's ``JSONResponse`` wrote, with or without orjson."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelyard import json_codec

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
    expected, got = json.loads(raw), json_codec.loads(raw)
    assert repr(got) == repr(expected)  # repr: NaN == NaN for this comparison


@given(JSON_VALUES)
def test_any_document_is_read_exactly_as_json_reads_it(value):
    raw = json.dumps(value).encode()
    assert repr(json_codec.loads(raw)) == repr(json.loads(raw))


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
        json_codec.loads(raw)


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
        json_codec.loads(raw)
    assert refused.value.field == field
    assert isinstance(refused.value, ValueError)
    found = json_codec.find_unusable(raw)
    assert found is not None and found.field == field


def test_a_number_past_a_double_is_unusable_only_when_asked():
    raw = b'{"data": [1, 1e400, ' + b"9" * 400 + b"]}"
    assert json_codec.loads(raw)["data"][1] == math.inf  # as json reads it
    assert json_codec.find_unusable(raw) is None
    found = json_codec.find_unusable(raw, floats=True)
    assert found is not None and found.field == "data[1]" and "1e400" in str(found)
    assert json_codec.find_unusable(b"{not json", floats=True) is None


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
