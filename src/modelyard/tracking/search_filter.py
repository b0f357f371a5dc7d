"""MLflow's search filter and order-by grammar: one hand-written tokenizer and parser.

A filter is clauses joined by ``AND``; each clause compares an identifier
(``metrics.rmse``, ``params.lr``, ``tags."mlflow.note"``, ``attributes.status``,
``datasets.name``, or a bare attribute such as ``run_id``) with a value::

    >>> parse_filter("metrics.rmse < 0.5 and params.model.depth = '8'")[1]
    Clause(kind='param', key='model.depth', op='=', value='8')

The same parser serves every MLflow search: a :class:`Grammar` says what one search may
name (its entity prefixes, its attributes and which of them are numbers or take lists),
and each room declares the grammar of its entities — :data:`RUNS` and :data:`EXPERIMENTS`
here, registered models and model versions in ``registry/search.py``::

    >>> parse_filter("name = 'salt AND pepper' AND tags.team != 'x'", EXPERIMENTS)[0]
    Clause(kind='attribute', key='name', op='=', value='salt AND pepper')

Every malformed input raises :class:`~modelyard.errors.InvalidFilter` naming the offending
token and its 0-based character position, so a caller (or the UI) can point at it.

Quoted text follows MLflow's tokenizer (sqlparse): ``'…'`` and ``"…"`` are values, a
backslash before the quote does not end the string and, like every backslash, is kept in
the value (``'it\\'s'`` is ``it\\'s``, which ``=`` compares as written and LIKE reads as
``it's``). A doubled quote stands for one quote (``'it''s'`` is ``it's``, as in SQL and as
MLflow's own client writes it; MLflow's server keeps both quotes). LIKE patterns are kept
as written: ``%`` any run of characters, ``_`` one character, a backslash escapes the next
character (PostgreSQL's default, applied on every backend).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from modelyard.errors import InvalidFilter, InvalidParameter

Kind = Literal["metric", "param", "tag", "attribute", "dataset"]
Value = float | str | tuple[str, ...] | None

ENTITY_ALIASES: dict[str, Kind] = {
    "metric": "metric", "metrics": "metric",
    "param": "param", "params": "param", "parameter": "param", "parameters": "param",
    "tag": "tag", "tags": "tag",
    "attribute": "attribute", "attributes": "attribute", "attr": "attribute", "run": "attribute",
    "dataset": "dataset", "datasets": "dataset",
}  # fmt: skip
STRING_ATTRIBUTES = ("run_id", "run_name", "status", "user_id", "artifact_uri", "lifecycle_stage")
NUMERIC_ATTRIBUTES = ("start_time", "end_time")
#: Names MLflow's UI sends, mapped to the column they mean.
ATTRIBUTE_ALIASES = {"created": "start_time", "run name": "run_name"}
DATASET_FIELDS = ("name", "digest", "context")
LIST_ATTRIBUTES = ("run_id", "status")

NUMERIC_OPS = ("=", "!=", "<", "<=", ">", ">=")
STRING_OPS = ("=", "!=", "LIKE", "ILIKE")
LIST_OPS = ("IN", "NOT IN")
NULL_OPS = ("IS NULL", "IS NOT NULL")
_PREFIX: dict[Kind, str] = {
    "metric": "metrics", "param": "params", "tag": "tags",
    "attribute": "attributes", "dataset": "datasets",
}  # fmt: skip


@dataclass(frozen=True)
class Grammar:
    """What one search may name; the parser and its error messages follow it.

    Attribute names are the ones MLflow's clients send (``creation_timestamp``,
    ``version_number``); the store that compiles the clauses maps them to its columns.
    """

    entity: str  # "run", "experiment", …: for messages
    kinds: Mapping[str, Kind]  # prefix before the dot (lower case) → what it names
    string_attributes: tuple[str, ...]
    numeric_attributes: tuple[str, ...] = ()
    list_attributes: tuple[str, ...] = ()  # string attributes that also take IN / NOT IN
    attribute_aliases: Mapping[str, str] = field(default_factory=dict)  # lower case → name
    order_attributes: tuple[str, ...] | None = None  # None: every attribute
    order_kinds: tuple[Kind, ...] = ()  # keyed kinds a search may be ordered by

    @property
    def attributes(self) -> tuple[str, ...]:
        return self.string_attributes + self.numeric_attributes

    @property
    def orderable(self) -> tuple[str, ...]:
        return self.attributes if self.order_attributes is None else self.order_attributes

    def ops(self, kind: Kind, key: str) -> tuple[str, ...]:
        """The comparators a ``kind``/``key`` identifier takes."""
        if kind == "metric" or (kind == "attribute" and key in self.numeric_attributes):
            return NUMERIC_OPS
        if kind == "dataset" or (kind == "attribute" and key in self.list_attributes):
            return (*STRING_OPS, *LIST_OPS)
        if kind in ("param", "tag"):
            return (*STRING_OPS, *NULL_OPS)
        return STRING_OPS

    def prefixes(self) -> str:
        names = sorted({_PREFIX[kind] for kind in self.kinds.values()})
        return ", ".join(f"{name}." for name in names)


RUNS = Grammar(
    entity="run",
    kinds=ENTITY_ALIASES,
    string_attributes=STRING_ATTRIBUTES,
    numeric_attributes=NUMERIC_ATTRIBUTES,
    list_attributes=LIST_ATTRIBUTES,
    attribute_aliases=ATTRIBUTE_ALIASES,
    order_kinds=("metric", "param", "tag"),
)
#: Prefixes of the searches over attributes and tags only (experiments, the registry).
ATTRIBUTE_AND_TAG_ALIASES: dict[str, Kind] = {
    "attribute": "attribute", "attributes": "attribute", "attr": "attribute",
    "tag": "tag", "tags": "tag",
}  # fmt: skip
EXPERIMENTS = Grammar(
    entity="experiment",
    kinds=ATTRIBUTE_AND_TAG_ALIASES,
    string_attributes=("name", "experiment_id"),
    numeric_attributes=("creation_time", "last_update_time"),
    list_attributes=("name", "experiment_id"),
)


@dataclass(frozen=True)
class Clause:
    """One ``identifier comparator value`` test; all clauses of a filter must hold."""

    kind: Kind
    key: str
    op: str
    value: Value

    def texts(self) -> list[str]:
        """The value as the text it is compared with: one for ``=``, each of ``IN``'s."""
        found = self.value if isinstance(self.value, tuple) else (self.value,)
        return [str(value) for value in found]


