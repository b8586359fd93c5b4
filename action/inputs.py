"""The runner's environment and the action's inputs, read once into frozen settings.

``action.yml`` maps every input into a namespaced variable ``WANDB_ACTION_<NAME>``
(composite actions get no ``INPUT_*`` variables). Empty means "not set", as the runner
passes an unset input with a default of ``""``. Every problem is reported at once.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from action.errors import InputError
from action.http import redact_url

PREFIX = "WANDB_ACTION_"
DEFAULT_BASE_URL = "https://api.wandb.ai"
DEFAULT_CONCURRENCY = 8
MAX_CONCURRENCY = 64
DEFAULT_PROGRESS_INTERVAL = 10.0

_KEY = re.compile(r"[!-~]+")  # printable ASCII: what HTTP Basic auth can carry
_TRUE = {"true", "yes", "1", "on"}
_FALSE = {"false", "no", "0", "off"}


@dataclass(frozen=True)
class Settings:
    """Everything the action reads from its environment."""

    api_key: str
    base_url: str
    artifact: str
    payload: str
    path: str
    event_types: tuple[str, ...]
    aliases: tuple[str, ...]
    verify: bool
    skip_references: bool
    concurrency: int
    progress_interval: float
    event_path: str
    event_name: str
    output_file: str
    summary_file: str
    workspace: Path


def split_list(value: str) -> tuple[str, ...]:
    """A comma (or newline) separated input as a tuple of non-empty, stripped items."""
    items = (part.strip() for part in value.replace("\n", ",").split(","))
    return tuple(item for item in items if item)


def read_settings(environ: Mapping[str, str]) -> Settings:
    """Read and check the inputs; raise one InputError listing every problem."""
    problems: list[str] = []

    def get(name: str) -> str:
        return environ.get(PREFIX + name, "").strip()

    def flag(name: str, input_name: str, default: bool) -> bool:
        raw = get(name).lower()
        if not raw:
            return default
        if raw in _TRUE:
            return True
        if raw in _FALSE:
            return False
        problems.append(f"input '{input_name}' must be true or false, not {raw!r}")
        return default

    def number(
        name: str, input_name: str, default: float, low: float, high: float, whole: bool = False
    ) -> float:
        raw = get(name)
        if not raw:
            return default
        try:
            value = float(raw)
        except ValueError:
            value = low - 1
        if not low <= value <= high or (whole and not value.is_integer()):
            kind = "a whole number" if whole else "a number"
            problems.append(f"input '{input_name}' must be {kind} from {low:g} to {high:g}")
            return default
        return value

    base_url = (get("BASE_URL") or environ.get("WANDB_BASE_URL", "") or DEFAULT_BASE_URL).strip()
    base_url = base_url.rstrip("/")
    problems.extend(_base_url_problems(base_url))
    api_key = get("API_KEY") or environ.get("WANDB_API_KEY", "").strip()
    if api_key and not _KEY.fullmatch(api_key):
        problems.append(
            "the API key (input 'api-key' or WANDB_API_KEY) holds characters no W&B key has "
            "(white space, a line break, or a non-ASCII character): it was pasted wrongly"
        )
    for name, value in environ.items():
        if "\x00" in value and (name.startswith(PREFIX) or name.startswith("GITHUB_")):
            problems.append(f"{name} holds a NUL character")

    settings = Settings(
        api_key=api_key,
        base_url=base_url,
        artifact=get("ARTIFACT"),
        payload=get("PAYLOAD"),
        path=get("PATH"),
        event_types=split_list(get("EVENT_TYPES")),
        aliases=split_list(get("ALIASES")),
        verify=flag("VERIFY", "verify", True),
        skip_references=flag("SKIP_REFERENCES", "skip-references", False),
        concurrency=int(
            number(
                "CONCURRENCY", "concurrency", DEFAULT_CONCURRENCY, 1, MAX_CONCURRENCY, whole=True
            )
        ),
        progress_interval=number(
            "PROGRESS_INTERVAL", "progress-interval", DEFAULT_PROGRESS_INTERVAL, 0, 3600
        ),
        event_path=environ.get("GITHUB_EVENT_PATH", ""),
        event_name=environ.get("GITHUB_EVENT_NAME", ""),
        output_file=environ.get("GITHUB_OUTPUT", ""),
        summary_file=environ.get("GITHUB_STEP_SUMMARY", ""),
        workspace=Path(environ.get("GITHUB_WORKSPACE", "") or os.getcwd()),
    )
    if problems:
        raise InputError(
            "; ".join(problems) + ".", fix="Correct the inputs in the workflow's `with:` block."
        )
    return settings


def _base_url_problems(url: str) -> list[str]:
    """What makes ``url`` unusable as W&B's host, shown without any userinfo."""
    shown = redact_url(url)
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises ValueError when out of range
    except ValueError:
        return [f"input 'base-url' {shown!r} has an invalid host or port"]
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return [
            f"input 'base-url' must be an http(s) URL such as {DEFAULT_BASE_URL}, not {shown!r}"
        ]
    if "@" in parts.netloc:
        return [
            f"input 'base-url' {shown!r} must not hold a user name or password (the key goes "
            "in `api-key`)"
        ]
    if parts.query or parts.fragment or not _KEY.fullmatch(url):
        return [f"input 'base-url' {shown!r} may hold no query, white space or control character"]
    return []
