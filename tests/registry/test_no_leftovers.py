"""Loading models leaves nothing in the temporary directory: not after a load, not after a
refused or failed download, however often a server retries."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from sqlalchemy import text

from modelyard.errors import IntegrityViolation


def entries() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).glob("modelyard-*")}


def test_loading_a_model_again_and_again_leaves_no_folder(local_yard, local_run_id):
    local_yard.registry.register_model(f"runs:/{local_run_id}/model", "churn")
    before = entries()
    for uri in ["models:/churn/1", f"runs:/{local_run_id}/model"] * 3:
        loaded = local_yard.registry.load_model(uri)
        assert loaded.input_example() is not None  # still readable: held in memory
    assert entries() == before


def test_a_refused_download_leaves_no_folder(local_yard, local_run_id):
    registry = local_yard.registry
    version = registry.register_model(f"runs:/{local_run_id}/model", "churn")
    other = registry.artifacts.log_bytes("x/other.bin", b"other").digest
    with registry.db.write() as conn:
        conn.execute(
            text("UPDATE artifact_entries SET digest = :d WHERE path = :p"),
            {"d": other, "p": f"{version.storage_location}/MLmodel.json"},
        )
    before = entries()
    for _ in range(3):
        with pytest.raises(IntegrityViolation):
            registry.load_model("models:/churn/1")
        with pytest.raises(IntegrityViolation):
            registry.download_model("models:/churn/1")
    assert entries() == before
