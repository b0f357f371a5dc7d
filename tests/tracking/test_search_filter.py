"""The MLflow search filter and order-by grammar (for runs, and for experiments), and how
bad input is reported."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelyard.errors import InvalidFilter, InvalidParameter
from modelyard.tracking.search_filter import (
    DATASET_FIELDS,
    EXPERIMENTS,
    NUMERIC_ATTRIBUTES,
    NUMERIC_OPS,
    STRING_ATTRIBUTES,
    STRING_OPS,
    Clause,
    OrderKey,
    parse_filter,
    parse_order_by,
    quote,
    render_filter,
    tokenize,
)

# --- what parses ------------------------------------------------------------------------


@pytest.mark.parametrize("text", [None, "", "   ", "\n\t "])
def test_an_empty_filter_means_no_clauses(text: str | None) -> None:
    assert parse_filter(text) == []


@pytest.mark.parametrize(
    ("prefix", "kind"),
    [
        ("metrics", "metric"),
        ("metric", "metric"),
        ("params", "param"),
        ("param", "param"),
        ("parameter", "param"),
        ("tags", "tag"),
        ("tag", "tag"),
        ("METRICS", "metric"),
    ],
)
def test_entity_prefixes_and_their_aliases(prefix: str, kind: str) -> None:
    value = "1" if kind == "metric" else "'1'"
    expected = 1.0 if kind == "metric" else "1"
    assert parse_filter(f"{prefix}.k = {value}") == [Clause(kind, "k", "=", expected)]  # type: ignore[arg-type]


@pytest.mark.parametrize("prefix", ["attributes.", "attribute.", "attr.", "run.", ""])
def test_attributes_take_any_alias_or_none(prefix: str) -> None:
    assert parse_filter(f"{prefix}status = 'FINISHED'") == [
        Clause("attribute", "status", "=", "FINISHED")
    ]


def test_clauses_are_joined_by_and_in_any_case() -> None:
    assert parse_filter("metrics.a > 1 AND params.b = 'x' and tags.c != 'y' aNd run_id = 'r'") == [
        Clause("metric", "a", ">", 1.0),
        Clause("param", "b", "=", "x"),
        Clause("tag", "c", "!=", "y"),
        Clause("attribute", "run_id", "=", "r"),
    ]


def test_whitespace_between_tokens_is_optional() -> None:
    assert parse_filter("metrics.a>=1 AND params.b='x'") == [
        Clause("metric", "a", ">=", 1.0),
        Clause("param", "b", "=", "x"),
    ]


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('metrics."my metric" > 0', "my metric"),
        ("metrics.`my metric` > 0", "my metric"),
        ("metrics.'my metric' > 0", "my metric"),
        ("metrics.`mlflow.note` > 0", "mlflow.note"),
        ("metrics.model.depth > 0", "model.depth"),
        ("metrics.val/loss > 0", "val/loss"),
        ("metrics.val-loss > 0", "val-loss"),
        ("metrics.`a``b` > 0", "a`b"),
        ('metrics."a""b" > 0', 'a"b'),
        ("metrics.`a = 'b' AND c` > 0", "a = 'b' AND c"),
    ],
)
def test_keys_may_be_quoted_and_may_contain_dots(text: str, key: str) -> None:
    assert parse_filter(text) == [Clause("metric", key, ">", 0.0)]


@pytest.mark.parametrize(
    ("literal", "value"),
    [
        ("3", 3.0),
        ("-3", -3.0),
        ("+3", 3.0),
        ("0.25", 0.25),
        (".5", 0.5),
        ("2.", 2.0),
        ("1e-3", 0.001),
        ("-1.5E+2", -150.0),
        ("1700000000000", 1.7e12),
    ],
)
def test_numbers_are_ints_floats_scientific_or_negative(literal: str, value: float) -> None:
    assert parse_filter(f"metrics.m < {literal}") == [Clause("metric", "m", "<", value)]


@pytest.mark.parametrize("op", NUMERIC_OPS)
def test_metrics_take_every_numeric_comparator(op: str) -> None:
    assert parse_filter(f"metrics.m {op} 1") == [Clause("metric", "m", op, 1.0)]


@pytest.mark.parametrize("kind", ["params", "tags"])
@pytest.mark.parametrize(
    ("written", "op"),
    [("=", "="), ("!=", "!="), ("LIKE", "LIKE"), ("like", "LIKE"), ("ILIKE", "ILIKE"),
     ("ilike", "ILIKE")],
)  # fmt: skip
def test_params_and_tags_take_string_comparators(kind: str, written: str, op: str) -> None:
    (clause,) = parse_filter(f"{kind}.k {written} 'v%'")
    assert (clause.op, clause.value) == (op, "v%")


@pytest.mark.parametrize(
    ("text", "op"),
    [
        ("params.k IS NULL", "IS NULL"),
        ("params.k is null", "IS NULL"),
        ("tags.k IS NOT NULL", "IS NOT NULL"),
        ("tags.k Is Not Null", "IS NOT NULL"),
    ],
)
def test_params_and_tags_can_be_tested_for_absence(text: str, op: str) -> None:
    (clause,) = parse_filter(text)
    assert (clause.op, clause.value) == (op, None)


@pytest.mark.parametrize(
    ("literal", "value"),
    [
        ("'single'", "single"),
        ('"double"', "double"),
        ("''", ""),
        ("'it''s'", "it's"),
        ('"say ""hi"""', 'say "hi"'),
        ('"it\'s"', "it's"),
        ("'50\\%'", "50\\%"),
        ("'  spaced  '", "  spaced  "),
        ("'AND metrics.x > 1'", "AND metrics.x > 1"),
    ],
)
def test_string_values_are_single_or_double_quoted(literal: str, value: str) -> None:
    assert parse_filter(f"params.p = {literal}") == [Clause("param", "p", "=", value)]


