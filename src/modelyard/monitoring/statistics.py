"""The drift statistics, each on whole arrays (sorted samples, bin counts): no loop over rows.

Every function here is checked against SciPy in tests/monitoring/test_statistics.py:

* ``ks_two_sample``: the two-sample Kolmogorov–Smirnov statistic (exact, from the sorted
  samples) and its p-value — SciPy's exact distribution while the samples are small
  (``n·m <= 250,000``), else Kolmogorov's limiting distribution at the effective size
  ``en = n·m/(n+m)`` with Stephens' correction (``√en + 0.12 + 0.11/√en``), within 1 % (or 1e-6) of
  SciPy's ``kstwo`` at ``en >= 250`` and ~10,000× cheaper (``scipy.special.kolmogorov``);
* ``wasserstein``: the 1-Wasserstein (earth mover's) distance between two weighted point sets
  (``scipy.stats.wasserstein_distance`` with weights), used on bin means;
* ``psi``: the population stability index ``Σ (q − p) ln(q / p)`` on shares, with empty bins
  read as a share of ``PSI_FLOOR`` (the usual convention; PSI is infinite otherwise);
* ``jensen_shannon``: the Jensen–Shannon *distance* in base 2 (0 equal, 1 disjoint), as
  ``scipy.spatial.distance.jensenshannon(p, q, base=2)``;
* ``chi2_homogeneity``: Pearson's χ² test that two count vectors share one distribution
  (``scipy.stats.chi2_contingency(..., correction=False)`` on the 2×k table);
* ``two_proportions``: the pooled two-proportion z-test (the 2×2 χ² test without Yates'
  correction), and ``cohens_h``, its effect size (``|2 asin √p₁ − 2 asin √p₂|``).
"""

from __future__ import annotations

import math

import numpy as np

#: The share an empty bin is read as in PSI (0.01 %), so one empty bin does not make it ∞.
PSI_FLOOR = 1e-4
#: Up to this n·m the KS p-value is SciPy's exact one; above it the asymptotic distribution.
KS_EXACT_MAX_PRODUCT = 250_000


def ks_two_sample(a_sorted: np.ndarray, b_sorted: np.ndarray) -> tuple[float, float]:
    """(statistic, two-sided p-value) of the two-sample KS test on two *sorted* samples."""
    n, m = len(a_sorted), len(b_sorted)
    if n == 0 or m == 0:
        return math.nan, math.nan
    both = np.concatenate([a_sorted, b_sorted])
    cdf_a = np.searchsorted(a_sorted, both, side="right") / n
    cdf_b = np.searchsorted(b_sorted, both, side="right") / m
    statistic = float(np.max(np.abs(cdf_a - cdf_b)))
    exact = math.nan
    if n * m <= KS_EXACT_MAX_PRODUCT:
        import warnings

        from scipy import stats

        with warnings.catch_warnings():  # where SciPy cannot, it says so and goes asymptotic
            warnings.simplefilter("error", RuntimeWarning)
            try:
                exact = float(stats.ks_2samp(a_sorted, b_sorted, method="exact").pvalue)
            except RuntimeWarning:
                exact = math.nan
    if not math.isnan(exact):
        pvalue = exact
    else:
        from scipy.special import kolmogorov

        root = math.sqrt(n * m / (n + m))
        pvalue = float(kolmogorov((root + 0.12 + 0.11 / root) * statistic))
    return statistic, min(max(pvalue, 0.0), 1.0)


def wasserstein(
    u_points: np.ndarray, u_weights: np.ndarray, v_points: np.ndarray, v_weights: np.ndarray
) -> float:
    """1-Wasserstein distance between two weighted point sets (weights need not sum to 1).

    ∫ |F_u − F_v| dx over the merged, sorted support: the CDF difference is constant between
    consecutive points.
    """
    u_total, v_total = float(np.sum(u_weights)), float(np.sum(v_weights))
    if u_total <= 0 or v_total <= 0:
        return math.nan
    points = np.concatenate([u_points, v_points])
    signed = np.concatenate([u_weights / u_total, -v_weights / v_total])
    order = np.argsort(points, kind="stable")
    points, signed = points[order], signed[order]
    cdf_gap = np.cumsum(signed)[:-1]
    return float(np.sum(np.abs(cdf_gap) * np.diff(points)))


def _shares(counts: np.ndarray) -> np.ndarray:
    total = counts.sum()
    return counts / total if total > 0 else np.full(len(counts), math.nan)


def psi(reference_counts: np.ndarray, current_counts: np.ndarray) -> float:
    """Population stability index of two count vectors over the same bins."""
    p = np.maximum(_shares(np.asarray(reference_counts, dtype=np.float64)), PSI_FLOOR)
    q = np.maximum(_shares(np.asarray(current_counts, dtype=np.float64)), PSI_FLOOR)
    return float(np.sum((q - p) * np.log(q / p)))


def jensen_shannon(reference_counts: np.ndarray, current_counts: np.ndarray) -> float:
    """Jensen–Shannon distance (base 2, in [0, 1]) of two count vectors over the same bins."""
    from scipy.special import rel_entr

    p = _shares(np.asarray(reference_counts, dtype=np.float64))
    q = _shares(np.asarray(current_counts, dtype=np.float64))
    m = (p + q) / 2
    divergence = (np.sum(rel_entr(p, m)) + np.sum(rel_entr(q, m))) / 2 / math.log(2)
    return float(math.sqrt(max(float(divergence), 0.0)))


def chi2_homogeneity(
    reference_counts: np.ndarray, current_counts: np.ndarray
) -> tuple[float, float]:
    """(χ², p-value) of Pearson's test that both count vectors come from one distribution.

    Categories empty on both sides are dropped (they carry no information); one category
    left means nothing can differ (χ² 0, p 1).
    """
    from scipy.special import chdtrc

    table = np.vstack([reference_counts, current_counts]).astype(np.float64)
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2:
        return 0.0, 1.0
    rows = table.sum(axis=1, keepdims=True)
    if np.any(rows == 0):
        return math.nan, math.nan
    expected = rows * table.sum(axis=0, keepdims=True) / table.sum()
    statistic = float(np.sum((table - expected) ** 2 / expected))
    return statistic, float(chdtrc(table.shape[1] - 1, statistic))


def two_proportions(k1: int, n1: int, k2: int, n2: int) -> float:
    """Two-sided p-value of the pooled z-test that k1/n1 and k2/n2 share one proportion."""
    from scipy.special import ndtr

    if n1 <= 0 or n2 <= 0:
        return math.nan
    pooled = (k1 + k2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return 1.0
    z = abs(k1 / n1 - k2 / n2) / se
    return float(2 * ndtr(-z))


def cohens_h(p1: float, p2: float) -> float:
    """Cohen's h, the effect size of two proportions: 0.2 small, 0.5 medium, 0.8 large."""
    return abs(2 * math.asin(math.sqrt(p1)) - 2 * math.asin(math.sqrt(p2)))
