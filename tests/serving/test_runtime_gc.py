"""A server that freezes its heap (``ServingOptions.freeze_gc``) still frees what a
retired version leaves behind, reference cycles included."""

from __future__ import annotations

import gc
import weakref

from modelyard.serving.runtime import collect_frozen


class _Model:
    def __init__(self) -> None:
        self.me = self  # a cycle, as a model's task or callback would make


def test_a_cycle_frozen_with_a_retired_version_is_freed():
    model = _Model()
    alive = weakref.ref(model)
    gc.freeze()
    try:
        del model
        gc.collect()
        assert alive() is not None  # frozen: the collector never looks at it
        collect_frozen()
        assert alive() is None
    finally:
        gc.unfreeze()
