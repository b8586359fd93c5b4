"""Workflow commands on stdout, and the GITHUB_OUTPUT / GITHUB_STEP_SUMMARY files.

The runner reads ``::name key=value::message`` lines from the step's stdout (leading
white space allowed), and also obeys the legacy ``##[name key=value]message`` form
anywhere in a line. Every line the action prints goes through :func:`inert`, so that
text from the event, W&B or a manifest never forms a command; only :class:`Console`'s
own command heads do. Messages escape ``%``, CR and LF; property values also ``:`` and
``,``. Outputs are appended to ``$GITHUB_OUTPUT`` as ``name=value`` or, for any value
with a line break, as a heredoc ``name<<DELIM`` ... ``DELIM`` with a random delimiter
that does not occur in the value.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TextIO

from action.errors import LocalError


def inert(text: str) -> str:
    """``text`` as a log line that the runner reads as no command: line breaks shown as
    ``\\n``/``\\r``, every ``##[`` broken up, a leading ``::`` split."""
    text = text.replace("\r", "\\r").replace("\n", "\\n").replace("##[", "# #[")
    if text.lstrip().startswith("::"):
        text = text.replace("::", ": :", 1)
    return text


def escape_data(value: str) -> str:
    """Escape a command message."""
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(value: str) -> str:
    """Escape a command property value (``title=...``)."""
    return escape_data(value).replace(":", "%3A").replace(",", "%2C")


class Console:
    """Writes log lines and workflow commands to one stream, one whole line at a time.

    Threads of the downloader log through the same console; the lock keeps lines whole.
    """

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def line(self, text: str) -> None:
        """One log line, made :func:`inert`: it may hold names from a payload or W&B."""
        self._write(inert(text))

    def command(self, name: str, message: str = "", **props: str) -> None:
        """``::name props::message``; the message and the properties are made inert."""
        prop_text = ",".join(f"{k}={inert(escape_property(v))}" for k, v in props.items() if v)
        head = f"::{name} {prop_text}::" if prop_text else f"::{name}::"
        self._write(head + inert(escape_data(message)))

    def add_mask(self, value: str) -> None:
        """Ask the runner to hide ``value`` (the API key, as is) in every later line."""
        if value:
            self._write("::add-mask::" + escape_data(value))

    def _write(self, line: str) -> None:
        with self._lock:
            self._stream.write(line + "\n")
            self._stream.flush()

    def error(self, message: str, *, title: str = "") -> None:
        self.command("error", message, title=title)

    def warning(self, message: str, *, title: str = "") -> None:
        self.command("warning", message, title=title)

    def group(self, name: str) -> None:
        self.command("group", name)

    def endgroup(self) -> None:
        self.command("endgroup")


def format_output(name: str, value: str) -> str:
    """One output in GITHUB_OUTPUT syntax, a heredoc when the value spans lines."""
    if "\n" not in value and "\r" not in value:
        return f"{name}={value}\n"
    while True:
        delimiter = f"ghadelimiter_{secrets.token_hex(16)}"
        if delimiter not in value:
            break
    return f"{name}<<{delimiter}\n{value}\n{delimiter}\n"


def write_outputs(path: str | None, outputs: Mapping[str, str], console: Console) -> None:
    """Append every output to ``$GITHUB_OUTPUT``; without it (a local run) print them."""
    text = "".join(format_output(name, value) for name, value in outputs.items())
    if not path:
        console.line("GITHUB_OUTPUT is not set; outputs:")
        for name, value in outputs.items():
            console.line(f"  {name}={value}")
        return
    _append(path, text, "GITHUB_OUTPUT")


def append_summary(path: str | None, markdown: str) -> None:
    """Append Markdown to the step summary, when the runner offers one."""
    if path:
        _append(path, markdown, "GITHUB_STEP_SUMMARY")


def _append(path: str, text: str, what: str) -> None:
    try:
        with Path(path).open("a", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
    except OSError as exc:
        raise LocalError(
            f"cannot append to {what} ({path}): {exc.strerror or exc}.",
            fix="Run the action on a GitHub runner, or point the variable at a writable file.",
        ) from exc