@pytest.mark.parametrize("name", STRING_ATTRIBUTES)
@pytest.mark.parametrize("op", STRING_OPS)
def test_string_attributes_take_string_comparators(name: str, op: str) -> None:
    assert parse_filter(f"attributes.{name} {op} 'x'") == [Clause("attribute", name, op, "x")]


@pytest.mark.parametrize("name", ["run_id", "status"])
def test_run_id_and_status_take_in_and_not_in_lists(name: str) -> None:
    assert parse_filter(f"{name} IN ('a', \"b\",'c')") == [
        Clause("attribute", name, "IN", ("a", "b", "c"))
    ]
    assert parse_filter(f"attributes.{name} not in ('a')") == [
        Clause("attribute", name, "NOT IN", ("a",))
    ]


@pytest.mark.parametrize("name", NUMERIC_ATTRIBUTES)
@pytest.mark.parametrize("op", NUMERIC_OPS)
def test_time_attributes_take_numeric_comparators(name: str, op: str) -> None:
    assert parse_filter(f"attributes.{name} {op} 1700000000000") == [
        Clause("attribute", name, op, 1.7e12)
    ]


@pytest.mark.parametrize("text", ["created > 5", "attributes.created > 5", "attr.Created > 5"])
def test_created_means_start_time(text: str) -> None:
    assert parse_filter(text) == [Clause("attribute", "start_time", ">", 5.0)]


def test_run_name_may_be_written_as_the_uis_run_name_column() -> None:
    assert parse_filter("attributes.`run name` = 'x'") == [
        Clause("attribute", "run_name", "=", "x")
    ]


