"""Dataset version pages (``DataClient.search_versions``), on SQLite and PostgreSQL: by name
with the newest version first (as ``list_versions``), or newest first across names; every
version once whatever the page size; a forged token or page size is refused by name."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import insert

from modelyard.data.client import DataClient
from modelyard.data.tables import dataset_versions
from modelyard.errors import InvalidParameter

#: (name, version, created_at): ties in created_at, so the tie-breakers decide.
VERSIONS = [("b", 1, 30), ("a", 1, 10), ("a", 2, 30), ("c", 1, 20), ("a", 3, 40), ("b", 2, 40)]


@pytest.fixture
def data(metadata_db) -> DataClient:
    with metadata_db.write() as conn:
        conn.execute(
            insert(dataset_versions),
            [
                {
                    "name": name,
                    "version": version,
                    "digest": f"{name}{version}".ljust(64, "0"),
                    "files_digest": f"{name}{version}".ljust(64, "f"),
                    "schema": "[]",
                    "num_rows": 1,
                    "num_bytes": 1,
                    "profile": json.dumps({"columns": {}}),
                    "files": "[]",
                    "storage_location": f"datasets/{name}",
                    "format": "parquet",
                    "source": "x.parquet",
                    "created_by": "ana",
                    "created_at": created,
                }
                for name, version, created in VERSIONS
            ],
        )
    return DataClient(metadata_db, artifacts=None)


def pages(data: DataClient, size: int, **kwargs) -> list[str]:
    seen, token = [], None
    while True:
        page = data.search_versions(max_results=size, page_token=token, **kwargs)
        seen += [v.ref for v in page]
        token = page.next_page_token
        if token is None:
            return seen


def test_pages_list_every_version_once_in_either_order(data):
    by_name = ["a@3", "a@2", "a@1", "b@2", "b@1", "c@1"]
    newest = ["a@3", "b@2", "a@2", "b@1", "c@1", "a@1"]
    assert [v.ref for v in data.list_versions()] == by_name
    for size in (1, 2, 6, 100):
        assert pages(data, size) == by_name
        assert pages(data, size, newest_first=True) == newest
        assert pages(data, size, name="a") == ["a@3", "a@2", "a@1"]


def test_a_forged_token_or_page_size_is_refused_by_name(data):
    by_name = data.search_versions(max_results=1).next_page_token
    for token in ["x", "eyJvZmZzZXQiOiAtMX0=", "' OR 1=1 --"]:  # the second: offset -1
        with pytest.raises(InvalidParameter) as caught:
            data.search_versions(page_token=token)
        assert caught.value.field == "page_token"
    with pytest.raises(InvalidParameter, match="another search or order_by"):
        data.search_versions(page_token=by_name, newest_first=True)
    for size in (0, 1001, True, "10"):
        with pytest.raises(InvalidParameter) as caught:
            data.search_versions(max_results=size)  # type: ignore[arg-type]
        assert caught.value.field == "max_results"
