"""``drift(reference, current)``: has the data moved, column by column, and has the dataset?

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> train = {"price": rng.normal(10, 2, 20_000), "region": rng.choice(["n", "s"], 20_000)}
>>> today = {"price": rng.normal(11, 2, 20_000), "region": rng.choice(["n", "s"], 20_000)}
>>> report = drift(train, today)
>>> [(name, col.method, col.drifted) for name, col in report.columns.items()]
[('price', 'wasserstein', True), ('region', 'jensen_shannon', False)]
>>> report.share_drifted, report.dataset_drifted
(0.5, True)

``reference`` is a table (pandas or polars DataFrame, Arrow table, dict of arrays), a CSV or
Parquet path, a dataset version (``"sales@3"``, with ``data_client``), a stored profile file
(``ReferenceProfile.to_bytes``) or a ``ReferenceProfile``; ``current`` is a table, a path, a
dataset version or a ``CurrentSummary`` of that profile. A profile is what a drift check
keeps of the reference (quantile bins, category counts, missing counts, a sample:
``profiles``), so a check against a stored profile never reloads the training data.

**The default method and threshold per column** follow the sample size ``n``, the number of
non-missing values on the smaller side:

* ``n < 5,000`` — a test: numerical columns the two-sample Kolmogorov–Smirnov test,
  categorical ones Pearson's χ² test; drifted when ``p < 0.05``.
* ``n >= 5,000`` — an effect size, because with enough rows every test flags negligible
  shifts (at a million rows KS has a p-value below 0.05 for a 0.003 σ shift): numerical
  columns the Wasserstein distance divided by the reference's standard deviation, drifted
  at ``>= 0.1`` (a 0.1 σ mean shift; a 0.5 σ shift scores 0.5, a 1.6× spread 0.48, a normal
  turned into a standardised gamma(4) — same mean and spread, skew 1 — 0.16); categorical
  columns the Jensen–Shannon distance (base 2) over the categories, unseen ones pooled into
  one, drifted at ``>= 0.1`` (a new category taking 15 % of rows scores 0.28, one category
  going from 60 % to 30 % about 0.25). A categorical column also needs 150 values per
  category for the effect size (below that, two samples of the same distribution already
  differ by ~0.05); with fewer it keeps the χ² test.

The cut at 5,000 is where the two rules agree: a 5 % KS test detects about a 0.07 σ shift
there, near the effect size's 0.1 σ; above it the test would flag ever smaller shifts, below
it the effect size would start flagging noise (two samples of 1,000 differ by ~0.05 σ).

**The missing rate** (null, NaN or ±∞) is judged on its own, by rows: below 5,000 rows on
the smaller side the two-proportion z-test at ``p < 0.05``, above it Cohen's h
``>= 0.2`` (0 % → 1 %, 10 % → 17 %, 0 % → 15 % scores 0.8). A column is drifted when its
values drifted *or* its missing rate did.

``method={"price": "psi"}`` and ``threshold={"price": 0.2}`` override per column
(numerical: ``ks``, ``wasserstein``, ``psi``, ``jensen_shannon``; categorical: ``chi2``,
``psi``, ``jensen_shannon``; p-value methods drift *below* their threshold, distances *at or
above* it; default thresholds 0.05, 0.1, 0.2 for PSI, 0.1). Every statistic is computed
either way and kept in ``ColumnDrift.scores``:

* numerical — ``ks_statistic`` and ``ks_pvalue`` (on the reference's sample and a uniform
  sample of the current values, at most ``sample_size`` = 10,000 each: exact below that),
  ``wasserstein_norm`` (on the 1,000 quantile bins, each bin's mass at its mean: within
  ~0.005 σ of SciPy's exact distance), ``psi`` and ``jensen_shannon`` (on 20 equal-mass
  reference bins, open at both ends), ``mean_shift`` (in reference σ) and ``std_ratio``;
* categorical — ``chi2_statistic``, ``chi2_pvalue``, ``psi``, ``jensen_shannon`` (over the
  reference's top 1,000 categories, "(other)" and "(unseen)"), ``unseen_share`` (share of
  current values whose label the reference never had);
* both — ``missing_pvalue`` and ``missing_effect`` (Cohen's h).

**What cannot be compared** is said by name in ``DriftReport.errors`` and counts as drifted
(a broken input never reads as "no drift"): a column missing from the current data, a
changed type (numbers in the reference, text now), a column with fewer than two values in
the reference (a one-row reference), or in the current data unless its missing rate already
says it drifted (an all-null column then reads "drifted: no current values to compare;
missing 0.0% → 100.0%"). An empty current table is an ``InvalidParameter``.
``share_drifted`` is drifted columns (errors included) over all compared ones;
``dataset_drifted`` is ``share_drifted >= share`` (default 0.5).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from modelyard.errors import InvalidParameter
from modelyard.monitoring.profiles import ReferenceProfile, compare
from modelyard.monitoring.results import DriftReport
from modelyard.monitoring.summaries import CurrentSummary


def drift(
    reference: Any,
    current: Any,
    *,
    columns: Iterable[str] | None = None,
    method: dict[str, str] | None = None,
    threshold: dict[str, float] | None = None,
    share: float = 0.5,
    data_client: Any = None,
) -> DriftReport:
    """Compare ``current`` with ``reference`` (see the module docstring for what each may
    be and how each column is judged). ``columns`` restricts the check to those columns."""
    from modelyard.monitoring.tables_input import load_current, load_reference

    names = None if columns is None else list(columns)
    profile = load_reference(reference, data_client=data_client, columns=names)
    if isinstance(current, CurrentSummary):
        if current.reference is not profile:
            raise InvalidParameter(
                "the current summary was built on another reference profile: pass that "
                "profile as the reference (summary.reference)",
                field="current",
            )
        summary = current
    else:
        table = load_current(current, data_client=data_client)
        summary = profile.summarizer(names)
        summary.update(table)
    return compare(profile, summary, method=method, threshold=threshold, share=share)


__all__ = ["ReferenceProfile", "drift"]
