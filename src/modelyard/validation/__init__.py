"""Model validation: cross-validation, slices, fairness, behavioural tests, quality gates."""
