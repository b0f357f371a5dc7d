"""The one way YAML specs are read: unknown keys refused with the closest allowed key,
every error an ``InvalidParameter`` naming the path of the bad field."""

from __future__ import annotations

import pytest
from pydantic import field_validator

from modelyard.data.contracts.result import ContractError
from modelyard.errors import InvalidParameter
from modelyard.specs import Spec, check_keys, parse_spec, unknown_key


class Step(Spec):
    name: str
    weight: float = 1.0


class Plan(Spec):
    title: str = "plan"
    steps: list[Step] = []
    owner: Step | None = None
    retries: int = 0

    @field_validator("retries", mode="before")
    @classmethod
    def _retries(cls, value: object) -> object:
        if isinstance(value, int) and value < 0:
            raise InvalidParameter(f"retries must be 0 or more, got {value}", field="retries")
        return value


def test_a_valid_spec_is_parsed():
    plan = parse_spec(Plan, {"steps": [{"name": "a"}], "retries": 2}, label="plan")
    assert plan.steps == [Step(name="a")]
    assert plan.retries == 2


def test_an_unknown_key_gets_the_closest_allowed_key():
    with pytest.raises(
        InvalidParameter, match=r"^plan: unknown key 'stepz'; did you mean 'steps'\?$"
    ) as info:
        parse_spec(Plan, {"stepz": []}, label="plan")
    assert info.value.field == "stepz"


def test_an_unknown_key_without_a_close_one_lists_the_allowed_keys():
    with pytest.raises(InvalidParameter, match="use one of title, steps, owner, retries"):
        parse_spec(Plan, {"zzz": 1}, label="plan")


def test_an_unknown_key_in_a_nested_section_is_named_by_its_path():
    with pytest.raises(InvalidParameter, match="did you mean 'weight'") as info:
        parse_spec(Plan, {"steps": [{"name": "a"}, {"name": "b", "wieght": 2}]}, label="plan")
    assert info.value.field == "steps[1].wieght"
    with pytest.raises(InvalidParameter, match="did you mean 'name'") as info:
        parse_spec(Plan, {"owner": {"nmae": "x"}}, label="plan")
    assert info.value.field == "owner.nmae"


def test_an_unknown_key_is_named_before_other_problems():
    with pytest.raises(InvalidParameter, match="unknown key 'titel'"):
        parse_spec(Plan, {"retries": "many", "titel": "x"}, label="plan")


def test_a_validator_error_reaches_the_caller_unchanged():
    with pytest.raises(InvalidParameter) as info:
        parse_spec(Plan, {"retries": -1}, label="plan")
    assert str(info.value) == "retries must be 0 or more, got -1"
    assert info.value.field == "retries"


def test_a_bad_value_names_its_path_the_reason_and_the_value():
    with pytest.raises(
        InvalidParameter, match=r"plan: steps\[0\].weight: .*number.*'heavy'"
    ) as info:
        parse_spec(Plan, {"steps": [{"name": "a", "weight": "heavy"}]}, label="plan")
    assert info.value.field == "steps[0].weight"
    with pytest.raises(InvalidParameter, match=r"plan: steps\[0\].name is required"):
        parse_spec(Plan, {"steps": [{}]}, label="plan")


def test_the_error_type_and_the_path_as_label_can_be_chosen():
    with pytest.raises(ContractError, match=r"^columnz: unknown rule 'columnz'"):
        parse_spec(Plan, {"columnz": 1}, label=None, noun="rule", error=ContractError)
    with pytest.raises(InvalidParameter, match="must be a mapping of keys, got list"):
        parse_spec(Plan, [1], label="plan")


def test_check_keys_serves_hand_written_parsers():
    check_keys({"min": 1}, ("min", "max"), label="rows", prefix="rows.")
    with pytest.raises(
        InvalidParameter, match="rows: unknown key 'mx'; did you mean 'max'"
    ) as info:
        check_keys({"mx": 1}, ("min", "max"), label="rows", prefix="rows.")
    assert info.value.field == "rows.mx"
    error = unknown_key("x", ["a"], label="w", field="f", noun="rule")
    assert str(error) == "w: unknown rule 'x'; use one of a"