@pytest.mark.parametrize("field", DATASET_FIELDS)
def test_dataset_fields_take_string_comparators_and_lists(field: str) -> None:
    assert parse_filter(
        f"datasets.{field} = 'a' AND dataset.{field} LIKE 'a%' AND datasets.{field} ILIKE 'A'"
        f" AND datasets.{field} != 'b' AND datasets.{field} IN ('a', 'b')"
        f" AND datasets.{field} NOT IN ('c')"
    ) == [
        Clause("dataset", field, "=", "a"),
        Clause("dataset", field, "LIKE", "a%"),
        Clause("dataset", field, "ILIKE", "A"),
        Clause("dataset", field, "!=", "b"),
        Clause("dataset", field, "IN", ("a", "b")),
        Clause("dataset", field, "NOT IN", ("c",)),
    ]


def test_clauses_are_immutable_and_hashable() -> None:
    clause = Clause("metric", "m", "<", 1.0)
    with pytest.raises(AttributeError):
        clause.key = "other"  # type: ignore[misc]
    assert len({clause, Clause("metric", "m", "<", 1.0)}) == 1


def test_tokens_carry_their_positions() -> None:
    tokens = tokenize("metrics.`a b` >= -1 AND tags.t IN ('x')")
    assert [(t.kind, t.text, t.start) for t in tokens] == [
        ("word", "metrics.", 0),
        ("string", "`a b`", 8),
        ("op", ">=", 14),
        ("number", "-1", 17),
        ("word", "AND", 20),
        ("word", "tags.t", 24),
        ("word", "IN", 31),
        ("punct", "(", 34),
        ("string", "'x'", 35),
        ("punct", ")", 38),
        ("end", "", 39),
    ]


