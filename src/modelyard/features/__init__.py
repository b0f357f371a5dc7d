"""The feature store: define features once, build point-in-time-correct training sets,
and serve the same values online. ``FeatureStore`` (``modelyard.features.client``) is the
entry point; definitions live in ``modelyard.features.definitions``."""
