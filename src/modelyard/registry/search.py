"""Registered-model and model-version search: their grammars, and the SQL they compile to.

The filter and ``order_by`` text is MLflow's, parsed by the one parser
(``tracking/search_filter.py``) with the grammars below; the clauses become one
SQLAlchemy Core ``SELECT`` with the comparisons run search uses (``=``, ``!=`` and ``IN``
case-sensitive, ``LIKE`` too, ``ILIKE`` not; a tag clause needs the tag to be there)::

    >>> from modelyard.tracking.search_filter import parse_filter
    >>> [c.key for c in parse_filter("name LIKE 'churn%' AND tags.team = 'x'", MODEL_VERSIONS)]
    ['name', 'team']

As MLflow's server does, searches hide prompts (models tagged ``mlflow.prompt.is_prompt =
'true'``) unless the filter asks for them (``tags.`mlflow.prompt.is_prompt` = 'true'``),
so the clause MLflow's client appends to every model search
(``tags.`mlflow.prompt.is_prompt` != 'true'``) also matches models without that tag.
"""

from __future__ import annotations

from collections.abc import Container
from typing import Any

from sqlalchemy import ColumnElement, Connection, Select, and_, exists, not_, select

from modelyard.registry import tables as t
from modelyard.store.keyset import SortKey
from modelyard.tracking.search_filter import (
    ATTRIBUTE_AND_TAG_ALIASES,
    Clause,
    Grammar,
    OrderKey,
)
from modelyard.tracking.search_query import compare, keyed_condition
from modelyard.tracking.tag_probe import checked_per_row, plan_tags

REGISTERED_MODELS = Grammar(
    entity="registered model",
    kinds=ATTRIBUTE_AND_TAG_ALIASES,
    string_attributes=("name",),
    list_attributes=("name",),
    attribute_aliases={"timestamp": "last_updated_timestamp"},
    order_attributes=("name", "creation_timestamp", "last_updated_timestamp"),
)
MODEL_VERSIONS = Grammar(
    entity="model version",
    kinds=ATTRIBUTE_AND_TAG_ALIASES,
    string_attributes=("name", "run_id", "source_path"),
    numeric_attributes=("version_number",),
    list_attributes=("name", "run_id"),
    order_attributes=("name", "version_number", "creation_timestamp", "last_updated_timestamp"),
)

#: The tag MLflow marks prompts with (prompts are registered models to its registry).
IS_PROMPT_TAG = "mlflow.prompt.is_prompt"
#: Attribute names on the wire → columns.
_COLUMNS = {
    "name": "name",
    "run_id": "run_id",
    "source_path": "source",
    "version_number": "version",
    "creation_timestamp": "creation_time",
    "last_updated_timestamp": "last_updated_time",
}


def registered_models_statement(
    clauses: list[Clause], order_by: list[OrderKey], common: Container[Clause] = ()
) -> tuple[Select[Any], list[SortKey]]:
    """``SELECT registered_models.*`` matching every clause, and its order: ``order_by``,
    then by name (unique, so pages can seek: ``store/keyset.py``). The tag clauses in
    ``common`` are tested row by row (``tag_probe.checked_per_row``)."""
    models, tags = t.registered_models, t.registered_model_tags
    same_model = tags.c.name == models.c.name
    # a primary-key lookup per model
    prompt = exists().where(same_model, tags.c.key == IS_PROMPT_TAG, tags.c.value == "true")
    where = _where(models, clauses, tags, same_model, not_(prompt), common)
    return select(models).where(*where), _ordering(models, order_by, [("name", True)])


def model_versions_statement(
    clauses: list[Clause], order_by: list[OrderKey], common: Container[Clause] = ()
) -> tuple[Select[Any], list[SortKey]]:
    """``SELECT model_versions.*`` matching every clause, and its order: ``order_by``, then
    by name and newest version first (the primary key, so pages can seek); ``common`` as
    for ``registered_models_statement``."""
    versions, tags = t.model_versions, t.model_version_tags
    same_version = and_(tags.c.name == versions.c.name, tags.c.version == versions.c.version)
    # MLflow hides every version of a model one of whose versions is a prompt: one probe
    # of ix_model_version_tags_key_name per version read (an uncorrelated list of prompt
    # names let SQLite read it from the value index: every tag whose value is 'true')
    prompt = exists().where(
        tags.c.name == versions.c.name, tags.c.key == IS_PROMPT_TAG, tags.c.value == "true"
    )
    where = _where(versions, clauses, tags, same_version, not_(prompt), common)
    order = _ordering(versions, order_by, [("name", True), ("version", False)])
    return select(versions).where(*where), order