# --- what is refused, and where ----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "position", "token", "reason"),
    [
        # only AND
        ("metrics.a > 1 OR metrics.b < 2", 14, "OR", "only AND is supported"),
        ("params.a = 'x' or params.b = 'y'", 15, "or", "only AND is supported"),
        # identifiers
        ("foo.x = 1", 0, "foo.x", "unknown entity type 'foo'"),
        ("attributes.colour = 'red'", 0, "attributes.colour", "unknown attribute 'colour'"),
        ("colour = 'red'", 0, "colour", "unknown attribute 'colour'"),
        ("metrics = 1", 0, "metrics", "need a key"),
        ("metrics. = 1", 0, "metrics.", "missing key after 'metrics.'"),
        ("datasets.size = 'x'", 0, "datasets.size", "unknown dataset field 'size'"),
        ("= 1", 0, "=", "expected an identifier"),
        ("42 = 1", 0, "42", "expected an identifier"),
        ("(metrics.a > 1)", 0, "(", "expected an identifier"),
        # comparators not allowed for the type
        ("metrics.a LIKE 'x'", 10, "LIKE", "comparator LIKE is not allowed for metrics.a"),
        ("metrics.a IN ('x')", 10, "IN", "comparator IN is not allowed"),
        ("params.a > 'x'", 9, ">", "comparator > is not allowed for params.a"),
        ("tags.a < 'x'", 7, "<", "comparator < is not allowed"),
        ("run_name IN ('a')", 9, "IN", "comparator IN is not allowed for run_name"),
        ("attributes.status >= 'x'", 18, ">=", "comparator >= is not allowed"),
        ("start_time LIKE '1%'", 11, "LIKE", "comparator LIKE is not allowed"),
        ("datasets.name > 'a'", 14, ">", "comparator > is not allowed"),
        ("metrics.a IS NULL", 10, "IS", "only supported for params and tags"),
        ("run_id IS NOT NULL", 7, "IS", "only supported for params and tags"),
        ("params.a NOT LIKE 'x'", 13, "LIKE", "NOT must be followed by IN"),
        ("params.a IS 'x'", 12, "'x'", "expected NULL"),
        ("metrics.a == 1", 10, "==", "unknown comparator ==; use ="),
        ("metrics.a <> 1", 10, "<>", "use !="),
        ("metrics.a 1", 10, "1", "expected a comparator"),
        # values of the wrong type
        ("metrics.a > '1'", 12, "'1'", "expected a number"),
        ("start_time > 'yesterday'", 13, "'yesterday'", "expected a number"),
        ("params.a = 1", 11, "1", "expected a quoted string"),
        ("tags.a = vision", 9, "vision", "expected a quoted string"),
        ("params.a = `x`", 11, "`x`", "expected a quoted string"),
        ("run_id IN 'a'", 10, "'a'", "expected '('"),
        ("run_id IN ()", 11, ")", "expected a quoted string in the list"),
        ("run_id IN ('a', 1)", 16, "1", "expected a quoted string in the list"),
        ("run_id IN ('a' 'b')", 15, "'b'", "expected ',' or ')'"),
        # unterminated quotes and malformed tokens
        ("params.a = 'abc", 11, "'abc", "unterminated ' quote"),
        ('params.a = "abc', 11, '"abc', 'unterminated " quote'),
        ("metrics.`abc > 1", 8, "`abc > 1", "unterminated ` quote"),
        ("metrics.a > 1.2.3", 12, "1.2.3", "malformed number"),
        ("metrics.a > 12abc", 12, "12abc", "malformed number"),
        ("metrics.a > 1 ; drop", 14, ";", "unexpected character"),
        ("params.a = 'x\x00y'", 13, "\x00", "a NUL character is not allowed"),
        # missing pieces
        ("metrics.a", 9, "", "missing comparator"),
        ("metrics.a >", 11, "", "missing value after >"),
        ("params.a =   ", 13, "", "missing value after ="),
        ("run_id IN ('a'", 14, "", "expected ',' or ')'"),
        ("params.a IS NOT", 15, "", "expected NULL"),
        ("metrics.a > 1 AND", 17, "", "expected an identifier"),
        # trailing junk
        ("metrics.a > 1 metrics.b > 2", 14, "metrics.b", "expected AND"),
        ("metrics.a > 1)", 13, ")", "expected AND"),
        ("params.a = 'x' 'y'", 15, "'y'", "expected AND"),
        ('metrics.a"b" > 1', 9, '"b"', "a quoted key must follow"),
        ("status'x' = 'y'", 6, "'x'", "a quoted key must follow"),
    ],
)
def test_bad_filters_name_the_token_and_its_position(
    text: str, position: int, token: str, reason: str
) -> None:
    with pytest.raises(InvalidFilter) as caught:
        parse_filter(text)
    error = caught.value
    assert (error.position, error.token) == (position, token)
    near = f"near {token!r}" if token else "near end of input"
    assert str(error).startswith(f"invalid filter at position {position} {near}: ")
    assert reason in str(error)


def test_the_error_message_reads_like_the_example_in_the_docs() -> None:
    with pytest.raises(InvalidFilter, match=r"^invalid filter at position 17 near 'OR': only AND"):
        parse_filter("params.a = 'abc' OR params.b = 'x'")


def test_filter_errors_are_invalid_parameter_errors_with_a_stable_code() -> None:
    with pytest.raises(InvalidParameter) as caught:
        parse_filter("metrics.a >")
    assert caught.value.to_dict()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert caught.value.field == "filter"


# --- order_by ---------------------------------------------------------------------------


def test_order_by_items_name_an_identifier_and_an_optional_direction() -> None:
    assert parse_order_by(
        [
            "metrics.rmse ASC",
            "params.x",
            "attributes.start_time DESC",
            "run_name",
            'tags."my tag" desc',
            "metric.`val loss` asc",
            "param.model.depth",
        ]
    ) == [
        OrderKey("metric", "rmse", True),
        OrderKey("param", "x", True),
        OrderKey("attribute", "start_time", False),
        OrderKey("attribute", "run_name", True),
        OrderKey("tag", "my tag", False),
        OrderKey("metric", "val loss", True),
        OrderKey("param", "model.depth", True),
    ]


