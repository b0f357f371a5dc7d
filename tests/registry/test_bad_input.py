"""Bad input gets a clear error naming the field and the fix, and changes nothing.

"Nothing" is checked broadly: the audit head, every model, version, alias and card, and
the registry's artifact files are the same before and after the refused call.
"""

from __future__ import annotations

import pytest

from modelyard.errors import InvalidParameter, InvalidState, NotFound, PermissionDenied


@pytest.fixture
def registered(local_yard, local_run_id):
    registry = local_yard.registry
    registry.register_model(f"runs:/{local_run_id}/model", "churn")
    registry.set_registered_model_alias("churn", "champion", 1)
    return local_yard


def snapshot(yard):
    registry = yard.registry
    models = registry.list_registered_models()
    versions = {m.name: registry.list_model_versions(m.name) for m in models}
    cards = {(v.name, v.version): registry.get_card(v.name, v.version) for vs in versions.values()
             for v in vs}  # fmt: skip
    files = (
        registry.artifacts.list_recursive("registry")
        if registry.artifacts.exists("registry")
        else []
    )
    return registry.verify_audit().head_hash, models, versions, cards, files


CASES = [
    pytest.param(
        lambda y, run: y.registry.register_model(
            "runs:/0123456789abcdef0123456789abcdef/model", "x"
        ),
        NotFound,
        "Run with id=0123456789abcdef0123456789abcdef not found",
        id="missing-run",
    ),
    pytest.param(
        lambda y, run: y.registry.register_model(f"runs:/{run}/no-such-model", "churn"),
        NotFound,
        "no model files at",
        id="missing-path",
    ),
    pytest.param(
        lambda y, run: y.registry.create_model_version("churn", "1/nowhere/artifacts/model"),
        NotFound,
        "no model files at '1/nowhere",
        id="missing-artifact-path",
    ),
    pytest.param(
        lambda y, run: y.registry.create_model_version("nobody", f"runs:/{run}/model"),
        NotFound,
        "Registered Model with name=nobody not found",
        id="unknown-model",
    ),
    pytest.param(
        lambda y, run: y.registry.load_model("models:/churn@challenger"),
        NotFound,
        "no alias 'challenger' \\(its aliases: champion\\)",
        id="unknown-alias",
    ),
    pytest.param(
        lambda y, run: y.registry.transition_model_version_stage("churn", 7, "Staging"),
        NotFound,
        "Model Version \\(name=churn, version=7\\) not found",
        id="unknown-version",
    ),
    pytest.param(
        lambda y, run: y.registry.set_registered_model_alias("churn", "champion", 7),
        NotFound,
        "version=7\\) not found",
        id="alias-to-unknown-version",
    ),
    pytest.param(
        lambda y, run: y.registry.transition_model_version_stage("churn", 1, "Production"),
        InvalidState,
        "cannot move from None to Production",
        id="skip-staging",
    ),
    pytest.param(
        lambda y, run: y.registry.transition_model_version_stage("churn", 1, "Live"),
        InvalidParameter,
        "unknown stage 'Live'; use one of None, Staging",
        id="unknown-stage",
    ),
    pytest.param(
        lambda y, run: y.registry.approve("churn", 1),
        PermissionDenied,
        "cannot approve it \\(four-eyes rule\\)",
        id="approval-by-creator",
    ),
    pytest.param(
        lambda y, run: y.as_user("vic", "viewer").approve("churn", 1),
        PermissionDenied,
        "approver role is required",
        id="approval-by-viewer",
    ),
    pytest.param(
        lambda y, run: y.as_user("bo").reject("churn", 1, ""),
        InvalidParameter,
        "a rejection needs a reason",
        id="rejection-without-reason",
    ),
    pytest.param(
        lambda y, run: y.registry.set_registered_model_alias("churn", "latest", 1),
        InvalidParameter,
        "alias 'latest' is reserved",
        id="reserved-alias",
    ),
    pytest.param(
        lambda y, run: y.registry.set_registered_model_alias("churn", "v2", 1),
        InvalidParameter,
        "looks like a version number",
        id="version-like-alias",
    ),
    pytest.param(
        lambda y, run: y.registry.get_model_version("churn", "two"),
        InvalidParameter,
        "Parameter 'version' must be an integer, got 'two'",
        id="bad-version",
    ),
    pytest.param(
        lambda y, run: y.registry.create_registered_model("a/b"),
        InvalidParameter,
        "contains '/' or '@'",
        id="bad-model-name",
    ),
    pytest.param(
        lambda y, run: y.registry.update_card("churn", 1, accuracy="great"),
        InvalidParameter,
        "card field 'accuracy' cannot be edited",
        id="unknown-card-field",
    ),
    pytest.param(
        lambda y, run: y.registry.set_model_version_tag("churn", 1, "bad key!", "x"),
        InvalidParameter,
        "invalid tag key 'bad key!'",
        id="bad-tag-key",
    ),
    pytest.param(
        lambda y, run: y.registry.load_model("models:/churn"),
        InvalidParameter,
        "is not one of models:/NAME/VERSION",
        id="bad-uri",
    ),
]


@pytest.mark.parametrize(("call", "error", "message"), CASES)
def test_bad_input_is_refused_clearly_and_changes_nothing(
    registered, local_run_id, call, error, message
):
    before = snapshot(registered)

    with pytest.raises(error, match=message) as caught:
        call(registered, local_run_id)

    assert caught.value.field  # every error names the field it is about
    assert snapshot(registered) == before
