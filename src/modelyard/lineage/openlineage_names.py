"""Where a dataset lives, spelled both ways: an OpenLineage ``(namespace, name)`` and the
URI of a ``location:<uri>`` node.

OpenLineage's naming convention puts a local file in namespace ``file`` with its absolute
path as the name, and object storage in ``s3://bucket`` (``gs://…``, ``hdfs://host``) with
the key as the name. A dataset version snapshotted from a file is linked from the same
``location:file:///…`` node (``data snapshot`` of a path: ``store.lineage.location``), so
a job another tool reported as writing that file and the dataset version read from it
meet in one graph.

>>> location_uri("file", "/data/sales.csv")
'file:///data/sales.csv'
>>> location_dataset("s3://lake/raw/sales.parquet")
('s3://lake', 'raw/sales.parquet')
"""

from __future__ import annotations

import posixpath
from urllib.parse import urlsplit

from modelyard.store.lineage import node


def location_uri(namespace: str, name: str) -> str:
    """The URI of an OpenLineage dataset (a file's ``file://`` URI, a bucket key's URL)."""
    if namespace == "file" or namespace.startswith("file:"):
        return "file://" + posixpath.normpath("/" + name.lstrip("/"))
    return namespace.rstrip("/") + "/" + name.lstrip("/")


def location_dataset(uri: str) -> tuple[str, str]:
    """The OpenLineage ``(namespace, name)`` of a URI: the inverse of ``location_uri``."""
    if uri.startswith("file://"):
        return "file", uri[len("file://") :]
    parts = urlsplit(uri)
    if parts.scheme and parts.netloc:
        return f"{parts.scheme}://{parts.netloc}", parts.path.lstrip("/")
    return "file", uri


def location_node(uri: str) -> str:
    return node("location", uri)