@pytest.mark.parametrize("items", [None, []])
def test_no_order_by_means_no_keys(items: list[str] | None) -> None:
    assert parse_order_by(items) == []


def test_created_orders_by_start_time() -> None:
    assert parse_order_by(["created DESC"]) == [OrderKey("attribute", "start_time", False)]


@pytest.mark.parametrize(
    ("items", "position", "token", "reason"),
    [
        (["metrics.rmse UP"], 13, "UP", "expected ASC, DESC"),
        (["metrics.rmse ASC DESC"], 17, "DESC", "unexpected text after the sort direction"),
        (["bogus"], 0, "bogus", "unknown attribute 'bogus'"),
        (["nope.x"], 0, "nope.x", "unknown entity type 'nope'"),
        (["datasets.name"], 0, "datasets.name", "cannot be ordered by dataset fields"),
        (["metrics.`rmse ASC"], 8, "`rmse ASC", "unterminated ` quote"),
        ([""], 0, "", "empty order_by item"),
        (["  "], 2, "", "empty order_by item"),
        (["ASC"], 0, "ASC", "unknown attribute 'ASC'"),
        (["start_time", "created"], 0, "created", "already in order_by"),
        (["metrics.a", "metric.a DESC"], 0, "metric.a", "already in order_by"),
    ],
)
def test_bad_order_by_items_name_the_token_and_its_position(
    items: list[str], position: int, token: str, reason: str
) -> None:
    with pytest.raises(InvalidFilter) as caught:
        parse_order_by(items)
    error = caught.value
    assert (error.position, error.token) == (position, token)
    assert str(error).startswith(f"invalid order_by item {items[-1]!r} at position {position} ")
    assert reason in str(error)


# --- rendering round-trips ----------------------------------------------------------------


def test_render_writes_canonical_text() -> None:
    clauses = parse_filter(
        "metric.`a b` >= 1 and param.x like 'it''s' and tags.t is not null "
        "and run_id in ('r1', 'r2') and created > 5"
    )
    assert render_filter(clauses) == (
        "metrics.`a b` >= 1.0 AND params.x LIKE 'it''s' AND tags.t IS NOT NULL "
        "AND attributes.run_id IN ('r1', 'r2') AND attributes.start_time > 5.0"
    )


# NUL characters are refused (no stored text can hold one).
_keys = st.text(st.characters(exclude_characters="\x00"), min_size=1, max_size=12)
# A backslash before a quote does not end a string (MLflow's rule), so a value ending in a
# backslash, or with one before each kind of quote, cannot be written (``quote`` refuses it).
_strings = st.text(st.characters(exclude_characters="\x00"), max_size=12).filter(
    lambda s: not s.endswith("\\") and not ("\\'" in s and '\\"' in s)
)
_numbers = st.floats(allow_nan=False, allow_infinity=False)


def _clause_strategy() -> st.SearchStrategy[Clause]:
    keyed_numeric = st.builds(
        Clause, st.just("metric"), _keys, st.sampled_from(NUMERIC_OPS), _numbers
    )
    keyed_string = st.builds(
        Clause, st.sampled_from(["param", "tag"]), _keys, st.sampled_from(STRING_OPS), _strings
    )
    keyed_null = st.builds(
        Clause,
        st.sampled_from(["param", "tag"]),
        _keys,
        st.sampled_from(["IS NULL", "IS NOT NULL"]),
        st.none(),
    )
    time_attribute = st.builds(
        Clause,
        st.just("attribute"),
        st.sampled_from(NUMERIC_ATTRIBUTES),
        st.sampled_from(NUMERIC_OPS),
        _numbers,
    )
    string_attribute = st.builds(
        Clause, st.just("attribute"), st.sampled_from(STRING_ATTRIBUTES),
        st.sampled_from(STRING_OPS), _strings,
    )  # fmt: skip
    listed = st.tuples(st.sampled_from(["attribute", "dataset"]), st.sampled_from(["IN", "NOT IN"]))
    list_clause = listed.flatmap(
        lambda kind_op: st.builds(
            Clause,
            st.just(kind_op[0]),
            st.sampled_from(["run_id", "status"] if kind_op[0] == "attribute" else DATASET_FIELDS),
            st.just(kind_op[1]),
            st.lists(_strings, min_size=1, max_size=4).map(tuple),
        )
    )
    dataset = st.builds(
        Clause, st.just("dataset"), st.sampled_from(DATASET_FIELDS), st.sampled_from(STRING_OPS),
        _strings,
    )  # fmt: skip
    return st.one_of(
        keyed_numeric, keyed_string, keyed_null, time_attribute, string_attribute, list_clause,
        dataset,
    )  # fmt: skip


