"""Many processes promoting at once never leave two Production versions or a dangling alias.

Real OS processes (not threads) hammer one registry: promoters move random versions to
Production and point ``champion`` at them, while a janitor deletes versions those aliases
may name. Every operation either applies whole or fails with a domain error; none fails
with a database error, and the invariants and the audit chain hold at the end.
"""

from __future__ import annotations

import subprocess
import sys

from sqlalchemy import text

WORKERS = 4
VERSIONS = 8
ROUNDS = 10

WORKER = """
import random, sys
from modelyard.config import Settings
from modelyard.errors import InvalidState, NotFound
from modelyard.registry.client import RegistryClient

home, store_uri, worker, rounds, versions = sys.argv[1:6]
settings = Settings(home=home, store_uri=store_uri or None, user=f"worker-{worker}")
registry = RegistryClient.from_settings(settings)
rng = random.Random(int(worker))
unexpected = 0
for _ in range(int(rounds)):
    version = rng.randint(1, int(versions))
    try:
        if worker == "0":  # the janitor
            registry.delete_model_version("churn", version)
            continue
        if registry.get_model_version("churn", version).stage.value != "Staging":
            registry.transition_model_version_stage("churn", version, "Staging")
        registry.transition_model_version_stage("churn", version, "Production")
        registry.set_registered_model_alias("churn", "champion", version)
    except (InvalidState, NotFound):
        pass  # someone else moved or deleted it first: a normal outcome
    except Exception as exc:
        unexpected += 1
        print(f"worker {worker}: {type(exc).__name__}: {exc}", file=sys.stderr)
sys.exit(min(unexpected, 100))
"""


def test_concurrent_promotions_keep_one_production_version_and_no_dangling_alias(yard, run_id):
    for _ in range(VERSIONS):
        yard.registry.register_model(f"runs:/{run_id}/model", "churn")
    settings = yard.settings
    args = [str(settings.home), settings.store_uri or "", "", str(ROUNDS), str(VERSIONS)]

    processes = []
    for worker in range(WORKERS):
        argv = [*args[:2], str(worker), *args[3:]]
        processes.append(
            subprocess.Popen(
                [sys.executable, "-c", WORKER, *argv],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    outcomes = [(p.wait(timeout=120), p.stderr.read()) for p in processes]
    for p in processes:
        p.stdout.close()
        p.stderr.close()

    assert [code for code, _ in outcomes] == [0] * WORKERS, "\n".join(e for _, e in outcomes)
    with yard.registry.db.read() as conn:
        productions = conn.execute(
            text("SELECT count(*) FROM model_versions WHERE stage = 'Production'")
        ).scalar()
        dangling = conn.execute(
            text(
                "SELECT a.alias FROM model_aliases a LEFT JOIN model_versions v "
                "ON v.name = a.name AND v.version = a.version WHERE v.version IS NULL"
            )
        ).all()
    assert productions <= 1
    assert dangling == []
    result = yard.registry.verify_audit()
    assert result.ok, str(result)
    promotions = [
        e for e in yard.registry.audit_log("churn") if (e.after or {}).get("stage") == "Production"
    ]
    assert promotions, "no promotion succeeded: the test exercised nothing"
