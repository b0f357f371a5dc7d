"""Registered-model and model-version search: MLflow's filter and order_by through the one
grammar, compiled to SQL, on SQLite and PostgreSQL (``yard`` runs each test on both)."""

from __future__ import annotations

import operator

import pytest

from modelyard.errors import InvalidFilter, InvalidParameter
from modelyard.registry.entities import Actor
from modelyard.registry.search import MODEL_VERSIONS, REGISTERED_MODELS
from modelyard.tracking import tag_probe
from modelyard.tracking.search_filter import (
    NUMERIC_OPS,
    STRING_OPS,
    Clause,
    OrderKey,
    parse_filter,
    parse_order_by,
)

# --- the grammars --------------------------------------------------------------------------


@pytest.mark.parametrize("op", (*STRING_OPS, "IN", "NOT IN"))
def test_model_names_take_every_string_comparator(op: str) -> None:
    value, expected = ("('a b', 'c')", ("a b", "c")) if "IN" in op else ("'a AND b'", "a AND b")
    for grammar in (REGISTERED_MODELS, MODEL_VERSIONS):
        assert parse_filter(f"name {op} {value}", grammar) == [
            Clause("attribute", "name", op, expected)
        ]


@pytest.mark.parametrize("op", NUMERIC_OPS)
def test_version_numbers_parse_with_every_numeric_comparator(op: str) -> None:
    assert parse_filter(f"version_number {op} 2", MODEL_VERSIONS) == [
        Clause("attribute", "version_number", op, 2.0)
    ]


def test_versions_are_searched_by_run_source_and_tags() -> None:
    assert parse_filter(
        "run_id IN ('r1') AND source_path LIKE 's3://%' AND tags.`mlflow.prompt.is_prompt` "
        "!= 'true' AND tag.team = 'it''s'",
        MODEL_VERSIONS,
    ) == [
        Clause("attribute", "run_id", "IN", ("r1",)),
        Clause("attribute", "source_path", "LIKE", "s3://%"),
        Clause("tag", "mlflow.prompt.is_prompt", "!=", "true"),
        Clause("tag", "team", "=", "it's"),
    ]


def test_registry_order_by_names_timestamps() -> None:
    assert parse_order_by(["timestamp DESC", "name"], REGISTERED_MODELS) == [
        OrderKey("attribute", "last_updated_timestamp", False),
        OrderKey("attribute", "name", True),
    ]
    assert parse_order_by(["version_number", "creation_timestamp DESC"], MODEL_VERSIONS) == [
        OrderKey("attribute", "version_number", True),
        OrderKey("attribute", "creation_timestamp", False),
    ]


@pytest.mark.parametrize(
    ("grammar", "text", "position", "token", "reason"),
    [
        (REGISTERED_MODELS, "name = 'salt", 7, "'salt", "unterminated ' quote"),
        (REGISTERED_MODELS, "name > 'a'", 5, ">", "comparator > is not allowed for name"),
        (REGISTERED_MODELS, "run_id = 'r'", 0, "run_id", "registered model searches use one of"),
        (REGISTERED_MODELS, "params.a = 'x'", 0, "params.a", "use attributes., tags."),
        (MODEL_VERSIONS, "version_number = '1'", 17, "'1'", "expected a number"),
        (MODEL_VERSIONS, "source_path IN ('a')", 12, "IN", "comparator IN is not allowed"),
        (MODEL_VERSIONS, "name = 'a' OR name = 'b'", 11, "OR", "only AND is supported"),
    ],
)
def test_bad_registry_filters_name_the_token_and_its_position(
    grammar, text, position, token, reason
) -> None:
    with pytest.raises(InvalidFilter) as caught:
        parse_filter(text, grammar)
    assert (caught.value.position, caught.value.token) == (position, token)
    assert reason in str(caught.value)


# --- in SQL, on each backend ----------------------------------------------------------------