@given(st.lists(_clause_strategy(), max_size=5))
def test_any_rendered_filter_parses_back_to_the_same_clauses(clauses: list[Clause]) -> None:
    assert parse_filter(render_filter(clauses)) == clauses


_filter_fragments = st.sampled_from(
    ["metrics.m", "params.p", "tags.t", "attributes.", "run_id", "start_time", "datasets.name",
     " AND ", " OR ", "=", "!=", "<", ">=", "'x'", '"y"', "`k`", "(", ")", ",", "1", "-2.5e3",
     " ", "LIKE", "ILIKE", " IN ", " NOT ", " IS ", "NULL", "'", '"', "`", ".", "%"]
)  # fmt: skip


@given(st.one_of(st.text(max_size=40), st.lists(_filter_fragments, max_size=25).map("".join)))
def test_any_text_parses_or_fails_with_a_position_inside_it(text: str) -> None:
    try:
        clauses = parse_filter(text)
    except InvalidFilter as error:
        assert error.position is not None
        assert 0 <= error.position <= len(text)
        assert error.token is not None
        assert text.startswith(error.token, error.position)
    else:
        assert parse_filter(render_filter(clauses)) == clauses


# --- quoted text, as MLflow's tokenizer reads it ----------------------------------------


@pytest.mark.parametrize(
    ("literal", "value"),
    [
        ("'salt AND pepper'", "salt AND pepper"),
        ("'a'' AND name = ''b'", "a' AND name = 'b"),
        ("'it\\'s'", "it\\'s"),  # the backslash is kept: = compares it, LIKE reads it as '
        ('"say \\"hi\\""', 'say \\"hi\\"'),
        ("'back\\slash'", "back\\slash"),
        ("'ends in \\'", "ends in \\"),  # no closing quote after \' : the string ends here
    ],
)
def test_quoted_values_hold_and_doubled_and_backslashed_quotes(literal: str, value: str) -> None:
    assert parse_filter(f"params.p = {literal}") == [Clause("param", "p", "=", value)]


def test_a_backslashed_quote_runs_on_to_the_next_quote() -> None:
    # as in MLflow: the first string is 'x\' AND tags.b = ', so the last quote is unmatched
    with pytest.raises(InvalidFilter, match="position 29 near \"'\": unterminated ' quote"):
        parse_filter("tags.a = 'x\\' AND tags.b = 'y'")


@pytest.mark.parametrize(
    "value", ["plain", "it's", 'say "hi"', "both ' and \"", "a\\'b", 'a\\"b', "50\\%", ""]
)
def test_quote_writes_any_value_that_can_be_written(value: str) -> None:
    text = f"tags.a = {quote(value)} AND tags.b = {quote(value)}"
    assert parse_filter(text) == [Clause("tag", "a", "=", value), Clause("tag", "b", "=", value)]


def test_a_value_ending_in_a_backslash_can_only_be_the_last_quoted_text() -> None:
    drive = quote("c:\\", last=True)
    assert parse_filter(f"tags.a = 'x' AND tags.b = {drive}") == [
        Clause("tag", "a", "=", "x"),
        Clause("tag", "b", "=", "c:\\"),
    ]
    with pytest.raises(InvalidParameter, match="ends in a backslash"):
        quote("c:\\")
    with pytest.raises(InvalidParameter, match="before both kinds of quote"):
        quote("a\\'b\\\"c")


