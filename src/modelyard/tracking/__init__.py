"""Experiment tracking: experiments, runs, params, metrics, tags, inputs, artifacts."""
