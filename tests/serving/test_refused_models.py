"""Serving a version whose model file is refused (a skops gadget, without ``--trusted``):
nothing runs, the refusal is reported once and in every answer, and the file is not fetched
and audited again at every poll."""

from __future__ import annotations

import asyncio
import json
import logging
import zipfile
from pathlib import Path

import pytest

from modelyard.errors import PermissionDenied
from modelyard.serving.loading import load_version
from modelyard.serving.runtime import ModelTarget, NotReady, ServingOptions, ServingRuntime

RUNSTRING = "numpy.testing._private.utils.runstring"


def gadget_version(yard, sandbox: Path) -> None:
    """Register a model whose file calls ``runstring`` (exec) on load, and whose manifest
    says that type was recorded at save."""
    import skops
    from skops.io._protocol import PROTOCOL

    module, name = RUNSTRING.rsplit(".", 1)
    code = f"open({str(sandbox / 'ran')!r}, 'w').write('ran')"
    arg = {"__class__": "str", "__module__": "builtins", "__loader__": "JsonNode"}
    schema = {
        "__class__": name,
        "__module__": module,
        "__loader__": "ConstructorFromReduceNode",
        "content": {
            "__class__": "tuple",
            "__module__": "builtins",
            "__loader__": "TupleNode",
            "content": [{**arg, "content": json.dumps(code), "is_json": True}],
        },
        "protocol": PROTOCOL,
        "_skops_version": skops.__version__,
    }
    folder = yard.tmp / "gadget"
    folder.mkdir()
    with zipfile.ZipFile(folder / "model.skops", "w") as zf:
        zf.writestr("schema.json", json.dumps(schema))
    manifest = {
        "flavor": "sklearn",
        "model_file": "model.skops",
        "serialization_format": "skops",
        "untrusted_types": [RUNSTRING],
    }
    (folder / "MLmodel.json").write_text(json.dumps(manifest))
    experiment = yard.tracking.get_or_create_experiment("serving").experiment_id
    run_id = yard.tracking.create_run(experiment).info.run_id
    yard.tracking.log_artifacts(run_id, folder, "model")
    yard.registry.register_model(f"runs:/{run_id}/model", "gadget")


@pytest.fixture
def sandbox(tmp_path) -> Path:
    (tmp_path / "sandbox").mkdir()
    return tmp_path / "sandbox"


def test_loading_a_gadget_version_is_refused_and_runs_nothing(yard, sandbox):
    gadget_version(yard, sandbox)

    with pytest.raises(PermissionDenied, match=RUNSTRING.replace(".", r"\.")):
        load_version(yard.registry, "gadget", 1, compiled=False)
    assert list(sandbox.iterdir()) == []


def test_the_runtime_reports_the_refusal_once_and_does_not_fetch_it_again(
    yard, sandbox, caplog, monkeypatch
):
    gadget_version(yard, sandbox)
    fetched = []
    download = yard.registry.download_model
    monkeypatch.setattr(
        yard.registry, "download_model", lambda *a, **k: fetched.append(a) or download(*a, **k)
    )
    options = ServingOptions(poll_interval_s=0.05, compiled=False)
    runtime = ServingRuntime(ModelTarget(yard.registry, "models:/gadget/1"), yard.registry,
                             options=options)  # fmt: skip

    async def serve_a_while() -> None:
        await runtime.start()
        await asyncio.sleep(0.6)  # about ten polls
        try:
            with pytest.raises(NotReady, match="refused") as caught:
                runtime.current()
            assert RUNSTRING in str(caught.value)
            assert "retry" not in str(caught.value)
        finally:
            await runtime.stop()

    with caplog.at_level(logging.WARNING, logger="modelyard.serving"):
        asyncio.run(serve_a_while())

    assert list(sandbox.iterdir()) == []
    assert len(fetched) == 1
    refusals = [r for r in caplog.records if RUNSTRING in r.getMessage()]
    assert len(refusals) == 1
    assert refusals[0].levelno == logging.ERROR