@dataclass(frozen=True)
class OrderKey:
    kind: Kind
    key: str
    ascending: bool = True


@dataclass(frozen=True)
class Token:
    kind: Literal["word", "string", "number", "op", "punct", "end"]
    text: str  # the source text, quotes included
    start: int
    value: str = ""  # a quoted token's content, unescaped

    @property
    def end(self) -> int:
        return self.start + len(self.text)


#: A quoted token, as sqlparse reads it: a doubled quote, or a backslash before a single or
#: double quote, does not end the string (backticks know only doubling).
_QUOTED = {
    "'": re.compile(r"'(?:''|\\'|[^'])*'"),
    '"': re.compile(r'"(?:""|\\"|[^"])*"'),
    "`": re.compile(r"`(?:``|[^`])*`"),
}
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_WORD = re.compile(r"[A-Za-z_][\w.\-/:]*")
_OPERATOR = re.compile(r"<=|>=|!=|==|<>|[<>=]")
_BARE_KEY = re.compile(r"[\w.\-/:]*[\w\-/:]")


class _Errors:
    """Builds InvalidFilter errors that quote the source and point into it."""

    def __init__(self, source: str, what: str) -> None:
        self.source = source
        self.what = what

    def at(self, token: Token, reason: str) -> InvalidFilter:
        return self.raw(token.start, token.text, reason)

    def raw(self, position: int, text: str, reason: str) -> InvalidFilter:
        near = f"near {text!r}" if text else "near end of input"
        return InvalidFilter(
            f"invalid {self.what} at position {position} {near}: {reason}",
            token=text,
            position=position,
        )


