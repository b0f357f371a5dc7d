"""``modelyard gc``: deleted runs are purged and the bytes only they held are freed."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from modelyard.cli.main import app
from modelyard.config import Settings
from modelyard.durations import parse_duration
from modelyard.errors import NotFound
from modelyard.tracking.client import TrackingClient

SIZE = 12_345


@pytest.fixture
def home(tmp_path):
    return tmp_path / "yard"


@pytest.fixture
def client(home):
    return TrackingClient.from_settings(Settings(home=home))


@pytest.fixture
def cli(home):
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, ["--home", str(home), "gc", *args])

    return invoke


@pytest.fixture
def deleted_run(client, tmp_path):
    """A deleted run holding one artifact of exactly SIZE bytes that nothing else shares."""
    run = client.create_run(client.create_experiment("gc"))
    model = tmp_path / "model.bin"
    model.write_bytes(bytes(range(256)) * (SIZE // 256) + b"x" * (SIZE % 256))
    client.log_artifact(run.info.run_id, model, "model")
    client.delete_run(run.info.run_id)
    return run.info.run_id


def test_purges_deleted_runs_and_reports_the_exact_bytes_freed(cli, client, deleted_run):
    result = cli("--grace", "0")
    assert result.exit_code == 0, result.output
    assert "purged 1 run, removed 1 blob, freed 12.3 kB (12,345 bytes)" in result.stdout
    with pytest.raises(NotFound):
        client.get_run(deleted_run)


def test_active_runs_and_their_artifacts_are_kept(cli, client, deleted_run):
    kept = client.create_run(client.get_experiment_by_name("gc").experiment_id)
    client.log_text(kept.info.run_id, "still here", "notes.txt")
    result = cli("--grace", "0")
    assert "purged 1 run," in result.stdout
    assert client.read_artifact(kept.info.run_id, "notes.txt") == b"still here"


def test_a_second_gc_finds_nothing(cli, deleted_run):
    cli("--grace", "0")
    assert "purged 0 runs, removed 0 blobs, freed 0 bytes\n" in cli("--grace", "0").stdout


def test_older_than_spares_runs_deleted_recently(cli, client, deleted_run):
    result = cli("--older-than", "7d", "--grace", "0")
    assert "purged 0 runs" in result.stdout
    assert client.get_run(deleted_run).info.lifecycle_stage == "deleted"


def test_the_grace_period_keeps_fresh_blobs(cli, deleted_run):
    result = cli()  # default grace 1h: the run goes, its young blob stays for now
    assert "purged 1 run, removed 0 blobs" in result.stdout


def test_dry_run_lists_what_would_be_purged_and_changes_nothing(cli, client, deleted_run):
    result = cli("--dry-run")
    assert result.exit_code == 0
    assert "would purge 1 deleted run" in result.stdout
    assert deleted_run in result.stdout
    assert client.get_run(deleted_run).info.lifecycle_stage == "deleted"


def test_a_malformed_duration_is_a_usage_error_naming_it(cli):
    result = cli("--older-than", "soon")
    assert result.exit_code == 2
    assert "--older-than must be a duration" in result.stderr and "'soon'" in result.stderr


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("0", 0), ("90", 90), ("90s", 90), ("15m", 900), ("1h", 3600), ("7d", 604_800),
     ("2w", 1_209_600), ("500ms", 0.5), ("1.5h", 5400)],
)  # fmt: skip
def test_durations(text, seconds):
    assert parse_duration(text, "--grace").total_seconds() == pytest.approx(seconds)
