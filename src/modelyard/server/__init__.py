"""HTTP interfaces of the control plane: the MLflow-compatible API and the artifact proxy."""
