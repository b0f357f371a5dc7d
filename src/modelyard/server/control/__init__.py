"""The control plane (``modelyard server``): the MLflow-compatible tracking and registry
APIs, the native API, the artifact proxy, authentication and metrics."""
