"""Named pipelines: registered once with checked params, started by name (by a scheduler,
an alert trigger or a person) with params over the defaults and the cause recorded."""

from __future__ import annotations

import pytest

from modelyard.errors import AlreadyExists, InvalidParameter, NotFound
from modelyard.pipelines import PipelineRegistry, load_output

from . import pipeline_yard as yard

TARGET = f"{yard.__file__}:retrying"


@pytest.fixture
def registry(backend_settings) -> PipelineRegistry:
    return PipelineRegistry(backend_settings)


def test_a_registered_pipeline_starts_by_name_with_merged_params_and_its_cause(registry, tmp_path):
    marker = tmp_path / "marker"
    marker.mkdir()
    made = registry.register(
        "nightly", TARGET, {"marker": str(marker), "failures": 5}, description="retrains"
    )
    assert (made.name, made.target, made.description) == ("nightly", TARGET, "retrains")
    assert [d.name for d in registry.list()] == ["nightly"]
    cause = {"kind": "alert", "monitor": "shop", "alert_id": 7, "rule": "drift"}
    record = registry.start("nightly", {"failures": 0}, cause=cause, executor="local")
    assert record.pipeline == "nightly" and record.cause == cause
    assert record.params == {"marker": str(marker), "failures": 0}
    assert load_output(record, "flaky", settings=registry.settings) == 1


def test_registering_checks_the_target_and_params_and_refuses_a_taken_name(registry):
    registry.register("nightly", TARGET, {"marker": "m"})
    with pytest.raises(AlreadyExists, match="already registered"):
        registry.register("nightly", TARGET)
    changed = registry.register("nightly", TARGET, {"marker": "n"}, replace=True)
    assert changed.params == {"marker": "n"}
    with pytest.raises(InvalidParameter, match="no param 'depth'"):
        registry.register("other", TARGET, {"depth": 3})
    with pytest.raises(InvalidParameter, match="not a function decorated with @pipeline"):
        registry.register("other", f"{yard.__file__}:flaky")
    with pytest.raises(NotFound, match="does not exist"):
        registry.register("other", "/no/such/flows.py:flow")
    with pytest.raises(InvalidParameter, match="pipeline name 'two words'"):
        registry.register("two words", TARGET)


def test_required_params_may_be_left_to_start(registry, tmp_path):
    registry.register("bare", TARGET)  # 'marker' has no default: start must give it
    with pytest.raises(InvalidParameter, match="missing a required argument: 'marker'"):
        registry.start("bare", executor="local")
    marker = tmp_path / "marker"
    marker.mkdir()
    record = registry.start("bare", {"marker": str(marker), "failures": 0}, executor="local")
    assert record.status == "FINISHED"


def test_unknown_names_are_not_found(registry):
    with pytest.raises(NotFound, match="no pipeline named 'ghost'"):
        registry.start("ghost")
    with pytest.raises(NotFound, match="no pipeline named 'ghost'"):
        registry.unregister("ghost")
