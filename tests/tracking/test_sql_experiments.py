"""Experiment search in the SQL store: MLflow's filter and order_by, filtered in SQL, on
SQLite and PostgreSQL (``client`` runs each test on both)."""

from __future__ import annotations

import operator

import pytest

from modelyard.errors import InvalidFilter, InvalidParameter
from modelyard.tracking import tag_probe
from modelyard.tracking.entities import ViewType

NAMES = {
    "salt AND pepper": {"team": "kitchen"},
    "it's": {"team": "it's ours"},
    "back\\slash": {"team": "Kitchen"},
    "Plain": {},
    "plain": {"owner": "ana"},
    "a_b": {"team": "a%b"},
}


COMPARISONS = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


@pytest.fixture
def ids(client) -> dict[str, str]:
    return {name: client.create_experiment(name, tags=tags) for name, tags in NAMES.items()}


def found(client, filter_string: str | None = None, **kwargs) -> list[str]:
    page = client.search_experiments(ViewType.ALL, filter_string=filter_string, **kwargs)
    return sorted(e.name for e in page if e.name != "Default")


#: (filter, the experiments it finds): one store is filled once and asked each of them.
FILTERS = [
    ("name = 'salt AND pepper'", ["salt AND pepper"]),
    ("name = 'it''s'", ["it's"]),
    ('name = "it\'s"', ["it's"]),
    ("name = 'back\\slash'", ["back\\slash"]),
    ("name != 'Plain'", ["a_b", "back\\slash", "it's", "plain", "salt AND pepper"]),
    ("name LIKE 'p%'", ["plain"]),
    ("name ILIKE 'p%'", ["Plain", "plain"]),
    ("name LIKE '%AND%'", ["salt AND pepper"]),
    ("name LIKE 'a\\_b'", ["a_b"]),
    ("name LIKE 'it\\'s'", ["it's"]),  # a backslash escapes the next character
    ("name IN ('Plain', 'it''s')", ["Plain", "it's"]),
    ("name NOT IN ('Plain', 'plain')", ["a_b", "back\\slash", "it's", "salt AND pepper"]),
    ("tags.team = 'kitchen'", ["salt AND pepper"]),
    ("tags.team ILIKE 'kitchen'", ["back\\slash", "salt AND pepper"]),
    ("tags.team LIKE 'K%'", ["back\\slash"]),
    ("tags.team != 'kitchen'", ["a_b", "back\\slash", "it's"]),  # the tag must be there
    ("tags.team = 'it''s ours'", ["it's"]),
    ("tags.team LIKE 'a\\%b'", ["a_b"]),
    ("tags.team IS NULL", ["Plain", "plain"]),
    (
        "tags.team IS NOT NULL AND tags.owner IS NULL",
        ["a_b", "back\\slash", "it's", "salt AND pepper"],
    ),
    ("tags.owner = 'ana' AND name LIKE 'p%'", ["plain"]),
    ("creation_time > 0 AND name ILIKE 'PLAIN'", ["Plain", "plain"]),
    ("creation_time < 0", []),
    ("last_update_time >= 0 AND name = 'a_b'", ["a_b"]),
]


@pytest.mark.parametrize("drive_limit", [0, 2_000])
def test_filters_are_applied_in_sql(client, ids, monkeypatch, drive_limit):
    # both plans of a tag clause: the ordered scan, and driven by its few experiments
    monkeypatch.setattr(tag_probe, "DRIVE_LIMIT", drive_limit)
    answers = {text: found(client, text) for text, _ in FILTERS}
    assert answers == dict(FILTERS)


def test_pages_seek_through_every_experiment_once_in_order(client, ids):
    for order_by in ([], ["name DESC"], ["creation_time ASC"], ["last_update_time DESC", "name"]):
        unpaged = client.search_experiments(ViewType.ALL, order_by=order_by)
        seen, token = [], None
        while True:
            page = client.search_experiments(
                ViewType.ALL, max_results=2, order_by=order_by, page_token=token
            )
            seen += [e.experiment_id for e in page]
            token = page.next_page_token
            if token is None:
                break
        assert seen == [e.experiment_id for e in unpaged], order_by
        assert len(seen) == len(NAMES) + 1


