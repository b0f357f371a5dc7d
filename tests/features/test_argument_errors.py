"""Bad arguments raise ``InvalidParameter`` naming the field (these raised ``TypeError``
once: the field was passed positionally, which ``InvalidParameter`` does not take)."""

from __future__ import annotations

import pytest

from modelyard.errors import InvalidParameter
from modelyard.features.definitions import FeatureView, Field, OnDemandFeatureView


def test_a_transform_that_is_not_callable_names_the_field(store_entity, sales_view):
    with pytest.raises(InvalidParameter, match="transform is not callable") as info:
        FeatureView(
            "v",
            entities=[store_entity],
            source=sales_view.source,
            schema=[Field("a")],
            transform="not a function",
        )
    assert info.value.field == "transform"
    with pytest.raises(InvalidParameter, match="transform is not callable") as info:
        OnDemandFeatureView(
            "odfv", sources=[sales_view], schema=[Field("a")], transform="not a function"
        )
    assert info.value.field == "transform"


def test_store_arguments_name_their_field(fstore, sales_view):
    fstore.apply([sales_view])
    with pytest.raises(InvalidParameter, match="exactly one of") as info:
        fstore.get_online_features([{"store_id": 1}])
    assert info.value.field == "features"
    with pytest.raises(InvalidParameter, match="kind 'nope'") as info:
        fstore.registry.list(kind="nope")
    assert info.value.field == "kind"
    with pytest.raises(InvalidParameter, match="nothing to compare") as info:
        fstore.registry.diff_versions("sales")
    assert info.value.field == "version"
    with pytest.raises(InvalidParameter, match="sample must be a positive integer") as info:
        fstore.check_skew("any", sample=0)
    assert info.value.field == "sample"
