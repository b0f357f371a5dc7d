"""Current summaries: batch by batch, merged across processes, bounded in memory."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from scipy import stats

from modelyard.errors import InvalidParameter
from modelyard.monitoring.profiles import ReferenceProfile, compare
from modelyard.monitoring.summaries import CategoricalSummary, NumericalSummary


@pytest.fixture
def profile() -> ReferenceProfile:
    rng = np.random.default_rng(0)
    table = {"x": rng.normal(size=40_000), "c": rng.choice(["a", "b", "c"], 40_000)}
    return ReferenceProfile.from_table(table, source="train", sample_size=2_000)


def _current(n: int, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    x = rng.normal(0.3, 1.2, n)
    x[:10] = np.nan
    return pa.table({"x": x, "c": rng.choice(["a", "b", "new"], n)})


def test_batches_and_merged_summaries_equal_one_summary_of_everything(profile) -> None:
    batches = [_current(7_000, seed) for seed in range(4)]
    whole = profile.summarizer()
    whole.update(pa.concat_tables(batches))
    streamed = profile.summarizer()
    for batch in batches[:2]:
        streamed.update(batch.to_batches()[0])
    other = profile.summarizer()
    for batch in batches[2:]:
        other.update(batch.to_pandas())
    streamed.merge(other)
    assert streamed.rows == whole.rows == 28_000
    for name in ("x", "c"):
        a, b = streamed.columns[name], whole.columns[name]
        assert (a.rows, a.missing, a.values) == (b.rows, b.missing, b.values)
        assert np.array_equal(a.counts, b.counts)
    x, wx = streamed.columns["x"], whole.columns["x"]
    assert isinstance(x, NumericalSummary) and isinstance(wx, NumericalSummary)
    assert (x.mean, x.std, x.min, x.max) == pytest.approx((wx.mean, wx.std, wx.min, wx.max))
    c = streamed.columns["c"]
    assert isinstance(c, CategoricalSummary)
    assert c.unseen_labels == whole.columns["c"].unseen_labels  # type: ignore[union-attr]
    one, merged = compare(profile, whole), compare(profile, streamed)
    assert merged.columns["x"].score == pytest.approx(one.columns["x"].score)
    assert merged.columns["c"].scores == pytest.approx(one.columns["c"].scores)


def test_the_sample_stays_bounded_and_uniform_across_merges(profile) -> None:
    summary = profile.summarizer(["x"])
    parts = []
    for seed in range(6):  # uneven batches from two different distributions
        rng = np.random.default_rng(seed)
        n = 1_000 if seed % 2 else 20_000
        part = rng.uniform(0, 1, n) if seed < 3 else rng.uniform(10, 11, n)
        parts.append(part)
        piece = profile.summarizer(["x"])
        piece.update({"x": part})
        summary.merge(piece)
    x = summary.columns["x"]
    assert isinstance(x, NumericalSummary)
    assert len(x.sample) == 2_000
    everything = np.concatenate(parts)
    # a uniform sample of everything: the share above 5 matches the share in all the data
    assert np.mean(x.sample > 5) == pytest.approx(np.mean(everything > 5), abs=0.04)
    assert stats.ks_2samp(x.sample, everything).pvalue > 0.001


def test_memory_does_not_grow_with_rows(profile) -> None:
    summary = profile.summarizer()
    for seed in range(5):
        summary.update(_current(20_000, seed))
    x = summary.columns["x"]
    assert isinstance(x, NumericalSummary)
    assert len(x.sample) == 2_000 and len(x.counts) == len(profile.columns["x"].edges) + 1  # type: ignore[union-attr]


def test_summaries_of_other_profiles_do_not_merge(profile) -> None:
    rng = np.random.default_rng(9)
    other = ReferenceProfile.from_table(
        {"x": rng.normal(size=500), "c": rng.choice(["a"], 500)}, source="other"
    )
    with pytest.raises(InvalidParameter, match="same profile"):
        profile.summarizer().merge(other.summarizer())
    with pytest.raises(InvalidParameter, match="'nope'"):
        profile.summarizer(["nope"])


def test_a_column_that_goes_missing_in_one_batch_stays_an_error(profile) -> None:
    summary = profile.summarizer()
    summary.update(_current(1_000, 1))
    summary.update(pa.table({"c": ["a"] * 100}))
    summary.update(_current(1_000, 2))
    assert summary.errors == {"x": "column 'x' is missing from the current data"}
    assert "x" in compare(profile, summary).errors