def test_a_forged_page_token_is_refused_naming_page_token(client, ids):
    for token in ["eyJvZmZzZXQiOiAtMn0=", "x", "' OR 1=1 --"]:  # the first: {"offset": -2}
        with pytest.raises(InvalidParameter) as caught:
            client.search_experiments(page_token=token)
        assert caught.value.field == "page_token"
    other = client.search_experiments(max_results=1, order_by=["name"]).next_page_token
    with pytest.raises(InvalidParameter, match="another search or order_by"):
        client.search_experiments(page_token=other)
    # an offset token of before ({"offset": 2}) still pages, once, then seeks
    every = [e.experiment_id for e in client.search_experiments(ViewType.ALL)]
    old = client.search_experiments(ViewType.ALL, max_results=2, page_token="eyJvZmZzZXQiOiAyfQ==")
    assert [e.experiment_id for e in old] == every[2:4]


def test_times_take_every_numeric_comparator(client, ids):
    created = client.get_experiment(ids["it's"]).creation_time
    times = {name: client.get_experiment(i).creation_time for name, i in ids.items()}
    for op, holds in COMPARISONS.items():
        expected = sorted(name for name, t in times.items() if holds(t, created))
        assert found(client, f"creation_time {op} {created}") == expected, op


def test_experiment_ids_are_compared_as_numbers(client, ids):
    first, second = ids["Plain"], ids["plain"]
    assert found(client, f"experiment_id = '{first}'") == ["Plain"]
    assert found(client, f"experiment_id IN ('{first}', '{second}')") == ["Plain", "plain"]
    assert "Plain" not in found(client, f"experiment_id != '{first}'")
    assert "plain" not in found(client, f"experiment_id NOT IN ('{second}')")
    with pytest.raises(InvalidParameter, match="non-negative integer in quotes, got 'x'"):
        found(client, "experiment_id = 'x'")


def test_order_by_and_pages(client, ids):
    ordered = client.search_experiments(
        filter_string="name != 'salt AND pepper'", order_by=["name DESC"], max_results=2
    )
    rest = client.search_experiments(
        filter_string="name != 'salt AND pepper'",
        order_by=["name DESC"],
        max_results=10,
        page_token=ordered.next_page_token,
    )
    names = [e.name for e in ordered] + [e.name for e in rest]
    assert sorted(names) == sorted({*NAMES, "Default"} - {"salt AND pepper"})
    assert len(names) == len(set(names))
    newest_first = client.search_experiments(order_by=["creation_time DESC", "experiment_id DESC"])
    assert [e.experiment_id for e in newest_first][:2] == [ids["a_b"], ids["plain"]]


def test_name_like_is_a_case_insensitive_pattern_joined_to_the_filter(client, ids):
    assert found(client, name_like="P%") == ["Plain", "plain"]
    assert found(client, "tags.owner = 'ana'", name_like="P%") == ["plain"]
    assert found(client, name_like="back\\\\slash") == ["back\\slash"]


def test_deleted_experiments_are_searched_by_view_type(client, ids):
    client.delete_experiment(ids["Plain"])
    active = client.search_experiments(filter_string="name ILIKE 'plain'")
    deleted = client.search_experiments(ViewType.DELETED_ONLY, filter_string="name ILIKE 'plain'")
    assert [e.name for e in active] == ["plain"]
    assert [e.name for e in deleted] == ["Plain"]


@pytest.mark.parametrize(
    ("filter_string", "position", "token"),
    [
        ("name = 'a' OR name = 'b'", 11, "OR"),
        ("params.x = 'a'", 0, "params.x"),
        ("name LIKE 'unterminated", 10, "'unterminated"),
    ],
)
def test_bad_filters_name_the_token_and_its_position(client, filter_string, position, token):
    with pytest.raises(InvalidFilter) as caught:
        client.search_experiments(filter_string=filter_string)
    assert (caught.value.position, caught.value.token) == (position, token)


#: Names whose prefixes test the index range SQLite searches for ``LIKE 'prefix%'``
#: (``search_query.CaseSensitiveLike``): wildcard-like characters, a backslash, the last
#: code point.
PREFIXED = ["p%q", "p%qr", "p_q", "pxq", "p\\q", "p\U0010ffff", "p\U0010ffffz", "q", "pé"]


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("p\\%%", ["p%q", "p%qr"]),
        ("p\\_%", ["p_q"]),
        ("p_q%", ["p%q", "p%qr", "p\\q", "p_q", "pxq"]),
        ("p\\\\%", ["p\\q"]),
        ("p\U0010ffff%", ["p\U0010ffff", "p\U0010ffffz"]),
        ("pé%", ["pé"]),
        ("p%", sorted(n for n in PREFIXED if n.startswith("p"))),
    ],
)
def test_a_like_prefix_finds_what_the_pattern_alone_finds(client, pattern, expected):
    for name in PREFIXED:
        client.create_experiment(name)
    assert found(client, f"name LIKE '{pattern}'") == sorted(expected)
