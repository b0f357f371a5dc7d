"""Artifact storage: content-addressed blobs over fsspec, and a path index over them."""
