"""Steps and pipelines: calls inside a pipeline build a DAG of data dependencies; bad graphs
and bad inputs are refused before anything runs, naming the step."""

from __future__ import annotations

import pytest

from modelyard.errors import InvalidParameter
from modelyard.pipelines import Output, pipeline, step
from modelyard.pipelines.definitions import Step


@step
def load(n: int) -> list[int]:
    return list(range(n))


@step
def total(values: list[int]) -> int:
    return sum(values)


@step(outputs=("low", "high"))
def halves(values: list[int]) -> tuple[list[int], list[int]]:
    return values[: len(values) // 2], values[len(values) // 2 :]


def test_a_step_outside_a_pipeline_is_the_plain_function():
    assert total([1, 2, 3]) == 6
    assert halves([1, 2, 3, 4]) == ([1, 2], [3, 4])
    assert isinstance(total, Step) and total.name == "total"


def test_calls_inside_a_pipeline_return_outputs_and_record_data_dependencies():
    @pipeline
    def flow(n: int = 4):
        values = load(n)
        low, high = halves(values)
        return total(low), total(high)

    graph = flow.build({"n": 6})
    assert [c.key for c in graph.order()] == ["load", "halves", "total", "total_2"]
    calls = graph.calls
    assert calls["load"].arguments == {"n": 6}
    assert [u.key for u in calls["halves"].upstream()] == ["load"]
    assert calls["total_2"].arguments["values"].name == "high"
    first, second = graph.result
    assert isinstance(first, Output) and first.call.key == "total"
    assert second.call.key == "total_2"


def test_defaults_fill_params_and_unknown_or_missing_params_are_named():
    @pipeline
    def flow(n: int, scale: float = 1.0):
        return total(load(n))

    assert flow.bind_params({"n": 3}) == {"n": 3, "scale": 1.0}
    with pytest.raises(InvalidParameter, match="no param 'depth'") as unknown:
        flow.build({"n": 3, "depth": 2})
    assert unknown.value.field == "depth"
    with pytest.raises(InvalidParameter, match="missing a required argument: 'n'"):
        flow.build({})
    with pytest.raises(InvalidParameter, match=r"param 'n' is a builtins\.object"):
        flow.build({"n": object()})


def test_a_cycle_made_with_after_is_refused_naming_the_steps():
    @pipeline
    def flow():
        values = load(3)
        summed = total(values)
        values.after(summed)  # load after total, which reads load: a cycle
        return summed

    with pytest.raises(InvalidParameter, match="has a cycle: load -> total -> load") as err:
        flow.build()
    assert err.value.field == "load"


def test_after_orders_steps_without_passing_data():
    @pipeline
    def flow():
        first = load(2)
        second = load(3).after(total(first))
        return second

    graph = flow.build()
    assert [c.key for c in graph.order()] == ["load", "total", "load_2"]
    assert [u.key for u in graph.calls["load_2"].upstream()] == ["total"]


def test_an_output_of_another_pipeline_is_a_missing_input_naming_the_step():
    kept: list[Output] = []

    @pipeline
    def first():
        kept.append(load(2))

    @pipeline
    def second():
        return total(kept[0])

    first.build()
    with pytest.raises(
        InvalidParameter, match=r"step 'total': input 'values' .* \(missing input\)"
    ):
        second.build()


def test_a_missing_argument_names_the_step():
    @pipeline
    def flow():
        return total()

    with pytest.raises(
        InvalidParameter, match="step 'total' in pipeline 'flow' has a missing"
    ) as err:
        flow.build()
    assert err.value.field == "total"


def test_literal_inputs_must_be_json_and_outputs_cannot_hide_in_containers():
    @pipeline
    def with_object():
        return total(object())

    @pipeline
    def with_nested_output():
        return total([load(2)])

    expected = r"step 'total': input 'values' is a builtins\.object"
    with pytest.raises(InvalidParameter, match=expected):
        with_object.build()
    with pytest.raises(InvalidParameter, match="a step output inside a container"):
        with_nested_output.build()


def test_a_pipeline_that_calls_no_step_is_refused():
    @pipeline
    def empty():
        return 1

    with pytest.raises(InvalidParameter, match="calls no step"):
        empty.build()


def test_step_options_are_checked():
    def one() -> int:
        return 1

    with pytest.raises(InvalidParameter, match="retries must be a whole number"):
        step(retries=-1)(one)
    with pytest.raises(InvalidParameter, match="timeout"):
        step(timeout="soon")(one)
    with pytest.raises(InvalidParameter, match="timeout must be positive"):
        step(timeout=0)(one)
    with pytest.raises(InvalidParameter, match="outputs must be distinct"):
        step(outputs=("a", "a"))(one)
    with pytest.raises(InvalidParameter, match="step name 'bad name'"):
        step(name="bad name")(one)
    timed = step(timeout="2m", backoff="5s", retries=3)(one)
    assert (timed.options.timeout_s, timed.options.backoff_s, timed.options.retries) == (120, 5, 3)


def test_the_code_hash_follows_the_source_and_the_declared_outputs():
    def one(x):
        return x + 1

    def two(x):
        return x + 2

    assert step(one).code_hash == step(one).code_hash
    assert step(one).code_hash != step(two).code_hash
    assert step(one).code_hash != step(outputs=("a",))(one).code_hash


def test_the_package_exports_what_its_docstring_lists():
    import modelyard.pipelines as api

    assert sorted(api.__all__) == sorted(api._EXPORTS)
    for name in api.__all__:
        assert getattr(api, name) is not None
        assert name in api.__doc__, f"{name} is exported but not in the package docstring"
