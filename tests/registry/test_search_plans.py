"""The plans of registry searches under a common tag (``tracking/tag_probe.py``): the tag is
looked up for each model read in the page's order, from the page's seek position — on
PostgreSQL a subplan, not a merge with the tag table read from its start, which grew
with the page's depth."""

from __future__ import annotations

from tests.registry.statements import statements_run

from modelyard.registry.entities import Actor
from modelyard.tracking import tag_probe


def test_a_common_tag_is_tested_per_model_from_the_seek_position(yard, monkeypatch):
    monkeypatch.setattr(tag_probe, "DRIVE_LIMIT", 2)  # 4 of 6 models: common
    store = yard.registry.store
    for number in range(6):
        tags = {"team": "ads" if number % 3 else "search"}
        store.create_registered_model(f"m{number}", Actor("ana"), tags=tags)
    first = store.search_registered_models("tags.team = 'ads'", max_results=2)
    db = store.db
    with statements_run(db.engine, "FROM registered_models", "ORDER BY") as executed:
        rest = store.search_registered_models(
            "tags.team = 'ads'", max_results=2, page_token=first.next_page_token
        )
    assert [m.name for m in first] == ["m1", "m2"]
    assert [m.name for m in rest] == ["m4", "m5"]
    statement, parameters = executed[0]  # the page (then its latest versions)
    prefix = "EXPLAIN QUERY PLAN " if db.is_sqlite else "EXPLAIN "
    raw = db.engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute(prefix + statement, parameters)
        plan = "\n".join(str(row[-1] if db.is_sqlite else row[0]) for row in cursor.fetchall())
    finally:
        raw.close()
    if db.is_sqlite:
        assert "registered_models USING INDEX sqlite_autoindex_registered_models_1 (name>?)" in plan
    else:
        assert "SubPlan" in plan, plan
        assert "Merge" not in plan, plan


def test_an_exact_drive_binds_each_list_as_one_array_on_postgres(yard):
    """A rare tag drives the search by its owners: one array parameter per column on
    PostgreSQL when those are exactly the tag's (not 1,000 parameters), lists elsewhere and
    for a superset (versions whose names and numbers cross to other pairs)."""
    store = yard.registry.store
    for name in ("a", "b"):
        store.create_registered_model(name, Actor("ana"), tags={"tier": "gold"})
        for number in (1, 2):
            tags = {"team": "x"} if (name, number) in (("a", 1), ("b", 2)) else {}
            store.create_model_version(
                name, Actor("ana"), source="s3://m", storage_location="s3://m", tags=tags
            )
    db = store.db
    with statements_run(db.engine, "ORDER BY", "LIMIT") as run:
        models = store.search_registered_models("tags.tier = 'gold'")
        versions = store.search_model_versions("tags.team = 'x'")
    executed = [statement for statement, _ in run]
    assert [m.name for m in models] == ["a", "b"]
    assert sorted((v.name, v.version) for v in versions) == [("a", 1), ("b", 2)]
    model_page, version_page = executed[0], executed[-1]
    assert ("= ANY (" in model_page) == (not db.is_sqlite), model_page
    assert "= ANY (" not in version_page  # a superset: the tag clause stays, with lists


def test_a_tag_no_one_has_drives_an_empty_search(yard):
    store = yard.registry.store
    store.create_registered_model("a", Actor("ana"), tags={"tier": "gold"})
    store.create_model_version("a", Actor("ana"), source="s3://m", storage_location="s3://m")
    assert list(store.search_registered_models("tags.tier = 'lead'")) == []
    assert list(store.search_model_versions("tags.tier = 'lead'")) == []
    assert [m.name for m in store.search_registered_models("tags.tier = 'gold'")] == ["a"]
