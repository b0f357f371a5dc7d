"""Packaging: a build context with pinned requirements and an entry point that serves the
folder; Kubernetes manifests valid against the Kubernetes OpenAPI schema."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml
from tests.cli.test_extras import extra_packages

from modelyard.distribution import normal_name
from modelyard.errors import InvalidParameter
from modelyard.serving import packaging
from modelyard.serving.compiled import compile_version
from modelyard.serving.packaging import (
    FolderRegistry,
    build_bundle,
    k8s_manifests,
    requirements_for,
    to_yaml,
)

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"

#: The parts of the Prometheus Operator's ServiceMonitor CRD schema the manifest uses (a
#: CRD is not in the Kubernetes OpenAPI schema that kubernetes-validate bundles).
SERVICE_MONITOR = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "ServiceMonitor"},
        "metadata": {"type": "object", "required": ["name"]},
        "spec": {
            "type": "object",
            "required": ["selector", "endpoints"],
            "additionalProperties": False,
            "properties": {
                "selector": {
                    "type": "object",
                    "properties": {"matchLabels": {"type": "object",
                                                   "additionalProperties": {"type": "string"}}},
                },
                "namespaceSelector": {
                    "type": "object",
                    "properties": {"matchNames": {"type": "array", "items": {"type": "string"}}},
                },
                "endpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "port": {"type": "string"},
                            "path": {"type": "string", "pattern": "^/"},
                            "interval": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"},
                        },
                    },
                },
            },
        },
    },
}  # fmt: skip


def test_manifests_validate_against_the_kubernetes_schema():
    documents = yaml.safe_load_all(to_yaml(k8s_manifests("web", image="reg.example/my:1")))
    documents = list(documents)
    kinds = [d["kind"] for d in documents]
    assert kinds == ["Deployment", "Service", "HorizontalPodAutoscaler", "ServiceMonitor"]
    version = kubernetes_validate.latest_version()
    for document in documents[:3]:
        kubernetes_validate.validate(document, version, strict=True)
    jsonschema.validate(documents[3], SERVICE_MONITOR)
    container = documents[0]["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    assert container["args"][:2] == ["serve", "web"]
    assert all("valueFrom" in e for e in container["env"])  # credentials from a Secret


def test_a_broken_manifest_is_caught_by_the_schema():
    deployment = k8s_manifests("web", image="x")[0]
    deployment["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, kubernetes_validate.latest_version(), strict=True)
    with pytest.raises(InvalidParameter, match="replicas"):
        k8s_manifests("web", image="x", replicas=20, max_replicas=10)


def test_bundle_pins_requirements_and_serves_its_folder(yard, tmp_path):
    yard.regressor()
    bundle = build_bundle(yard.registry, "models:/demand/1", tmp_path / "out")
    assert {"Dockerfile", "requirements.txt", "entrypoint.sh", "model/MLmodel.json"} <= set(
        bundle.files
    )
    requirements = (bundle.folder / "requirements.txt").read_text().splitlines()
    assert all("==" in line for line in requirements)
    names = {line.split("==")[0] for line in requirements}
    assert {"modelyard", "scikit-learn", "skops", "starlette", "uvicorn"} <= names
    assert "modelyard serve /app/model" in (bundle.folder / "entrypoint.sh").read_text()
    assert "EXPOSE 8080" in (bundle.folder / "Dockerfile").read_text()
    folder = FolderRegistry(bundle.folder / "model")
    assert (folder.version.name, folder.version.version) == ("demand", 1)
    assert folder.load_model("models:/demand/1").predict(
        yard.registry.load_model("models:/demand/1").input_example()
    ).shape == (20,)
    with pytest.raises(InvalidParameter, match="not empty"):
        build_bundle(yard.registry, "models:/demand/1", tmp_path / "out")


def test_the_grafana_dashboard_queries_metrics_the_data_plane_exports():
    import json
    import re
    from pathlib import Path

    from prometheus_client import generate_latest

    from modelyard.server.inference.metrics import InferenceMetrics

    dashboard = json.loads(
        (Path(__file__).parents[2] / "deploy" / "grafana-dashboard.json").read_text()
    )
    queried = {
        name
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])  # a row has none
        for name in re.findall(r"modelyard_inference_\w+", target["expr"])
    }
    metrics = InferenceMetrics()
    metrics.answered("web", "primary", "1", "oip", 200, 0.001)
    metrics.in_flight_for("web").inc()
    metrics.log_written_for("web").inc()
    for hook in (
        lambda: metrics.model_loaded("web", "m", 1, 0.5),
        lambda: metrics.batch("web", "m", 1, 4),
        lambda: metrics.shadow("web", "s", 2, False, 0.0),
        lambda: metrics.log_dropped("web", "queue_full", 1),
        lambda: metrics.revision("web", 3),
        lambda: metrics.automatic("web", "rollback", "why"),
        lambda: metrics.contract_violation("web", "flag"),
    ):
        hook()
    exported = set(re.findall(r"^(modelyard_inference_\w+?)(?:\{| )",
                              generate_latest(metrics.registry).decode(), re.M))  # fmt: skip
    assert queried and queried <= exported, queried - exported


def pins(text: str) -> dict[str, str]:
    """requirements.txt → package → its line."""
    return {normal_name(re.match(r"[\w.-]+", line).group(0)): line for line in text.splitlines()}


def test_the_bundle_pins_what_the_serving_extra_and_modelyard_require_as_installed_here():
    declared = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    required = {normal_name(re.match(r"[\w.-]+", line).group(0)) for line in declared}
    lines = pins(requirements_for({}))
    assert set(lines) == {"modelyard"} | required | extra_packages()["serving"]
    for name, line in lines.items():
        if name != "modelyard":
            assert line.split(";")[0] == f"{name}=={metadata.version(name)}"
    assert lines["uvloop"].endswith("; sys_platform != 'win32'")  # markers are kept
    assert not {"skl2onnx", "onnxmltools", "onnxruntime", "plotly"} & set(lines)


def test_the_models_own_requirements_win_and_a_package_not_installed_here_keeps_its_range(
    monkeypatch,
):
    monkeypatch.setattr(
        packaging, "_installed", lambda name: None if name == "uvloop" else metadata.version(name)
    )
    lines = pins(requirements_for({"requirements": {"scikit-learn": "1.4.2", "lightgbm": "4.5"}}))
    assert lines["scikit-learn"] == "scikit-learn==1.4.2"
    assert lines["lightgbm"] == "lightgbm==4.5"
    assert lines["uvloop"] == "uvloop>=0.19; sys_platform != 'win32'"


def test_a_compiled_version_brings_onnxruntime_into_its_image(yard, tmp_path):
    yard.regressor(trees=10)
    plain = build_bundle(yard.registry, "models:/demand/1", tmp_path / "plain")
    assert "onnxruntime" not in pins((plain.folder / "requirements.txt").read_text())
    assert compile_version(yard.registry, "demand", 1).enabled
    compiled = build_bundle(yard.registry, "models:/demand/1", tmp_path / "compiled")
    lines = pins((compiled.folder / "requirements.txt").read_text())
    assert lines["onnxruntime"] == f"onnxruntime=={metadata.version('onnxruntime')}"
    assert "skl2onnx" not in lines  # converting happened here, at deploy time
