"""Serving: deployments with traffic policies, and the parts the data plane is built from.

``deployments`` owns the rules (environments, promotion gates, revisions, audit events);
``routing`` decides which variant answers a request; ``runtime`` loads the versions a
revision names; ``batching``, ``compiled``, ``prediction_log`` and ``feedback`` are the
hot-path helpers; ``ab_report`` and ``packaging`` serve the CLI.
"""
