"""``modelyard build`` and ``modelyard k8s``: packaging for scale.

modelyard build models:/churn/3 --out build/churn-3     # Dockerfile + pins + entry point
docker build -t churn:3 build/churn-3
modelyard k8s web --image registry.example/modelyard:0.1 > web.yaml
kubectl apply -f web.yaml
"""

from __future__ import annotations

from pathlib import Path

import typer


def build(
    ctx: typer.Context,
    model_uri: str = typer.Argument(..., help="models:/NAME/VERSION"),
    out: Path | None = typer.Option(None, "--out", help="Folder to write (default: build/NAME-V)."),
) -> None:
    """Write a container build context serving one model version.

    Example:
    $ modelyard build models:/churn/3 --out build/churn-3
    $ docker build -t churn:3 build/churn-3
    """
    from modelyard.registry.client import RegistryClient
    from modelyard.serving.packaging import build_bundle

    registry = RegistryClient.from_settings(ctx.obj.settings())
    version = registry.resolve(model_uri).version
    folder = out or Path("build") / (f"{version.name}-{version.version}" if version else "model")
    bundle = build_bundle(registry, model_uri, folder)
    typer.echo(f"wrote {len(bundle.files)} files to {bundle.folder}")
    typer.echo(f"next: docker build -t {bundle.image_hint} {bundle.folder}")


def k8s(
    ctx: typer.Context,
    deployment: str = typer.Argument(..., help="Deployment name."),
    image: str = typer.Option(
        ..., "--image", help="An image with modelyard and its serving extra installed."
    ),
    namespace: str = typer.Option("default", "--namespace", help="Kubernetes namespace."),
    replicas: int = typer.Option(
        2, "--replicas", min=1, help="Pods to run at least (the autoscaler's minimum)."
    ),
    max_replicas: int = typer.Option(
        10, "--max-replicas", min=1, help="Most pods the autoscaler (HPA) may run."
    ),
    workers: int = typer.Option(1, "--workers", min=1, help="Server processes per pod."),
    out: Path | None = typer.Option(None, "--out", help="File to write (default: stdout)."),
) -> None:
    """Kubernetes manifests: Deployment, Service, HPA and ServiceMonitor.

    Example:
    $ modelyard k8s web --image registry.example/modelyard:0.1 > web.yaml
    $ kubectl apply -f web.yaml
    """
    from modelyard.serving.deployments import DeploymentService
    from modelyard.serving.packaging import k8s_manifests, to_yaml

    DeploymentService.from_settings(ctx.obj.settings()).get(deployment)  # must exist
    text = to_yaml(
        k8s_manifests(
            deployment,
            image=image,
            namespace=namespace,
            replicas=replicas,
            max_replicas=max_replicas,
            workers=workers,
        )
    )
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text)
        typer.echo(f"wrote {out}")
