"""Logging artifacts through the fluent API: files, folders, dicts, text and figures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelyard.artifacts.repository import FileInfo
from modelyard.errors import InvalidParameter, InvalidState

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def run_id(api) -> str:
    return api.active_run().info.run_id


def read(api, path: str) -> bytes:
    return api.get_client().read_artifact(run_id(api), path)


def tree_files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def local_tree(tmp_path: Path) -> Path:
    """A folder with sub-folders, text and binary files (every byte value, an empty file)."""
    root = tmp_path / "tree"
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "a.txt").write_text("alpha\n", encoding="utf-8")
    (root / "sub" / "b.bin").write_bytes(bytes(range(256)) * 40)
    (root / "sub" / "empty").write_bytes(b"")
    (root / "sub" / "deeper" / "c.json").write_text('{"k": [1, 2]}', encoding="utf-8")
    return root


# -- files and folders -------------------------------------------------------------------


def test_log_artifact_stores_one_file_at_the_run_root_or_under_a_path(fluent, tmp_path) -> None:
    src = tmp_path / "notes.md"
    src.write_bytes("# résumé\n".encode())
    with fluent.start_run():
        fluent.log_artifact(src)
        fluent.log_artifact(src, "docs/v1")
        client, rid = fluent.get_client(), run_id(fluent)

        assert client.list_artifacts(rid) == [
            FileInfo("docs", True, None),
            FileInfo("notes.md", False, src.stat().st_size),
        ]
        assert read(fluent, "notes.md") == src.read_bytes()
        assert read(fluent, "docs/v1/notes.md") == src.read_bytes()


def test_log_artifacts_keeps_the_tree_and_downloads_it_byte_for_byte(
    fluent, local_tree, tmp_path
) -> None:
    with fluent.start_run():
        fluent.log_artifacts(local_tree, "inputs")
        client, rid = fluent.get_client(), run_id(fluent)

        assert client.list_artifacts(rid) == [FileInfo("inputs", True, None)]
        assert client.list_artifacts(rid, "inputs") == [
            FileInfo("inputs/a.txt", False, 6),
            FileInfo("inputs/sub", True, None),
        ]
        assert client.list_artifacts(rid, "inputs/sub") == [
            FileInfo("inputs/sub/b.bin", False, 256 * 40),
            FileInfo("inputs/sub/deeper", True, None),
            FileInfo("inputs/sub/empty", False, 0),
        ]
        downloaded = Path(client.download_artifacts(rid, "inputs", tmp_path / "out"))

    assert downloaded == tmp_path / "out" / "inputs"
    assert tree_files(downloaded) == tree_files(local_tree)


def test_log_artifacts_without_a_path_puts_the_files_at_the_run_root(
    fluent, local_tree, tmp_path
) -> None:
    with fluent.start_run():
        fluent.log_artifacts(local_tree)
        client, rid = fluent.get_client(), run_id(fluent)
        assert [e.path for e in client.list_artifacts(rid)] == ["a.txt", "sub"]
        downloaded = Path(client.download_artifacts(rid, "", tmp_path / "all"))
    assert tree_files(downloaded) == tree_files(local_tree)


def test_a_single_file_downloads_to_its_name(fluent, local_tree, tmp_path) -> None:
    with fluent.start_run():
        fluent.log_artifacts(local_tree)
        path = fluent.get_client().download_artifacts(run_id(fluent), "sub/b.bin", tmp_path / "f")
    assert Path(path) == tmp_path / "f" / "b.bin"
    assert Path(path).read_bytes() == (local_tree / "sub" / "b.bin").read_bytes()


def test_wrong_kinds_of_local_path_are_refused_naming_the_field(fluent, local_tree) -> None:
    with fluent.start_run():
        with pytest.raises(InvalidParameter, match="is not a file") as info:
            fluent.log_artifact(local_tree)
        assert info.value.field == "local_path"
        with pytest.raises(InvalidParameter, match="is not a folder") as info:
            fluent.log_artifacts(local_tree / "a.txt")
        assert info.value.field == "local_dir"
        assert fluent.get_client().list_artifacts(run_id(fluent)) == []


def test_logging_an_artifact_without_an_active_run_says_how_to_start_one(
    fluent, local_tree
) -> None:
    with pytest.raises(InvalidState, match="start_run") as info:
        fluent.log_artifact(local_tree / "a.txt")
    assert info.value.field == "run"


# -- dicts and text --------------------------------------------------------------------


def test_log_dict_writes_json_and_yaml_by_suffix(fluent) -> None:
    yaml = pytest.importorskip("yaml")
    config = {"model": "gbm", "depth": 6, "rates": [0.1, 0.01], "nested": {"on": True}}
    with fluent.start_run():
        fluent.log_dict(config, "config.json")
        fluent.log_dict(config, "conf/config.yaml")
        fluent.log_dict(config, "conf/config.yml")

        assert json.loads(read(fluent, "config.json")) == config
        for name in ("conf/config.yaml", "conf/config.yml"):
            text = read(fluent, name).decode("utf-8")
            assert yaml.safe_load(text) == config
            assert text.startswith("model: gbm\n")  # key order kept, not sorted


def test_log_text_stores_utf8(fluent) -> None:
    text = "naïve ✓ 数据\nsecond line\n"
    with fluent.start_run():
        fluent.log_text(text, "notes/readme.txt")
        assert read(fluent, "notes/readme.txt") == text.encode("utf-8")


# -- figures ---------------------------------------------------------------------------


def test_log_figure_saves_a_matplotlib_figure_in_the_suffix_format(fluent) -> None:
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(3, 2))
    figure.add_subplot().plot([0, 1, 2], [2, 0, 1])
    with fluent.start_run():
        fluent.log_figure(figure, "plots/curve.png")
        fluent.log_figure(figure, "plots/curve.svg")

        assert read(fluent, "plots/curve.png").startswith(PNG_MAGIC)
        assert b"<svg" in read(fluent, "plots/curve.svg")[:1000]


def test_log_figure_saves_a_plotly_figure_as_html_or_json(fluent) -> None:
    go = pytest.importorskip("plotly.graph_objects")
    figure = go.Figure(data=[go.Scatter(x=[1, 2, 3], y=[3, 1, 2], name="demand")])
    with fluent.start_run():
        fluent.log_figure(figure, "plots/demand.html")
        fluent.log_figure(figure, "plots/demand.json")

        html = read(fluent, "plots/demand.html").decode("utf-8")
        assert "<html" in html
        assert "demand" in html
        stored = json.loads(read(fluent, "plots/demand.json"))
        assert stored == json.loads(figure.to_json())
        assert stored["data"][0]["type"] == "scatter"


def test_log_figure_refuses_what_it_cannot_save_naming_the_field(fluent) -> None:
    go = pytest.importorskip("plotly.graph_objects")
    with fluent.start_run():
        with pytest.raises(InvalidParameter, match="got dict") as info:
            fluent.log_figure({"not": "a figure"}, "plot.png")
        assert info.value.field == "figure"

        with pytest.raises(InvalidParameter, match=r"\.html or \.json.*'\.png'") as info:
            fluent.log_figure(go.Figure(), "plot.png")
        assert info.value.field == "artifact_file"

        assert fluent.get_client().list_artifacts(run_id(fluent)) == []


# -- content addressing ----------------------------------------------------------------


def test_identical_content_under_two_names_is_stored_once(fluent, tmp_path) -> None:
    src = tmp_path / "weights.bin"
    src.write_bytes(b"\x00\x01" * 5000)
    with fluent.start_run() as run:
        fluent.log_artifact(src, "a")
        fluent.log_artifact(src, "b")
        fluent.log_text("other content", "c.txt")

    repo = fluent.get_client().artifacts
    root = run.info.artifact_root
    first, second = repo.stat(f"{root}/a/weights.bin"), repo.stat(f"{root}/b/weights.bin")
    assert first.digest == second.digest
    assert first.size == second.size == 10_000
    blobs = sorted(ref.digest for ref in repo.blobs.iter_blobs())
    assert blobs == sorted({first.digest, repo.stat(f"{root}/c.txt").digest})
    assert repo.bytes_under(root) == 2 * 10_000 + len("other content")