def tokenize(source: str, errors: _Errors | None = None) -> list[Token]:
    """Split ``source`` into tokens, ending with an ``end`` token at ``len(source)``."""
    errors = errors or _Errors(source, "filter")
    if "\x00" in source:  # no stored text holds one (PostgreSQL refuses it outright)
        raise errors.raw(source.index("\x00"), "\x00", "a NUL character is not allowed")
    tokens: list[Token] = []
    i, n = 0, len(source)
    while i < n:
        char = source[i]
        if char.isspace():
            i += 1
        elif char in "'\"`":
            quoted = _QUOTED[char].match(source, i)
            if quoted is None:
                raise errors.raw(i, source[i:], f"unterminated {char} quote")
            text = quoted.group()
            tokens.append(Token("string", text, i, text[1:-1].replace(char * 2, char)))
            i = quoted.end()
        elif match := _NUMBER.match(source, i) if char in "+-.0123456789" else None:
            end = match.end()
            if end < n and (source[end].isalnum() or source[end] in "._"):
                junk = _WORD.match(source, end) or re.compile(r"\S+").match(source, end)
                text = source[i : junk.end() if junk else end + 1]
                raise errors.raw(i, text, "malformed number")
            tokens.append(Token("number", match.group(), i))
            i = end
        elif match := _WORD.match(source, i):
            tokens.append(Token("word", match.group(), i))
            i = match.end()
        elif match := _OPERATOR.match(source, i):
            tokens.append(Token("op", match.group(), i))
            i = match.end()
        elif char in "(),":
            tokens.append(Token("punct", char, i))
            i += 1
        else:
            raise errors.raw(i, char, "unexpected character")
    tokens.append(Token("end", "", n))
    return tokens


