"""Workflow commands and the GITHUB_OUTPUT format."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from action.commands import Console, escape_data, escape_property, format_output, write_outputs
from action.errors import LocalError
from tests.action.harness import parse_outputs


def test_escaping() -> None:
    assert escape_data("50% done\r\nnext") == "50%25 done%0D%0Anext"
    assert escape_property("a:b,c%") == "a%3Ab%2Cc%25"


def test_commands() -> None:
    out = io.StringIO()
    console = Console(out)
    console.add_mask("s3cr%t")
    console.add_mask("")
    console.error("line one\nline two", title="Bad: thing, really")
    console.warning("careful")
    console.group("Files")
    console.endgroup()
    assert out.getvalue().splitlines() == [
        "::add-mask::s3cr%25t",
        "::error title=Bad%3A thing%2C really::line one%0Aline two",
        "::warning::careful",
        "::group::Files",
        "::endgroup::",
    ]


def test_a_log_line_cannot_start_a_command() -> None:
    out = io.StringIO()
    Console(out).line("downloaded model.bin\n::error::forged\r\n")
    assert out.getvalue() == "downloaded model.bin\\n::error::forged\\r\\n\n"


def test_single_and_multi_line_outputs() -> None:
    assert format_output("a", "b=c") == "a=b=c\n"
    text = format_output("d", "x\ny")
    name, delimiter = text.splitlines()[0].split("<<")
    assert name == "d" and text == f"d<<{delimiter}\nx\ny\n{delimiter}\n"
    assert format_output("e", "\r") != "e=\r\n"  # a lone CR is a line break to the runner


@given(
    st.dictionaries(
        st.from_regex(r"[a-z][a-z0-9-]{0,10}", fullmatch=True),
        st.text(alphabet=st.characters(blacklist_characters="\r"), max_size=40),
        max_size=5,
    )
)
def test_outputs_round_trip(outputs: dict[str, str]) -> None:
    text = "".join(format_output(k, v) for k, v in outputs.items())
    assert parse_outputs(text) == outputs


def test_write_outputs_appends(tmp_path: Path) -> None:
    path = tmp_path / "out"
    path.write_text("earlier=1\n")
    write_outputs(str(path), {"a": "1", "b": "two\nlines"}, Console(io.StringIO()))
    assert parse_outputs(path.read_text()) == {"earlier": "1", "a": "1", "b": "two\nlines"}


def test_unwritable_output_file(tmp_path: Path) -> None:
    with pytest.raises(LocalError, match="GITHUB_OUTPUT"):
        write_outputs(str(tmp_path / "missing" / "out"), {"a": "1"}, Console(io.StringIO()))
