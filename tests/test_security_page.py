"""The security page keeps up with the code: every folder the artifact proxy guards, and
every reserved namespace, is named on it."""

from __future__ import annotations

from pathlib import Path

from modelyard.artifacts.namespaces import SYSTEM_FOLDERS
from modelyard.registry.reserved_tags import SYSTEM_TAG_PREFIX

ROOT = Path(__file__).resolve().parents[1]
PAGE = (ROOT / "SECURITY.md").read_text()


def test_the_readme_links_the_security_page():
    assert "(SECURITY.md)" in (ROOT / "README.md").read_text()


def test_every_guarded_folder_is_named():
    missing = sorted(f for f in SYSTEM_FOLDERS if f"`{f}/`" not in PAGE)
    assert missing == [], f"SECURITY.md does not name these guarded folders: {missing}"


def test_the_reserved_tag_namespace_is_named():
    assert f"`{SYSTEM_TAG_PREFIX}`" in PAGE


def test_it_covers_the_threat_model_tls_the_audit_anchor_and_reporting():
    for heading in (
        "## The threat model",
        "## What is trusted",
        "## The audit trail and its anchor",
        "## Running it safely",
        "## Reporting a vulnerability",
    ):
        assert heading in PAGE
    assert "TLS" in PAGE and "--anchor" in PAGE
