"""What drift reads: CSV, Parquet, dataset versions and stored profiles — and hostile files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modelyard.config import Settings
from modelyard.errors import InvalidParameter, NotFound
from modelyard.monitoring import ReferenceProfile, drift
from modelyard.monitoring.tables_input import load_current, load_reference


def _frame(n: int = 3_000, shift: float = 0.0, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "price": rng.normal(10 + shift, 2, n),
            "units": rng.integers(0, 20, n),
            "region": rng.choice(["north", "south", "east"], n),
        }
    )


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    paths = {
        "ref_csv": tmp_path / "ref.csv",
        "cur_parquet": tmp_path / "cur.parquet",
        "same_parquet": tmp_path / "same.parquet",
    }
    _frame().to_csv(paths["ref_csv"], index=False)
    _frame(shift=2.0, seed=1).to_parquet(paths["cur_parquet"])
    _frame(seed=2).to_parquet(paths["same_parquet"])
    return paths


def test_csv_against_parquet(files: dict[str, Path]) -> None:
    moved = drift(files["ref_csv"], files["cur_parquet"])
    assert moved.columns["price"].drifted and not moved.columns["region"].drifted
    same = drift(str(files["ref_csv"]), str(files["same_parquet"]))
    assert not same.dataset_drifted and same.errors == {}


def test_a_stored_profile_file_is_a_reference(files: dict[str, Path], tmp_path: Path) -> None:
    stored = tmp_path / "train.profile"
    stored.write_bytes(load_reference(files["ref_csv"]).to_bytes())
    profile = load_reference(stored)
    assert isinstance(profile, ReferenceProfile) and profile.source == str(files["ref_csv"])
    unnamed = tmp_path / "reference.bin"  # recognised by its content, not only its name
    unnamed.write_bytes(stored.read_bytes())
    assert list(load_reference(unnamed).columns) == ["price", "units", "region"]
    assert drift(stored, files["cur_parquet"]).columns["price"].drifted


def test_a_profile_is_not_current_data(files: dict[str, Path], tmp_path: Path) -> None:
    stored = tmp_path / "train.profile"
    stored.write_bytes(load_reference(files["ref_csv"]).to_bytes())
    with pytest.raises(InvalidParameter, match="current data is a reference profile"):
        load_current(stored)


def test_dataset_versions_are_read_through_the_data_client(
    files: dict[str, Path], tmp_path: Path
) -> None:
    from modelyard.data.client import DataClient

    client = DataClient.from_settings(Settings(home=tmp_path / "yard", user="ana"))
    client.snapshot(_frame(), "sales", pointer=False)
    client.snapshot(_frame(shift=2.0, seed=1), "sales", pointer=False)
    report = drift("sales@1", "sales@2", data_client=client)
    assert report.columns["price"].drifted
    assert load_reference("sales@1", data_client=client).source == "sales@1"
    with pytest.raises(InvalidParameter, match="data_client"):
        drift("sales@1", "sales@2")


def test_missing_paths_are_not_found(files: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(NotFound, match=r"nowhere\.csv"):
        drift(tmp_path / "nowhere.csv", files["cur_parquet"])


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("broken.parquet", b"PAR1 this is not parquet PAR1"),
        ("broken.csv", b'a,b\n1,2\n"unterminated\n'),
        ("noise.profile", b"PK\x03\x04" + b"\x00" * 64),
        ("text.profile", b"not a zip at all"),
        ("data.bin", b"\x00\x01\x02"),
    ],
)
def test_hostile_files_get_a_clear_error(tmp_path: Path, name: str, content: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(InvalidParameter) as raised:
        load_reference(path)
    assert name in str(raised.value) or "reference profile" in str(raised.value)


def test_a_parquet_current_with_a_changed_column_type(
    files: dict[str, Path], tmp_path: Path
) -> None:
    changed = _frame(seed=3)
    changed["price"] = changed["price"].map(lambda v: f"{v:.2f} EUR")
    changed.to_parquet(tmp_path / "changed.parquet")
    report = drift(files["ref_csv"], tmp_path / "changed.parquet")
    assert "changed type" in report.errors["price"]
