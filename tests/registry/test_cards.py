"""Model cards: seeded from the run, edited with an audit trail, rendered to Markdown and HTML."""

from __future__ import annotations

import pytest

from modelyard.registry.cards import DatasetProvenance, ModelCard


@pytest.fixture
def version(local_yard, local_run_id):
    return local_yard.registry.register_model(f"runs:/{local_run_id}/model", "churn")


def test_a_new_card_is_filled_from_the_run(local_yard, version):
    card = local_yard.registry.get_card("churn", 1)
    dataset = local_yard.tracking.get_run(version.run_id).inputs[0]

    assert card.training_data == (
        DatasetProvenance("accounts-2026-01", dataset.digest, "training", "", "dataframe"),
    )
    assert card.validation_results == {"auc": 0.91}
    assert card.owners == ("ana",)
    assert (card.flavor, card.source_run_id) == ("sklearn", version.run_id)


def test_editing_a_card_is_an_audited_change(local_yard, version):
    registry = local_yard.registry
    registry.update_card(
        "churn",
        1,
        intended_use="Rank accounts for retention calls.",
        known_biases="Under-represents accounts younger than 30 days.",
        owners=["ana", "retention-team"],
    )

    card = registry.get_card("churn", 1)
    event = registry.audit_log("churn")[-1]
    assert card.intended_use == "Rank accounts for retention calls."
    assert card.owners == ("ana", "retention-team")
    assert event.action == "card.edit"
    assert event.before["owners"] == ["ana"]
    assert event.after["owners"] == ["ana", "retention-team"]


def test_an_edit_that_changes_nothing_is_not_audited(local_yard, version):
    local_yard.registry.update_card("churn", 1, limitations="none known")
    events = len(local_yard.registry.audit_log())
    local_yard.registry.update_card("churn", 1, limitations="none known")
    assert len(local_yard.registry.audit_log()) == events


def test_markdown_lists_every_section_with_the_provenance_table(local_yard, version):
    markdown = local_yard.registry.get_card("churn", 1).to_markdown()

    for heading in ("Intended use", "Limitations", "Training data", "Known biases",
                    "Validation methodology", "Validation results", "Owners"):  # fmt: skip
        assert f"## {heading}" in markdown
    assert "| accounts-2026-01 | training | `" in markdown
    assert "- auc: 0.91" in markdown


def test_html_escapes_what_people_wrote():
    card = ModelCard("churn", 2, intended_use="<script>alert(1)</script>\n\nSecond paragraph")

    page = card.to_html()

    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<p>Second paragraph</p>" in page
    assert page.startswith("<!DOCTYPE html>")


def test_a_card_round_trips_through_its_dict():
    card = ModelCard("churn", 2, training_data=(DatasetProvenance("d", "abc"),), owners=("ana",))
    assert ModelCard.from_dict(card.to_dict()) == card