class _Parser:
    def __init__(self, source: str, what: str, grammar: Grammar) -> None:
        self.errors = _Errors(source, what)
        self.tokens = tokenize(source, self.errors)
        self.pos = 0
        self.grammar = grammar

    @property
    def current(self) -> Token:
        return self.tokens[self.pos]

    def advance(self) -> Token:
        token = self.tokens[self.pos]
        self.pos = min(self.pos + 1, len(self.tokens) - 1)
        return token

    def at_end(self) -> bool:
        return self.current.kind == "end"

    def at_keyword(self, *words: str) -> bool:
        token = self.current
        return token.kind == "word" and token.text.upper() in words

    def expect_punct(self, char: str, reason: str) -> Token:
        if self.current.kind == "punct" and self.current.text == char:
            return self.advance()
        raise self.errors.at(self.current, reason)

    # identifier := WORD | WORD-ending-in-dot immediately followed by a quoted key
    def identifier(self, *, for_order: bool = False) -> tuple[Kind, str, Token]:
        token = self.current
        if token.kind != "word":
            example = "metrics.rmse" if self.grammar is RUNS else "name"
            raise self.errors.at(token, f"expected an identifier such as {example}")
        self.advance()
        entity, dot, key = token.text.partition(".")
        quoted = self.current
        adjacent_quote = quoted.kind == "string" and quoted.start == token.end
        if not dot:
            if adjacent_quote:
                raise self.errors.at(quoted, "a quoted key must follow '<type>.'")
            return "attribute", self.attribute_name(token, token.text, for_order), token
        kind = self.grammar.kinds.get(entity.lower())
        if kind is None:
            raise self.errors.at(
                token,
                f"unknown entity type {entity!r}; {self.grammar.entity} searches use "
                f"{self.grammar.prefixes()}",
            )
        if adjacent_quote:
            if key:
                raise self.errors.at(quoted, "a quoted key must follow '<type>.' directly")
            self.advance()
            key = quoted.value
            token = Token("word", token.text + quoted.text, token.start)
        if not key:
            raise self.errors.at(token, f"missing key after {entity + '.'!r}")
        if kind == "attribute":
            key = self.attribute_name(token, key, for_order)
        elif for_order and kind not in self.grammar.order_kinds:
            reason = f"{self.grammar.entity}s cannot be ordered by {kind} fields"
            raise self.errors.at(token, reason)
        elif kind == "dataset" and key not in DATASET_FIELDS:
            reason = f"unknown dataset field {key!r}; use one of {', '.join(DATASET_FIELDS)}"
            raise self.errors.at(token, reason)
        return kind, key, token

    def attribute_name(self, token: Token, name: str, for_order: bool) -> str:
        grammar = self.grammar
        name = grammar.attribute_aliases.get(name.lower(), name)
        known = grammar.orderable if for_order else grammar.attributes
        if name in known:
            return name
        hint = ""
        if name.lower() in grammar.kinds:
            hint = " (metrics, params and tags need a key, e.g. metrics.rmse)"
            if grammar is not RUNS:
                hint = " (tags need a key, e.g. tags.team)"
        listed = ", ".join(known + tuple(grammar.attribute_aliases))
        action = "order" if for_order else "search"
        raise self.errors.at(
            token,
            f"unknown attribute {name!r}; {grammar.entity} {action}es use one of {listed}" + hint,
        )

    def clause(self) -> Clause:
        kind, key, ident = self.identifier()
        allowed = self.grammar.ops(kind, key)
        numeric = allowed is NUMERIC_OPS
        op_token = self.current
        op = self.comparator()
        if op in NULL_OPS and op not in allowed:
            keyed = "params and tags" if "param" in self.grammar.kinds.values() else "tags"
            raise self.errors.at(op_token, f"{op} is only supported for {keyed}")
        if op not in allowed:
            raise self.errors.at(
                op_token,
                f"comparator {op} is not allowed for {ident.text}; use one of {', '.join(allowed)}",
            )
        if op in NULL_OPS:
            return Clause(kind, key, op, None)
        if op in LIST_OPS:
            return Clause(kind, key, op, self.string_list())
        value = self.current
        if value.kind == "end":
            raise self.errors.at(value, f"missing value after {op_token.text}")
        if numeric:
            if value.kind != "number":
                raise self.errors.at(value, f"expected a number to compare {ident.text} with")
            self.advance()
            return Clause(kind, key, op, float(value.text))
        if value.kind != "string" or value.text.startswith("`"):
            raise self.errors.at(
                value, f"expected a quoted string (e.g. 'value') to compare {ident.text} with"
            )
        self.advance()
        return Clause(kind, key, op, value.value)

    def comparator(self) -> str:
        token = self.current
        if token.kind == "op":
            self.advance()
            if token.text in ("==", "<>"):
                fix = "=" if token.text == "==" else "!="
                raise self.errors.at(token, f"unknown comparator {token.text}; use {fix}")
            return token.text
        word = token.text.upper() if token.kind == "word" else ""
        if word in ("LIKE", "ILIKE", "IN"):
            self.advance()
            return word
        if word == "NOT":
            self.advance()
            if self.at_keyword("IN"):
                self.advance()
                return "NOT IN"
            raise self.errors.at(self.current, "NOT must be followed by IN")
        if word == "IS":
            self.advance()
            negated = self.at_keyword("NOT")
            if negated:
                self.advance()
            if not self.at_keyword("NULL"):
                raise self.errors.at(self.current, "expected NULL after IS / IS NOT")
            self.advance()
            return "IS NOT NULL" if negated else "IS NULL"
        if token.kind == "end":
            raise self.errors.at(token, "missing comparator")
        raise self.errors.at(token, "expected a comparator (=, !=, <, <=, >, >=, LIKE, ILIKE, IN)")

    def string_list(self) -> tuple[str, ...]:
        self.expect_punct("(", "expected '(' to open the list of values")
        values: list[str] = []
        while True:
            token = self.current
            if token.kind != "string" or token.text.startswith("`"):
                raise self.errors.at(token, "expected a quoted string in the list")
            values.append(self.advance().value)
            if self.current.kind == "punct" and self.current.text == ",":
                self.advance()
                continue
            self.expect_punct(")", "expected ',' or ')' in the list of values")
            return tuple(values)

    def filter(self) -> list[Clause]:
        if self.at_end():
            return []
        clauses = [self.clause()]
        while not self.at_end():
            if self.at_keyword("OR"):
                raise self.errors.at(self.current, "only AND is supported")
            if not self.at_keyword("AND"):
                raise self.errors.at(self.current, "expected AND or the end of the filter")
            self.advance()
            clauses.append(self.clause())
        return clauses

    def order_key(self) -> OrderKey:
        kind, key, _ = self.identifier(for_order=True)
        ascending = True
        if self.at_keyword("ASC", "DESC"):
            ascending = self.advance().text.upper() == "ASC"
        elif not self.at_end():
            raise self.errors.at(self.current, "expected ASC, DESC or the end of the clause")
        if not self.at_end():
            raise self.errors.at(self.current, "unexpected text after the sort direction")
        return OrderKey(kind, key, ascending)


