"""``modelyard build`` and ``modelyard k8s``: packaging for scale.

modelyard build models:/churn/3 --out build/churn-3     # Dockerfile + pins + entry point
docker build -t churn:3 build/churn-3
modelyard k8s web --image registry.example/modelyard:0.1 > web.yaml     # the data plane
modelyard k8s server --image registry.example/modelyard:0.1 \\
    --store-uri postgresql+psycopg://modelyard@db/modelyard \\
    --store-password-secret modelyard-db:password \\
    --artifacts-uri s3://ml/modelyard --s3-secret modelyard-s3 > server.yaml  # the control plane
kubectl apply -f web.yaml -f server.yaml

``modelyard k8s`` names what the pods run: ``k8s serve DEPLOYMENT`` (``modelyard serve``)
or ``k8s server`` (``modelyard server``); ``k8s DEPLOYMENT`` stays short for ``k8s serve
DEPLOYMENT``, so ``server`` and ``serve`` are the only names that need the long form.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from modelyard.cli.help_format import PlainHelpGroup

if TYPE_CHECKING:
    from typer import _click as click

#: The control plane's name; a serving deployment of that name is ``k8s serve server``.
CONTROL_PLANE = "server"


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
    """The data plane's manifests: Deployment, Service, HPA and ServiceMonitor.

    Example:
    $ modelyard k8s serve web --image registry.example/modelyard:0.1 > web.yaml
    $ modelyard k8s web --image registry.example/modelyard:0.1 > web.yaml   # the same
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
    _write(text, out)


def _write(text: str, out: Path | None) -> None:
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text)
        typer.echo(f"wrote {out}")


def _secret(text: str | None, option: str) -> Any:
    from modelyard.server.control.k8s import SecretRef

    return None if text is None else SecretRef.parse(text, option)


def k8s_server(
    ctx: typer.Context,
    image: str = typer.Option(
        ..., "--image", help="An image with modelyard and its server, postgres and s3 extras."
    ),
    store_uri_secret: str | None = typer.Option(
        None,
        "--store-uri-secret",
        metavar="NAME:KEY",
        help="Read the whole metadata store URI from this Secret's key (instead of --store-uri).",
    ),
    store_password_secret: str | None = typer.Option(
        None,
        "--store-password-secret",
        metavar="NAME:KEY",
        help="Read the database password (PGPASSWORD) from this Secret's key.",
    ),
    artifacts_uri_secret: str | None = typer.Option(
        None,
        "--artifacts-uri-secret",
        metavar="NAME:KEY",
        help="Read the artifact store URI from this Secret's key (instead of --artifacts-uri).",
    ),
    s3_secret: str | None = typer.Option(
        None,
        "--s3-secret",
        metavar="NAME",
        help="A Secret with the keys AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (omit for "
        "a service account's role).",
    ),
    s3_endpoint_url: str | None = typer.Option(
        None, "--s3-endpoint-url", metavar="URL", help="An S3-compatible store's endpoint."
    ),
    service_account: str | None = typer.Option(
        None, "--service-account", help="The pods' service account (e.g. for IRSA)."
    ),
    name: str = typer.Option("modelyard-server", "--name", help="Name of the objects."),
    namespace: str = typer.Option("default", "--namespace", help="Kubernetes namespace."),
    replicas: int = typer.Option(
        2, "--replicas", min=1, help="Pods to run at least (the autoscaler's minimum)."
    ),
    max_replicas: int = typer.Option(
        6, "--max-replicas", min=1, help="Most pods the autoscaler (HPA) may run."
    ),
    workers: int = typer.Option(2, "--workers", min=1, help="Server processes per pod."),
    cpu: str = typer.Option("1", "--cpu", help="CPU each pod requests."),
    memory: str = typer.Option("1Gi", "--memory", help="Memory each pod requests and may use."),
    auth: bool = typer.Option(
        False, "--auth", help="Require API tokens (modelyard server --auth)."
    ),
    service_monitor: bool = typer.Option(
        False, "--service-monitor", help="Add a Prometheus Operator ServiceMonitor for /metrics."
    ),
    out: Path | None = typer.Option(None, "--out", help="File to write (default: stdout)."),
) -> None:
    r"""The control plane's manifests: a migration Job, Deployment, Service, HPA, PDB.

    The stores: the global --store-uri (PostgreSQL, no password in it)
    and --artifacts-uri (s3://), or their -secret forms. Credentials come
    from Secrets by reference, never written into the manifests. Each
    release gets a Job running `modelyard db upgrade`; the server pods
    wait for it in an init container (`modelyard db wait`).

    Example:
    $ modelyard k8s server --image registry.example/modelyard:0.1 \
        --store-uri postgresql+psycopg://modelyard@db.internal/modelyard \
        --store-password-secret modelyard-db:password \
        --artifacts-uri s3://ml-artifacts/modelyard --s3-secret modelyard-s3 > server.yaml
    $ kubectl apply -f server.yaml
    """
    from modelyard.errors import InvalidParameter
    from modelyard.server.control.k8s import ControlPlaneStores, control_plane_manifests
    from modelyard.serving.packaging import to_yaml

    overrides = getattr(ctx.obj, "overrides", None) or {}
    store_uri, artifacts_uri = overrides.get("store_uri"), overrides.get("artifacts_uri")
    if store_uri is None and store_uri_secret is None:
        raise InvalidParameter(
            "modelyard k8s server writes the control plane's manifests: give its metadata "
            "store with --store-uri postgresql+psycopg://USER@HOST/DB (and "
            "--store-password-secret NAME:KEY) or --store-uri-secret NAME:KEY. For a serving "
            "deployment named 'server', run `modelyard k8s serve server --image …`",
            field="--store-uri",
        )
    stores = ControlPlaneStores(
        store_uri=None if store_uri is None else str(store_uri),
        store_uri_secret=_secret(store_uri_secret, "--store-uri-secret"),
        store_password_secret=_secret(store_password_secret, "--store-password-secret"),
        artifacts_uri=None if artifacts_uri is None else str(artifacts_uri),
        artifacts_uri_secret=_secret(artifacts_uri_secret, "--artifacts-uri-secret"),
        s3_secret=s3_secret,
        s3_endpoint_url=s3_endpoint_url,
    )
    documents = control_plane_manifests(
        name,
        image=image,
        stores=stores,
        namespace=namespace,
        replicas=replicas,
        max_replicas=max_replicas,
        workers=workers,
        cpu=cpu,
        memory=memory,
        auth=auth,
        service_account=service_account,
        scrape_interval="15s" if service_monitor else None,
    )
    _write(to_yaml(documents), out)


class K8sGroup(PlainHelpGroup):
    """``modelyard k8s``'s group: a first word that names no subcommand is a deployment,
    so ``modelyard k8s web …`` keeps meaning ``modelyard k8s serve web …``."""

    def resolve_command(self, ctx: click.Context, args: list[str]) -> Any:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["serve", *args]
        return super().resolve_command(ctx, args)


k8s_app = typer.Typer(
    cls=K8sGroup,
    help="Kubernetes manifests: the data plane (serve DEPLOYMENT) or the control plane "
    "(server).\n\n`modelyard k8s DEPLOYMENT` is short for `modelyard k8s serve DEPLOYMENT`.",
    no_args_is_help=True,
)
k8s_app.command("serve")(k8s)
k8s_app.command(CONTROL_PLANE)(k8s_server)
