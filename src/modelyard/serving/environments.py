"""Environments (staging, production, any name) and the admission rules that guard them.

An environment may ``require`` another: a version serves users there only after it
served users in the required one (production ← staging). A ``protected`` environment
also applies the registry's promotion policy (approvals, quality gate). Refusals name the
missing condition. ``deployment_versions`` remembers where each version has served.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select

from modelyard.errors import AlreadyExists, InvalidState, NotFound
from modelyard.registry.entities import Actor, ModelVersion
from modelyard.serving.policy import TrafficPolicy
from modelyard.serving.tables import deployment_versions, serving_environments
from modelyard.store.engine import Database

#: The environments every store starts with: production admits only what staging served,
#: and applies the registry's promotion policy.
DEFAULT_ENVIRONMENTS = (
    ("staging", None, False, "Pre-production: any registered version may be deployed."),
    ("production", "staging", True, "Versions that served in staging and may be promoted."),
)


@dataclass(frozen=True, slots=True)
class Environment:
    name: str
    requires: str | None
    protected: bool
    description: str | None
    created_at: int


class Environments:
    """The environments of one metadata database."""

    def __init__(self, db: Database, clock: Callable[[], int]) -> None:
        self.db = db
        self.clock = clock
        self._defaults_ready = False

    def ensure_defaults(self) -> None:
        if self._defaults_ready:
            return
        with self.db.write() as conn:
            have = set(conn.execute(select(serving_environments.c.name)).scalars())
            created = self.clock()
            for i, (name, requires, protected, description) in enumerate(DEFAULT_ENVIRONMENTS):
                if name not in have:
                    conn.execute(
                        serving_environments.insert().values(
                            name=name,
                            requires=requires,
                            protected=protected,
                            description=description,
                            # One millisecond apart, so they list in promotion order
                            # (created in the same millisecond, they sorted by name).
                            created_at=created + i,
                        )
                    )
        self._defaults_ready = True

    def create(
        self, name: str, *, requires: str | None, protected: bool, description: str | None
    ) -> Environment:
        self.ensure_defaults()
        with self.db.write() as conn:
            if requires is not None:
                self.get_in(conn, requires)
            if conn.execute(
                select(serving_environments.c.name).where(serving_environments.c.name == name)
            ).first():
                raise AlreadyExists(f"environment {name!r} already exists", field="name")
            conn.execute(
                serving_environments.insert().values(
                    name=name,
                    requires=requires,
                    protected=protected,
                    description=description,
                    created_at=self.clock(),
                )
            )
        return self.get(name)

    def get(self, name: str) -> Environment:
        self.ensure_defaults()
        with self.db.read() as conn:
            return self.get_in(conn, name)

    def list(self) -> list[Environment]:
        self.ensure_defaults()
        with self.db.read() as conn:
            rows = conn.execute(select(serving_environments).order_by("created_at", "name"))
            return [Environment(**row._mapping) for row in rows]

    @staticmethod
    def get_in(conn: Connection, name: str) -> Environment:
        row = conn.execute(
            select(serving_environments).where(serving_environments.c.name == name)
        ).first()
        if row is None:
            names = conn.execute(select(serving_environments.c.name)).scalars().all()
            raise NotFound(
                f"no environment {name!r}; there are {', '.join(sorted(names))} (create one "
                "with `modelyard deploy env NAME`)",
                field="environment",
            )
        return Environment(**row._mapping)

    def record_served(
        self, conn: Connection, name: str, env: Environment, policy: TrafficPolicy, revision: int
    ) -> None:
        """Remember that the policy's variants served users in ``env`` (shadows do not)."""
        for variant in policy.variants:
            if served_in(conn, variant.model, variant.version, env.name) is None:
                conn.execute(
                    deployment_versions.insert().values(
                        model_name=variant.model,
                        model_version=variant.version,
                        environment=env.name,
                        deployment=name,
                        first_revision=revision,
                        created_at=self.clock(),
                    )
                )


def served_in(conn: Connection, model: str, version: int, environment: str) -> str | None:
    """A deployment through which ``model`` ``version`` served in ``environment``, or None."""
    c = deployment_versions.c
    return conn.execute(
        select(c.deployment).where(
            c.model_name == model, c.model_version == version, c.environment == environment
        )
    ).scalar()


def admit(
    conn: Connection,
    env: Environment,
    versions: Sequence[ModelVersion],
    registry: Any,
    actor: Actor,
) -> None:
    """Raise, naming the missing condition, unless every version may serve in ``env``."""
    for version in versions:
        where = f"{version.name} version {version.version}"
        if env.requires is not None:
            served = served_in(conn, version.name, version.version, env.requires)
            if served is None:
                raise InvalidState(
                    f"{where} cannot enter {env.name}: it has not been deployed in "
                    f"{env.requires} yet (deploy it there first: `modelyard deploy create "
                    f"NAME {version.uri} --env {env.requires}`)",
                    field="environment",
                )
        if env.protected:
            approvals = registry.list_approvals(version.name, version.version)
            try:
                verdict = registry.latest_gate_verdict(version.name, version.version)
                registry.policy.check_promotion(actor, version, approvals, verdict)
            except InvalidState as exc:
                raise InvalidState(
                    f"{where} cannot enter {env.name}: {exc.message}", field=exc.field
                ) from None
