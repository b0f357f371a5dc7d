"""Nothing in the repository points outside it.

A clone is all a reader has: a link to ``../shared/DESIGN.md`` (a file beside the checkout
on one machine) is a dead end everywhere else. So every relative link in a tracked Markdown
file must name a file inside the repository that exists, a ``../…`` path written in one
must stay inside the repository, and any tracked file that mentions a document by a
``../…`` path must name one that is here.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: ``[text](target "title")`` and ``[label]: target``.
INLINE_LINK = re.compile(r"\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_LINK = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.MULTILINE)
FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
UPWARD = re.compile(r"(?<![\w./-])((?:\.\./)+[\w.\-/]*)")
UPWARD_DOCUMENT = re.compile(r"(?<![\w./-])((?:\.\./)+[\w.\-/]+\.(?:md|rst))\b")
WEB_SCHEMES = ("http://", "https://", "mailto:")


def tracked(*patterns: str) -> list[Path]:
    """The files git tracks (matching ``patterns``), or a skip outside a git checkout."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--", *patterns],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout.decode()
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: the tracked files are unknown")
    return [ROOT / name for name in listed.split("\0") if name and (ROOT / name).is_file()]


def text_of(path: Path) -> str | None:
    """The file's text, or None for a binary file."""
    data = path.read_bytes()
    if b"\0" in data[:8192]:
        return None
    return data.decode("utf-8", errors="replace")


def escapes(base: Path, target: str) -> bool:
    return not (base / target).resolve().is_relative_to(ROOT)


def link_problems(markdown: Path) -> list[str]:
    text = markdown.read_text(encoding="utf-8")
    prose = FENCE.sub("", text)
    targets = INLINE_LINK.findall(prose) + REFERENCE_LINK.findall(prose)
    problems = []
    for target in targets:
        if target.startswith(WEB_SCHEMES) or target.startswith("#"):
            continue
        path = re.split(r"[#?]", target, maxsplit=1)[0]
        if re.match(r"[A-Za-z][A-Za-z0-9+.-]*:", target) or path.startswith("/"):
            problems.append(f"{target} (not a path in the repository)")
        elif escapes(markdown.parent, path):
            problems.append(f"{target} (outside the repository)")
        elif not (markdown.parent / path).exists():
            problems.append(f"{target} (no such file)")
    problems += [
        f"{path} (outside the repository)"
        for path in UPWARD.findall(text)
        if escapes(markdown.parent, path)
    ]
    return problems


@pytest.mark.parametrize("markdown", tracked("*.md"), ids=lambda p: str(p.relative_to(ROOT)))
def test_markdown_links_resolve_inside_the_repository(markdown: Path) -> None:
    assert not link_problems(markdown), f"{markdown.relative_to(ROOT)}: {link_problems(markdown)}"


def test_no_tracked_file_names_a_document_outside_the_repository() -> None:
    problems = []
    for path in tracked():
        text = text_of(path)
        if text is None or path == Path(__file__).resolve():  # its examples are on purpose
            continue
        for target in UPWARD_DOCUMENT.findall(text):
            if escapes(path.parent, target) or not (path.parent / target).exists():
                problems.append(f"{path.relative_to(ROOT)}: {target}")
    assert not problems, "point these at a file in the repository: " + ", ".join(problems)


def test_the_architecture_page_is_in_the_repository_and_linked() -> None:
    assert (ROOT / "docs" / "architecture.md").is_file()
    for page in ("README.md", "DEVELOPERS.md"):
        assert "(docs/architecture.md)" in (ROOT / page).read_text(encoding="utf-8"), page


def test_the_checks_catch_a_link_outside_the_repository() -> None:
    page = ROOT / "docs" / "architecture.md"
    assert escapes(page.parent, "../../shared/DESIGN.md")
    assert not escapes(page.parent, "../README.md")
    assert UPWARD.findall("See `../shared/DESIGN.md`.") == ["../shared/DESIGN.md"]
    assert INLINE_LINK.findall("[design](../shared/DESIGN.md)") == ["../shared/DESIGN.md"]