MODELS = {
    "salt AND pepper": {"team": "kitchen"},
    "it's": {"team": "it's ours"},
    "back\\slash": {"team": "Kitchen"},
    "Plain": {},
    "plain": {"owner": "ana"},
    "a_b": {"team": "a%b"},
    "a prompt": {"mlflow.prompt.is_prompt": "true"},
}
#: (model, source, tags) of each version, in the order they are created.
VERSIONS = [
    ("salt AND pepper", "s3://bucket/salt AND pepper", {"stage": "it's"}),
    ("salt AND pepper", "s3://bucket/other", {}),
    ("it's", "C:\\models\\it's", {"stage": "Kitchen"}),
    ("Plain", "s3://bucket/plain", {"stage": "kitchen"}),
    ("Plain", "s3://bucket/plain2", {}),
    ("Plain", "s3://bucket/plain3", {"stage": "x"}),
    ("a prompt", "s3://bucket/prompt", {"mlflow.prompt.is_prompt": "true"}),
]

MODEL_FILTERS = [
    ("name = 'salt AND pepper'", ["salt AND pepper"]),
    ("name = 'it''s'", ["it's"]),
    ('name = "it\'s"', ["it's"]),
    ("name = 'back\\slash'", ["back\\slash"]),
    ("name != 'Plain'", ["a_b", "back\\slash", "it's", "plain", "salt AND pepper"]),
    ("name LIKE 'p%'", ["plain"]),
    ("name ILIKE 'p%'", ["Plain", "plain"]),
    ("name LIKE 'a\\_b'", ["a_b"]),
    ("name LIKE 'it\\'s'", ["it's"]),
    ("name IN ('Plain', 'it''s')", ["Plain", "it's"]),
    ("name NOT IN ('Plain', 'plain', 'a_b')", ["back\\slash", "it's", "salt AND pepper"]),
    ("tags.team = 'kitchen'", ["salt AND pepper"]),
    ("tags.team != 'kitchen'", ["a_b", "back\\slash", "it's"]),
    ("tags.team ILIKE 'KITCHEN'", ["back\\slash", "salt AND pepper"]),
    ("tags.team LIKE 'it''s%'", ["it's"]),
    ("tags.team IS NULL AND name ILIKE 'plain'", ["Plain", "plain"]),
    ("tags.owner IS NOT NULL", ["plain"]),
    # MLflow's client appends this to every search; models without the tag match it
    (
        "name LIKE '%a%' AND tags.`mlflow.prompt.is_prompt` != 'true'",
        ["Plain", "a_b", "back\\slash", "plain", "salt AND pepper"],
    ),
    ("tags.`mlflow.prompt.is_prompt` = 'true'", ["a prompt"]),
    ("tag.`mlflow.prompt.is_prompt` != 'false'", ["a prompt"]),
]
VERSION_FILTERS = [
    ("name = 'salt AND pepper'", [("salt AND pepper", 1), ("salt AND pepper", 2)]),
    ("name = 'it''s' AND version_number = 1", [("it's", 1)]),
    ("source_path = 'C:\\models\\it''s'", [("it's", 1)]),
    ("source_path LIKE '%AND%'", [("salt AND pepper", 1)]),
    ("source_path ILIKE 'S3://BUCKET/PLAIN_'", [("Plain", 2), ("Plain", 3)]),
    ("name IN ('Plain', 'it''s') AND version_number >= 2", [("Plain", 2), ("Plain", 3)]),
    ("name NOT IN ('Plain') AND version_number > 1", [("salt AND pepper", 2)]),
    ("tags.stage = 'it''s'", [("salt AND pepper", 1)]),
    ("tags.stage != 'x'", [("Plain", 1), ("it's", 1), ("salt AND pepper", 1)]),
    ("tags.stage LIKE 'K%'", [("it's", 1)]),
    ("tags.stage ILIKE 'k%'", [("Plain", 1), ("it's", 1)]),
    ("tags.`mlflow.prompt.is_prompt` = 'true'", [("a prompt", 1)]),
]
COMPARISONS = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


@pytest.fixture
def filled(yard):
    registry = yard.registry
    for name, tags in MODELS.items():
        registry.store.create_registered_model(name, Actor("ana"), tags=tags)
    for name, source, tags in VERSIONS:
        registry.store.create_model_version(
            name, Actor("ana"), source=source, storage_location=source, tags=tags
        )
    return registry


