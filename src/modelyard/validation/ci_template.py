"""``modelyard init ci --github``: a GitHub Actions workflow that tests, trains, gates the
candidate model against the champion, and posts the gate report on the pull request.

The workflow is plain shell commands (``pytest``, ``modelyard data pull``, the training
command, ``modelyard gate``) so the same commands run on a laptop — a test does exactly
that. The stores come from repository secrets (``MODELYARD_STORE_URI``,
``MODELYARD_ARTIFACTS_URI``: a shared PostgreSQL and S3 bucket), so CI sees the champion.
The training command must register the candidate as the newest version of the model
(``modelyard.log_model(..., registered_model_name=...)``); the gate takes
``models:/NAME/latest``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from modelyard.errors import AlreadyExists, InvalidParameter

WORKFLOW_PATH = Path(".github/workflows/modelyard.yml")
REPORT_FILE = "gate-report.md"
JUNIT_FILE = "gate-junit.xml"
#: Steps that only make sense on GitHub (the local run skips them).
GITHUB_ONLY_STEPS = ("install", "comment")


@dataclass(frozen=True, slots=True)
class CiOptions:
    model: str = "demand"
    data: str = "data/eval.parquet"
    policy: str = "gate.yaml"
    train: str = "python train.py"
    tests: str = "pytest -q"
    python: str = "3.11"
    install: str = 'pip install "modelyard[data,sklearn]"'
    branch: str = "main"
    contract: str | None = None  # a contract the evaluation data must pass first

    def __post_init__(self) -> None:
        fields = ("model", "data", "policy", "train", "tests", "python", "install", "branch")
        for field in fields + (("contract",) if self.contract is not None else ()):
            value = getattr(self, field)
            if not isinstance(value, str) or not value.strip() or "\n" in value:
                raise InvalidParameter(
                    f"{field} must be a one-line value, got {value!r}", field=field
                )
            if "${{" in value:
                raise InvalidParameter(f"{field} must not contain GitHub expressions", field=field)


def github_workflow(options: CiOptions | None = None) -> str:
    """The workflow YAML text."""
    o = options or CiOptions()
    data_path = o.data.removesuffix(".dataset.yaml")
    pointer = f"{data_path}.dataset.yaml"
    contract = (
        f"""      - id: contract
        name: Check the evaluation data against its contract
        run: modelyard data check {data_path} --contract {o.contract}
"""
        if o.contract
        else ""
    )
    gate = (
        f"modelyard gate --candidate models:/{o.model}/latest "
        f"--champion models:/{o.model}@champion --data {data_path} --policy {o.policy} "
        f"--report {REPORT_FILE} --junit {JUNIT_FILE}"
    )
    return f"""\
# Written by `modelyard init ci --github`. Runs the tests, trains a candidate, gates it
# against the champion on the versioned evaluation data, and posts the report on the PR.
# Set the repository secrets MODELYARD_STORE_URI and MODELYARD_ARTIFACTS_URI to the
# shared metadata store and artifact bucket. Regenerate with --force after changing flags.
name: modelyard

on:
  pull_request:
  push:
    branches: [{o.branch}]

permissions:
  contents: read
  pull-requests: write

concurrency:
  group: modelyard-${{{{ github.ref }}}}
  cancel-in-progress: true

env:
  MODELYARD_STORE_URI: ${{{{ secrets.MODELYARD_STORE_URI }}}}
  MODELYARD_ARTIFACTS_URI: ${{{{ secrets.MODELYARD_ARTIFACTS_URI }}}}
  AWS_ACCESS_KEY_ID: ${{{{ secrets.AWS_ACCESS_KEY_ID }}}}
  AWS_SECRET_ACCESS_KEY: ${{{{ secrets.AWS_SECRET_ACCESS_KEY }}}}

jobs:
  gate:
    runs-on: ubuntu-latest
    timeout-minutes: 60
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-python@v5
        with:
          python-version: "{o.python}"
          cache: pip
      - id: install
        name: Install
        run: {o.install}
      - id: tests
        name: Tests
        run: {o.tests}
      - id: data
        name: Pull the evaluation data
        run: modelyard data pull {pointer}
{contract}      - id: train
        name: Train and register the candidate
        run: {o.train}
      - id: gate
        name: Quality gate
        run: {gate}
      - id: upload
        name: Keep the reports
        if: always()
        uses: actions/upload-artifact@v4
        with:
          name: modelyard-gate
          path: |
            {REPORT_FILE}
            {JUNIT_FILE}
          if-no-files-found: ignore
      - id: comment
        name: Post the report on the pull request
        if: always() && github.event_name == 'pull_request' && hashFiles('{REPORT_FILE}') != ''
        env:
          GH_TOKEN: ${{{{ github.token }}}}
        run: >-
          gh pr comment ${{{{ github.event.pull_request.number }}}} --body-file {REPORT_FILE}
          --edit-last || gh pr comment ${{{{ github.event.pull_request.number }}}}
          --body-file {REPORT_FILE}
"""


def write_github_workflow(
    root: str | Path = ".", options: CiOptions | None = None, *, force: bool = False
) -> Path:
    """Write ``.github/workflows/modelyard.yml`` under ``root``; refuses to overwrite an
    existing file unless ``force``."""
    target = Path(root) / WORKFLOW_PATH
    if target.exists() and not force:
        raise AlreadyExists(
            f"{target} already exists; pass --force to overwrite it", field="workflow"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(github_workflow(options), encoding="utf-8")
    return target