# --- one parser, a grammar per search ------------------------------------------------------


def test_experiment_filters_name_attributes_and_tags() -> None:
    assert parse_filter(
        "name = 'salt AND pepper' AND attribute.experiment_id IN ('1', \"2\") "
        "AND tags.`team.name` != 'x' AND tag.owner IS NULL AND creation_time >= 5",
        EXPERIMENTS,
    ) == [
        Clause("attribute", "name", "=", "salt AND pepper"),
        Clause("attribute", "experiment_id", "IN", ("1", "2")),
        Clause("tag", "team.name", "!=", "x"),
        Clause("tag", "owner", "IS NULL", None),
        Clause("attribute", "creation_time", ">=", 5.0),
    ]


@pytest.mark.parametrize("name", ["name", "experiment_id"])
@pytest.mark.parametrize("op", (*STRING_OPS, "IN", "NOT IN"))
def test_experiment_strings_take_every_string_comparator(name: str, op: str) -> None:
    value = "('1')" if "IN" in op else "'1'"
    expected = ("1",) if "IN" in op else "1"
    assert parse_filter(f"{name} {op} {value}", EXPERIMENTS) == [
        Clause("attribute", name, op, expected)
    ]


@pytest.mark.parametrize("name", ["creation_time", "last_update_time"])
@pytest.mark.parametrize("op", NUMERIC_OPS)
def test_experiment_times_take_every_numeric_comparator(name: str, op: str) -> None:
    assert parse_filter(f"attributes.{name} {op} 17", EXPERIMENTS) == [
        Clause("attribute", name, op, 17.0)
    ]


@pytest.mark.parametrize("op", (*STRING_OPS, "IS NULL", "IS NOT NULL"))
def test_experiment_tags_take_string_and_null_comparators(op: str) -> None:
    value = None if "NULL" in op else "v"
    text = f"tags.k {op}" + ("" if value is None else " 'v'")
    assert parse_filter(text, EXPERIMENTS) == [Clause("tag", "k", op, value)]


def test_experiment_order_by_names_attributes() -> None:
    assert parse_order_by(["name DESC", "attributes.creation_time"], EXPERIMENTS) == [
        OrderKey("attribute", "name", False),
        OrderKey("attribute", "creation_time", True),
    ]


@pytest.mark.parametrize(
    ("text", "position", "token", "reason"),
    [
        ("metrics.a > 1", 0, "metrics.a", "experiment searches use attributes., tags."),
        ("run_id = 'x'", 0, "run_id", "unknown attribute 'run_id'; experiment searches use"),
        ("tags = 'x'", 0, "tags", "tags need a key"),
        ("name > 'a'", 5, ">", "comparator > is not allowed for name"),
        ("name IS NULL", 5, "IS", "IS NULL is only supported for tags"),
        ("creation_time > '1'", 16, "'1'", "expected a number"),
        ("name = 'a' OR name = 'b'", 11, "OR", "only AND is supported"),
        ("name = 'unterminated", 7, "'unterminated", "unterminated ' quote"),
    ],
)
def test_bad_experiment_filters_name_the_token_and_its_position(
    text: str, position: int, token: str, reason: str
) -> None:
    with pytest.raises(InvalidFilter) as caught:
        parse_filter(text, EXPERIMENTS)
    assert (caught.value.position, caught.value.token) == (position, token)
    assert reason in str(caught.value)


def test_experiments_cannot_be_ordered_by_tags() -> None:
    with pytest.raises(InvalidFilter, match="experiments cannot be ordered by tag fields"):
        parse_order_by(["tags.team"], EXPERIMENTS)
