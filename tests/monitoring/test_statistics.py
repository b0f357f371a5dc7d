"""The drift statistics agree with SciPy's own implementations."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from modelyard.monitoring import statistics as st


@pytest.mark.parametrize(("n", "m", "shift"), [(30, 40, 0.0), (200, 150, 0.5), (400, 600, 0.2)])
def test_ks_on_small_samples_is_scipys_exact_test(n: int, m: int, shift: float) -> None:
    rng = np.random.default_rng(n)
    a, b = np.sort(rng.normal(size=n)), np.sort(rng.normal(shift, size=m))
    statistic, pvalue = st.ks_two_sample(a, b)
    want = stats.ks_2samp(a, b, method="exact")
    assert statistic == pytest.approx(want.statistic, abs=1e-12)
    assert pvalue == pytest.approx(want.pvalue, rel=1e-9)


@pytest.mark.parametrize("shift", [0.0, 0.03, 0.1])
def test_ks_on_large_samples_is_the_asymptotic_test_within_a_percent(shift: float) -> None:
    rng = np.random.default_rng(7)
    a, b = np.sort(rng.normal(size=5000)), np.sort(rng.normal(shift, size=8000))
    statistic, pvalue = st.ks_two_sample(a, b)
    want = stats.ks_2samp(a, b, method="asymp")
    assert statistic == pytest.approx(want.statistic, abs=1e-12)
    assert pvalue == pytest.approx(want.pvalue, rel=0.01, abs=1e-6)


def test_ks_with_ties_counts_them_as_scipy_does() -> None:
    rng = np.random.default_rng(3)
    a, b = np.sort(rng.integers(0, 5, 800).astype(float)), np.sort(rng.integers(1, 6, 900) * 1.0)
    assert st.ks_two_sample(a, b)[0] == pytest.approx(stats.ks_2samp(a, b).statistic)


def test_ks_of_an_empty_sample_is_unknown() -> None:
    assert all(math.isnan(v) for v in st.ks_two_sample(np.zeros(0), np.ones(3)))


def test_wasserstein_of_weighted_points_is_scipys() -> None:
    rng = np.random.default_rng(1)
    u, v = rng.normal(size=50), rng.normal(1, 2, size=70)
    uw, vw = rng.uniform(0, 3, 50), rng.uniform(0, 1, 70)
    assert st.wasserstein(u, uw, v, vw) == pytest.approx(
        stats.wasserstein_distance(u, v, uw, vw), rel=1e-12
    )


def test_wasserstein_of_raw_samples_with_unit_weights_is_scipys() -> None:
    rng = np.random.default_rng(2)
    u, v = rng.lognormal(size=300), rng.lognormal(0.2, size=500)
    assert st.wasserstein(u, np.ones(300), v, np.ones(500)) == pytest.approx(
        stats.wasserstein_distance(u, v), rel=1e-12
    )


def test_jensen_shannon_is_scipys_distance_in_base_2() -> None:
    p, q = np.array([10, 0, 5, 85]), np.array([3, 7, 0, 90])
    assert st.jensen_shannon(p, q) == pytest.approx(jensenshannon(p, q, base=2), rel=1e-12)
    assert st.jensen_shannon(p, p) == 0
    assert st.jensen_shannon(np.array([1, 0]), np.array([0, 1])) == pytest.approx(1)


def test_psi_is_the_symmetric_kl_divergence_with_empty_bins_floored() -> None:
    p, q = np.array([40.0, 30, 20, 10]), np.array([25.0, 25, 25, 25])
    ps, qs = p / p.sum(), q / q.sum()
    assert st.psi(p, q) == pytest.approx(stats.entropy(ps, qs) + stats.entropy(qs, ps))
    assert st.psi(p, p) == 0
    with_empty = st.psi(np.array([50.0, 50, 0]), np.array([45.0, 45, 10]))
    assert math.isfinite(with_empty) and with_empty > 0.5  # floored at 0.01 %, not infinite


def test_chi2_homogeneity_is_scipys_contingency_test_without_yates() -> None:
    ref, cur = np.array([600, 200, 200, 0]), np.array([300, 350, 340, 10])
    statistic, pvalue = st.chi2_homogeneity(ref, cur)
    want = stats.chi2_contingency(np.vstack([ref, cur])[:, :4], correction=False)
    assert statistic == pytest.approx(want.statistic)
    assert pvalue == pytest.approx(want.pvalue, abs=1e-300)
    two = st.chi2_homogeneity(np.array([30, 70]), np.array([45, 55]))
    want2 = stats.chi2_contingency(np.array([[30, 70], [45, 55]]), correction=False)
    assert two == pytest.approx((want2.statistic, want2.pvalue))


def test_chi2_of_one_category_has_nothing_to_test() -> None:
    assert st.chi2_homogeneity(np.array([5, 0]), np.array([9, 0])) == (0.0, 1.0)


def test_two_proportions_is_the_2x2_chi2_test() -> None:
    pvalue = st.two_proportions(12, 400, 35, 500)
    table = np.array([[12, 388], [35, 465]])
    assert pvalue == pytest.approx(stats.chi2_contingency(table, correction=False).pvalue)
    assert st.two_proportions(0, 100, 0, 100) == 1.0
    assert math.isnan(st.two_proportions(0, 0, 1, 1))


def test_cohens_h() -> None:
    assert st.cohens_h(0.0, 0.15) == pytest.approx(2 * math.asin(math.sqrt(0.15)))
    assert st.cohens_h(0.3, 0.3) == 0
