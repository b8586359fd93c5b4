"""The step summary (Markdown) and the log's closing lines."""

from __future__ import annotations

from dataclasses import dataclass

from action.artifact import Artifact
from action.progress import human_bytes


@dataclass(frozen=True)
class Result:
    """What a finished run did, for the summary."""

    artifact: Artifact
    path: str
    files: int
    total_bytes: int
    fetched_files: int
    fetched_bytes: int
    skipped_refs: tuple[str, ...]
    event_type: str
    event_author: str
    seconds: float


def _cell(value: str) -> str:
    return value.replace("|", "\\|").replace("\n", " ")


def success(result: Result) -> str:
    a = result.artifact
    rate = result.fetched_bytes / result.seconds if result.seconds > 0 else 0.0
    rows = [
        ("version", f"{a.version}" + (f" (aliases: {', '.join(a.aliases)})" if a.aliases else "")),
        ("type", a.type or "-"),
        (
            "event",
            f"{result.event_type or '-'}"
            + (f" by {result.event_author}" if result.event_author else ""),
        ),
        (
            "files",
            f"{result.files} ({result.fetched_files} downloaded, "
            f"{result.files - result.fetched_files} already present)",
        ),
        (
            "size",
            f"{human_bytes(result.total_bytes)} ({human_bytes(result.fetched_bytes)} downloaded)",
        ),
        ("path", f"`{result.path}`"),
        ("time", f"{result.seconds:.1f} s ({human_bytes(rate)}/s)"),
    ]
    if result.skipped_refs:
        rows.append(("skipped references", str(len(result.skipped_refs))))
    lines = [f"### W&B artifact `{_cell(a.name)}`", "", "| | |", "|---|---|"]
    lines += [f"| {k} | {_cell(v)} |" for k, v in rows]
    return "\n".join(lines) + "\n\n"


def skipped(reason: str) -> str:
    return f"### W&B artifact: skipped\n\n{_cell(reason)}\n\n"


def failure(title: str, message: str) -> str:
    return f"### W&B artifact: failed\n\n**{_cell(title)}**: {_cell(message)}\n\n"
