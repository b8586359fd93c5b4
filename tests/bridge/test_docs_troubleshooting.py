"""docs/troubleshooting.md quotes the bridge: what an operator greps for must be what the
bridge writes, and the refusals it lists must be those docs/http.md documents.

A log message is compared with the string constants of ``bridge/`` (adjacent literals
and the text of f-strings, as Python's parser joins them), in fragments: the page's
placeholders (``...``, a number, ``N``, ``HOST:PORT/DB``, the quickstart's file name)
stand for what the bridge fills in.
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "troubleshooting.md"

PLACEHOLDER = re.compile(r"\.\.\.|\b[A-Z]+(?::[A-Z]+)?(?:/[A-Z]+)?\b|\bwandb-bridge\.db\b|\d+")
FIELD = re.compile(r" ([a-z_]+)=")
GREP = re.compile(r"grep -F '([^']+)'")
REFUSAL = re.compile(r"^\| `(\d{3}) ([a-z_]+)` \|", re.MULTILINE)


@cache
def bridge_text() -> tuple[list[str], set[str]]:
    """Every string constant in bridge/, and every keyword given to ``fields(...)``."""
    constants: list[str] = []
    keywords: set[str] = set()
    for path in (ROOT / "bridge").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                constants.append(node.value)
            elif isinstance(node, ast.Call) and getattr(node.func, "id", "") == "fields":
                keywords.update(k.arg for k in node.keywords if k.arg)
    return constants, keywords


def written_by_bridge(text: str) -> bool:
    """Whether every fixed fragment of ``text`` is in one of bridge/'s strings."""
    constants, _ = bridge_text()
    fragments = [f.strip() for f in PLACEHOLDER.split(text)]
    return all(any(f in c for c in constants) for f in fragments if len(f) >= 3)


def is_field(name: str) -> bool:
    constants, keywords = bridge_text()
    return name in keywords or any(f"{name}=" in c for c in constants)


def log_lines(page: str) -> list[str]:
    """The lines of the page's unlabelled code blocks: log lines as the bridge writes them."""
    lines: list[str] = []
    fence: str | None = None
    for line in page.splitlines():
        if line.lstrip().startswith("```"):
            fence = line.strip().removeprefix("```") if fence is None else None
        elif fence == "" and line.strip():
            lines.append(line.strip())
    return lines


def log_says_column(page: str) -> list[str]:
    """The quoted cells of the first column of the table headed "the log says"."""
    table = page.split("| the log says |", 1)[1].split("\n\n", 1)[0]
    cells = [row.split(" | ", 1)[0] for row in table.splitlines()[2:]]
    return [quoted for cell in cells for quoted in re.findall(r"`([^`]+)`", cell)]


def test_the_page_quotes_log_lines_and_greps() -> None:
    page = PAGE.read_text(encoding="utf-8")
    assert len(log_lines(page)) >= 3
    assert len(GREP.findall(page)) >= 4
    assert len(log_says_column(page)) >= 5


def test_every_quoted_log_message_is_one_the_bridge_writes() -> None:
    page = PAGE.read_text(encoding="utf-8")
    wrong = []
    for line in log_lines(page):
        message = FIELD.split(line, 1)[0]  # the fixed message, before its fields
        if not written_by_bridge(message) or not all(is_field(f) for f in FIELD.findall(line)):
            wrong.append(line)
    wrong += [text for text in log_says_column(page) if not written_by_bridge(text)]
    assert wrong == []


def test_every_grep_finds_a_message_or_field_the_bridge_writes() -> None:
    wrong = []
    for pattern in GREP.findall(PAGE.read_text(encoding="utf-8")):
        name, equals, value = pattern.partition("=")
        if equals:
            constants, _ = bridge_text()
            known = is_field(name) and (not value or value in constants)
        else:
            known = written_by_bridge(pattern)
        if not known:
            wrong.append(pattern)
    assert wrong == []


def test_every_refusal_listed_is_documented_with_its_status() -> None:
    page = PAGE.read_text(encoding="utf-8")
    http = (ROOT / "docs" / "http.md").read_text(encoding="utf-8")
    refusals = REFUSAL.findall(page)
    assert len(refusals) >= 10
    assert [f"{s} {c}" for s, c in refusals if f"{s} {c}" not in http] == []


def test_fragments_catch_a_message_the_bridge_does_not_write() -> None:
    """The comparison itself: a real message passes, one changed by a word does not."""
    real = "the SQLite database wandb-bridge.db does not exist (deleted or moved?)"
    assert written_by_bridge(real)
    assert not written_by_bridge(real.replace("moved", "renamed"))
    assert is_field("outcome") and not is_field("outcomes_seen")
