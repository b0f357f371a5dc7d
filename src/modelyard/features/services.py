"""Feature services attached to model versions, so serving can look features up by key.

The serving layer asks ``service_of_model(db, "demand", "3")`` and then reads that
service's features for each request's entity keys. The binding names the service version
that was current when it was attached, and a lineage edge
``feature_service:<name>@<v> → model:<name>/<version>`` records it.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, select

from modelyard.errors import InvalidParameter, NotFound
from modelyard.features.catalog import Catalog
from modelyard.features.tables import feature_service_models
from modelyard.ids import now_ms
from modelyard.store.engine import Database
from modelyard.store.lineage import node, record_edges


@dataclass(frozen=True)
class ServiceBinding:
    model_name: str
    model_version: str
    service: str
    service_version: int


def attach(
    db: Database, catalog: Catalog, model_name: str, model_version: str | int, service: str
) -> ServiceBinding:
    """Attach feature service ``service`` (its latest version) to a model version."""
    if not model_name or not str(model_version):
        raise InvalidParameter("name the model and its version", field="model_name")
    record = catalog.records.get(("feature_service", service))
    if record is None:
        raise NotFound(f"no feature service {service!r} is registered; apply it first")
    version = str(model_version)
    with db.write() as conn:
        c = feature_service_models.c
        conn.execute(
            delete(feature_service_models).where(
                c.model_name == model_name, c.model_version == version
            )
        )
        conn.execute(
            feature_service_models.insert().values(
                model_name=model_name,
                model_version=version,
                service=service,
                service_version=record.version,
                created_at=now_ms(),
            )
        )
        record_edges(conn, [(record.node, node("model", f"{model_name}/{version}"), "features")])
    return ServiceBinding(model_name, version, service, record.version)


def service_of_model(db: Database, model_name: str, model_version: str | int) -> ServiceBinding:
    c = feature_service_models.c
    with db.read() as conn:
        row = conn.execute(
            select(feature_service_models).where(
                c.model_name == model_name, c.model_version == str(model_version)
            )
        ).first()
    if row is None:
        raise NotFound(
            f"model {model_name} version {model_version} has no feature service attached"
        )
    return ServiceBinding(row.model_name, row.model_version, row.service, int(row.service_version))