def parse_filter(filter_string: str | None, grammar: Grammar = RUNS) -> list[Clause]:
    """Parse an MLflow filter for ``grammar``'s search (runs by default); ``None``, ``""``
    or whitespace mean no clauses."""
    if filter_string is None:
        return []
    return _Parser(filter_string, "filter", grammar).filter()


def parse_order_by(items: list[str] | None, grammar: Grammar = RUNS) -> list[OrderKey]:
    """Parse ``order_by`` items such as ``"metrics.rmse ASC"`` or ``"start_time"``.

    Positions in errors are within the offending item; an identifier given twice is refused
    (as MLflow does), since the second would never change the order.
    """
    keys: list[OrderKey] = []
    for item in items or []:
        parser = _Parser(item, f"order_by item {item!r}", grammar)
        if parser.at_end():
            raise parser.errors.at(parser.current, "empty order_by item")
        key = parser.order_key()
        if any((k.kind, k.key) == (key.kind, key.key) for k in keys):
            raise parser.errors.at(parser.tokens[0], "this key is already in order_by")
        keys.append(key)
    return keys


def render_key(kind: Kind, key: str) -> str:
    """The canonical identifier text for ``kind``/``key``; backticks only when needed."""
    if _BARE_KEY.fullmatch(key):
        return f"{_PREFIX[kind]}.{key}"
    return f"{_PREFIX[kind]}.`{key.replace('`', '``')}`"


def _render_value(value: Value) -> str:
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, tuple):
        return "(" + ", ".join(_render_value(v) for v in value) + ")"
    return quote(str(value))


def quote(value: str, *, last: bool = False) -> str:
    """``value`` as a quoted filter string that parses back to it.

    A backslash before a quote does not end a string (MLflow's rule), so a value with a
    backslash before a quote is written in the other quotes. One that ends in a backslash
    can be written only as the ``last`` quoted text of a filter (the string then ends at
    the final quote); elsewhere it cannot be written at all, in MLflow's grammar either.
    """
    for char in "'\"":
        if "\\" + char not in value and (last or not value.endswith("\\")):
            return char + value.replace(char, char * 2) + char
    raise InvalidParameter(
        f"the value {value!r} cannot be written in a filter: it ends in a backslash or holds "
        "a backslash before both kinds of quote",
        field="filter",
    )


def render_filter(clauses: list[Clause]) -> str:
    """The canonical filter text for ``clauses``; ``parse_filter`` gives them back.

    Raises InvalidParameter for a value :func:`quote` cannot write."""
    parts = []
    for clause in clauses:
        text = f"{render_key(clause.kind, clause.key)} {clause.op}"
        if clause.value is not None:
            text += f" {_render_value(clause.value)}"
        parts.append(text)
    return " AND ".join(parts)