def registered_models_search(
    conn: Connection, clauses: list[Clause], order_by: list[OrderKey]
) -> tuple[Select[Any], list[SortKey]]:
    """``registered_models_statement``, driven by the models of its first selective tag
    clause when one keeps at most ``DRIVE_LIMIT`` (``tracking/tag_probe.py``; the clause
    itself is then left out: its models are exactly those)."""
    tags = t.registered_model_tags
    owners = [(tags.c.name, t.registered_models.c.name)]
    plan = plan_tags(conn, tags, owners, clauses, skip_keys=(IS_PROMPT_TAG,))
    query, keys = registered_models_statement(plan.rest(clauses), order_by, plan.common)
    return query if plan.drive is None else query.where(plan.drive.condition), keys


def model_versions_search(
    conn: Connection, clauses: list[Clause], order_by: list[OrderKey]
) -> tuple[Select[Any], list[SortKey]]:
    """As ``registered_models_search``, for model versions: driven by their names and
    numbers (the lists' cross product; when it holds other versions too, the clause stays
    to narrow them)."""
    tags, c = t.model_version_tags, t.model_versions.c
    owners = [(tags.c.name, c.name), (tags.c.version, c.version)]
    plan = plan_tags(conn, tags, owners, clauses, skip_keys=(IS_PROMPT_TAG,))
    query, keys = model_versions_statement(plan.rest(clauses), order_by, plan.common)
    return query if plan.drive is None else query.where(plan.drive.condition), keys


def _where(
    entity: Any,
    clauses: list[Clause],
    tags: Any,
    same_owner: ColumnElement[bool],
    not_a_prompt: ColumnElement[bool],
    common: Container[Clause],
) -> list[ColumnElement[bool]]:
    """The WHERE terms for ``clauses`` on ``entity``, whose tags are rows of ``tags``
    correlated by ``same_owner`` (those in ``common`` tested row by row); with MLflow's
    rule for prompts: unless the filter asks for them, its prompt-tag clauses are dropped
    and ``not_a_prompt`` is added."""
    asking = _asks_for_prompts(clauses)
    terms: list[ColumnElement[bool]] = []
    for clause in clauses:
        if clause.kind != "tag":
            column = entity.c[_COLUMNS[clause.key]]
            terms.append(compare(column, clause.op, clause.value))
        elif clause in common:
            terms.append(checked_per_row(tags, same_owner, clause))
        elif asking or clause.key != IS_PROMPT_TAG:
            terms.append(keyed_condition(tags, same_owner, clause))
    if not asking:
        terms.append(not_a_prompt)
    return terms


def _asks_for_prompts(clauses: list[Clause]) -> bool:
    """MLflow's test: the first clause on the prompt tag says whether to search prompts."""
    for clause in clauses:
        if clause.kind == "tag" and clause.key == IS_PROMPT_TAG:
            value = str(clause.value).lower()
            return (clause.op, value) in (("=", "true"), ("!=", "false"))
    return False


def _ordering(
    table: Any, order_by: list[OrderKey], tie_breakers: list[tuple[str, bool]]
) -> list[SortKey]:
    keys = []
    named = set()
    for key in order_by:
        column = table.c[_COLUMNS[key.key]]
        if column.name not in named:  # a second mention of a column orders nothing
            named.add(column.name)
            keys.append(SortKey(column, key.ascending))
    for name, ascending in tie_breakers:
        if name not in named:
            keys.append(SortKey(table.c[name], ascending))
    return keys


__all__ = [
    "IS_PROMPT_TAG",
    "MODEL_VERSIONS",
    "REGISTERED_MODELS",
    "model_versions_search",
    "model_versions_statement",
    "registered_models_search",
    "registered_models_statement",
]