def model_names(registry, filter_string, **kwargs) -> list[str]:
    return sorted(m.name for m in registry.search_registered_models(filter_string, **kwargs))


def versions(registry, filter_string, **kwargs) -> list[tuple[str, int]]:
    found = registry.search_model_versions(filter_string, **kwargs)
    return sorted((v.name, v.version) for v in found)


@pytest.fixture(params=["scan", "driven"])
def tag_drive(request, monkeypatch) -> None:
    """Both plans of a tag clause: the ordered scan, and the search driven by the clause's
    few owners (``tracking/tag_probe.py``); the answers must not depend on which."""
    monkeypatch.setattr(tag_probe, "DRIVE_LIMIT", 0 if request.param == "scan" else 2_000)


def test_model_filters_are_applied_in_sql(filled, tag_drive):
    answers = {text: model_names(filled, text) for text, _ in MODEL_FILTERS}
    assert answers == dict(MODEL_FILTERS)


def test_prompts_are_hidden_unless_the_filter_asks_for_them(filled):
    assert "a prompt" not in model_names(filled, None)
    assert "a prompt" not in [m.name for m in filled.list_registered_models()]
    assert ("a prompt", 1) not in versions(filled, None)


def test_version_filters_are_applied_in_sql(filled, tag_drive):
    answers = {text: versions(filled, text) for text, _ in VERSION_FILTERS}
    assert answers == dict(VERSION_FILTERS)


def test_version_numbers_are_compared_with_every_numeric_comparator(filled):
    plain = [("Plain", n) for n in (1, 2, 3)]
    for op, holds in COMPARISONS.items():
        expected = [v for v in plain if holds(v[1], 2)]
        assert versions(filled, f"name = 'Plain' AND version_number {op} 2") == expected, op


def test_order_by_and_pages(filled):
    first = filled.search_model_versions(
        "name = 'Plain'", max_results=2, order_by=["version_number ASC"]
    )
    rest = filled.search_model_versions(
        "name = 'Plain'", order_by=["version_number ASC"], page_token=first.next_page_token
    )
    assert [v.version for v in first] + [v.version for v in rest] == [1, 2, 3]
    assert rest.next_page_token is None
    default = filled.search_model_versions("name IN ('Plain', 'salt AND pepper')")
    assert [(v.name, v.version) for v in default] == [
        ("Plain", 3),
        ("Plain", 2),
        ("Plain", 1),
        ("salt AND pepper", 2),
        ("salt AND pepper", 1),
    ]
    newest = filled.search_registered_models(order_by=["creation_timestamp DESC"], max_results=1)
    assert [m.name for m in newest] == ["a_b"]
    by_name = filled.search_registered_models("name ILIKE 'p%'", order_by=["name DESC"])
    assert sorted(m.name for m in by_name) == ["Plain", "plain"]


def all_pages(search, **kwargs) -> list[tuple[str, int]]:
    """Every page of ``search`` one row at a time, as (name, version or 0)."""
    seen, token = [], None
    while True:
        page = search(max_results=1, page_token=token, **kwargs)
        seen += [(x.name, getattr(x, "version", 0)) for x in page]
        token = page.next_page_token
        if token is None:
            return seen


def test_pages_seek_through_every_match_once_in_order(filled):
    for order_by in (
        [],
        ["version_number ASC"],
        ["creation_timestamp DESC"],
        ["last_updated_timestamp ASC", "name DESC"],
        ["name DESC", "version_number ASC"],
    ):
        unpaged = filled.search_model_versions(None, order_by=order_by)
        assert all_pages(filled.search_model_versions, order_by=order_by) == [
            (v.name, v.version) for v in unpaged
        ], order_by
        model_order = [k for k in order_by if not k.startswith("version_number")]
        models = filled.search_registered_models(order_by=model_order)
        assert all_pages(filled.search_registered_models, order_by=model_order) == [
            (m.name, 0) for m in models
        ], model_order


