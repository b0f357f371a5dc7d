"""The data plane (``modelyard serve``): the inference app, its Open Inference Protocol
routes, metrics and token checks."""
