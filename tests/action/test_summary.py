"""``action.summary``: the step summary is plain text to a Markdown renderer."""

from __future__ import annotations

import pytest

from action.artifact import Artifact
from action.summary import Result, failure, skipped, success, text


@pytest.mark.parametrize(
    ("value", "markdown"),
    [
        ("plain words 123", "plain words 123"),
        ("a|b", "a\\|b"),
        ("[x](https://e.example)", "\\[x\\]\\(https\\:\\/\\/e\\.example\\)"),
        ("<img src=x>", "\\<img src\\=x\\>"),
        ("&amp;", "\\&amp\\;"),
        ("*b* _i_ `c`", "\\*b\\* \\_i\\_ \\`c\\`"),
        ("one\ntwo\r\nthree\rfour", "one two three four"),
        ("back\\slash|", "back\\\\slash\\|"),
        ("# heading", "\\# heading"),
        ("www.e.example", "www\\.e\\.example"),
    ],
)
def test_text(value: str, markdown: str) -> None:
    assert text(value) == markdown


def test_success_is_one_table_row_per_fact() -> None:
    artifact = Artifact("id", "acme", "p", "m|x", 3, ("prod",), "d", "model", "COMMITTED", 0, 0, "")
    result = Result(artifact, "/w/a", 2, 2048, 1, 1024, (), "LINK_MODEL", "al|ice", 2.0)
    lines = success(result).splitlines()
    assert lines[0] == "### W&B artifact acme\\/p\\/m\\|x\\:v3"
    assert "| event | LINK\\_MODEL by al\\|ice |" in lines
    assert "| files | 2 \\(1 downloaded\\, 1 already present\\) |" in lines
    assert all(line.count("|") - line.count("\\|") in (0, 3) for line in lines)


def test_skipped_and_failure() -> None:
    assert skipped("x\ny") == "### W&B artifact: skipped\n\nx y\n\n"
    assert failure("T", "<b>") == "### W&B artifact: failed\n\n**T**: \\<b\\>\n\n"