def test_a_page_token_from_elsewhere_is_refused_naming_page_token(filled):
    versions_token = filled.search_model_versions(max_results=1).next_page_token
    models_token = filled.search_registered_models(max_results=1).next_page_token
    for search, token in [
        (filled.search_registered_models, versions_token),  # another search's
        (filled.search_model_versions, models_token),
        (filled.search_model_versions, "LTE="),  # "-1"
        (filled.search_model_versions, "' OR 1=1 --"),
    ]:
        with pytest.raises(InvalidParameter) as caught:
            search(page_token=token)
        assert caught.value.field == "page_token"
    with pytest.raises(InvalidParameter, match="another search or order_by"):
        filled.search_model_versions(page_token=versions_token, order_by=["name DESC"])
    # the offset tokens of before ("2", base64) still page, once, then seek
    old = filled.search_model_versions(max_results=2, page_token="Mg==")
    assert [(v.name, v.version) for v in old] == all_pages(filled.search_model_versions)[2:4]


def test_list_helpers_quote_any_name(filled):
    filled.store.create_registered_model("ends in \\", Actor("ana"))
    filled.store.create_model_version(
        "ends in \\", Actor("ana"), source="s3://x", storage_location="s3://x"
    )
    assert [v.version for v in filled.list_model_versions("ends in \\")] == [1]
    assert [m.name for m in filled.list_registered_models("ENDS IN \\\\")] == ["ends in \\"]
    assert [v.version for v in filled.list_model_versions("it's")] == [1]


def test_bad_filters_name_the_token_and_its_position(filled):
    with pytest.raises(InvalidFilter) as caught:
        filled.search_registered_models("name = 'salt AND pepper")
    assert (caught.value.position, caught.value.token) == (7, "'salt AND pepper")
    with pytest.raises(InvalidFilter, match="position 15 near 'LIKE'"):
        filled.search_model_versions("version_number LIKE '1'")


#: Model names whose prefixes test the index range SQLite searches for ``LIKE 'prefix%'``
#: (``search_query.CaseSensitiveLike``): wildcard-like characters, a backslash, the last
#: code point, a character past the Basic Multilingual Plane.
PREFIXED = ["p%q", "p%qr", "p_q", "pxq", "p\\q", "p\U0010ffff", "p\U0010ffffz", "q", "pé", "p😀"]


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("p\\%%", ["p%q", "p%qr"]),
        ("p\\_%", ["p_q"]),
        ("p_q%", ["p%q", "p%qr", "p\\q", "p_q", "pxq"]),
        ("p\\\\%", ["p\\q"]),
        ("p\U0010ffff%", ["p\U0010ffff", "p\U0010ffffz"]),
        ("pé%", ["pé"]),
        ("p😀", ["p😀"]),
        ("p%", [n for n in PREFIXED if n.startswith("p")]),
    ],
)
def test_a_like_prefix_finds_what_the_pattern_alone_finds(yard, pattern, expected):
    for name in PREFIXED:
        yard.registry.store.create_registered_model(name, Actor("ana"))
        yard.registry.store.create_model_version(
            name, Actor("ana"), source="s3://b/m", storage_location="s3://b/m"
        )
    assert model_names(yard.registry, f"name LIKE '{pattern}'") == sorted(expected)
    assert sorted(n for n, _ in versions(yard.registry, f"name LIKE '{pattern}'")) == sorted(
        expected
    )


def test_a_tag_on_versions_of_different_numbers_finds_only_those(yard, tag_drive):
    """Driven by the tag's names and numbers, the search reads their cross product — here
    also (a, 2) and (b, 1) — so the tag clause must still narrow it."""
    store = yard.registry.store
    for name in ("a", "b"):
        store.create_registered_model(name, Actor("ana"))
        for number in (1, 2):
            tags = {"team": "x"} if (name, number) in (("a", 1), ("b", 2)) else {}
            store.create_model_version(
                name, Actor("ana"), source="s3://m", storage_location="s3://m", tags=tags
            )
    assert versions(yard.registry, "tags.team = 'x'") == [("a", 1), ("b", 2)]
    assert versions(yard.registry, "tags.team = 'x' AND name = 'a'") == [("a", 1)]
