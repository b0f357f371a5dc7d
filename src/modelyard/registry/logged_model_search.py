"""Searching MLflow 3 logged models: MLflow's filter grammar over their attributes, tags,
params and metrics, an optional dataset restriction, and MLflow's order.

``search_logged_models(filter_string="name = 'clf' AND metrics.acc > 0.9", datasets=[…])``
from the MLflow client arrives here as clauses (``search_filter`` parses them) and
``DatasetRef`` pairs; a model matches a ``metrics.`` clause when any of its points does,
and a dataset restriction when it has a point logged on one of the datasets.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, exists, or_, select

from modelyard.errors import InvalidParameter
from modelyard.registry.tables import (
    logged_model_metrics,
    logged_model_params,
    logged_model_tags,
    logged_models,
)
from modelyard.store.keyset import SortKey
from modelyard.tracking.search_filter import ATTRIBUTE_AND_TAG_ALIASES, Clause, Grammar, Kind
from modelyard.tracking.search_query import compare, keyed_condition

_KINDS: dict[str, Kind] = {
    **ATTRIBUTE_AND_TAG_ALIASES,
    "param": "param",
    "params": "param",
    "metric": "metric",
    "metrics": "metric",
}
LOGGED_MODELS = Grammar(
    entity="logged model",
    kinds=_KINDS,
    string_attributes=("name", "model_id", "model_type", "status", "source_run_id"),
    numeric_attributes=("creation_timestamp", "last_updated_timestamp"),
    list_attributes=("name", "model_id", "status", "source_run_id"),
    attribute_aliases={
        "creation_time": "creation_timestamp",
        "last_updated_time": "last_updated_timestamp",
    },
)
#: Attribute names on the wire → columns.
_COLUMNS = {
    "name": "name",
    "model_id": "model_id",
    "model_type": "model_type",
    "status": "status",
    "source_run_id": "source_run_id",
    "creation_timestamp": "creation_time",
    "last_updated_timestamp": "last_updated_time",
}


@dataclass(frozen=True, slots=True)
class DatasetRef:
    """A dataset a search is restricted to (``digest`` None: any digest of ``name``)."""

    name: str
    digest: str | None = None


@dataclass(frozen=True, slots=True)
class ModelOrder:
    """One ``order_by`` entry as MLflow sends it: ``{field_name, ascending}``."""

    field_name: str
    ascending: bool = True


def logged_models_statement(
    experiment_ids: Sequence[int],
    clauses: Sequence[Clause],
    datasets: Sequence[DatasetRef] = (),
    order_by: Sequence[ModelOrder] = (),
) -> tuple[Select[Any], list[SortKey]]:
    """``SELECT logged_models.*`` in ``experiment_ids`` (all when empty) matching every
    clause, and its order: ``order_by``, then newest first and by id (MLflow's default)."""
    c = logged_models.c
    where: list[ColumnElement[bool]] = []
    if experiment_ids:  # none: every experiment's
        where.append(c.experiment_id.in_(list(experiment_ids)))
    for clause in clauses:
        where.append(_condition(clause))
    if datasets:
        m = logged_model_metrics.c
        on_dataset = or_(
            *(
                and_(m.dataset_name == d.name, m.dataset_digest == d.digest)
                if d.digest is not None
                else m.dataset_name == d.name
                for d in datasets
            )
        )
        where.append(exists().where(m.model_id == c.model_id, on_dataset))
    ordering: list[SortKey] = []
    named = set()
    for order in order_by:
        name = LOGGED_MODELS.attribute_aliases.get(order.field_name, order.field_name)
        if name not in _COLUMNS:
            raise InvalidParameter(
                f"Invalid order_by field name: {order.field_name!r}; a logged model search "
                f"may be ordered by {', '.join(sorted(_COLUMNS))}",
                field="order_by",
            )
        column = c[_COLUMNS[name]]
        if column.name not in named:  # a second mention of a column orders nothing
            named.add(column.name)
            ordering.append(SortKey(column, order.ascending))
    if "creation_time" not in named:
        ordering.append(SortKey(c.creation_time, False))
    if "model_id" not in named:
        ordering.append(SortKey(c.model_id, True))
    return select(logged_models).where(*where), ordering


def _condition(clause: Clause) -> ColumnElement[bool]:
    c = logged_models.c
    if clause.kind == "attribute":
        return compare(c[_COLUMNS[clause.key]], clause.op, clause.value)
    if clause.kind == "metric":
        m = logged_model_metrics.c
        return exists().where(
            m.model_id == c.model_id, m.key == clause.key, compare(m.value, clause.op, clause.value)
        )
    table = logged_model_tags if clause.kind == "tag" else logged_model_params
    return keyed_condition(table, table.c.model_id == c.model_id, clause)
