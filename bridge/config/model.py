"""The configuration's typed, frozen objects (loading and validation: :mod:`.load`).

Each section's dataclass is the one list of its YAML keys and their defaults: the loader
(:mod:`.sections`) reads a field from the key of the same name, as its type says (an
``int`` is a whole number >= 1, a ``float`` a duration), and gives it its default when
the key is absent. A field's ``metadata`` says what differs (see :mod:`.keys`): ``key``,
the YAML key that sets it (dotted for one mapping down, ``None`` when the loader derives
the field rather than reads it); ``required``, what to say when a required key is
missing; ``choices``, the values a string may take.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bridge.config.secrets import Secret

DEFAULT_PATH = "wandb-bridge.yaml"
DEFAULT_STORE = "sqlite:///wandb-bridge.db"
DEFAULT_API_URL = "https://api.github.com"
# \Z, not $: $ also matches before a final newline
REPO_RE = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+\Z")
SOURCE_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}\Z")
_DURATION_RE = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}
MAX_DURATION = 100 * 365 * 86400.0  # a century (and no infinity, no NaN)


@dataclass(frozen=True)
class Source:
    name: str = field(metadata={"key": None})  # the key it is under in ``sources``
    secrets: tuple[Secret, ...] = ()
    tokens: tuple[Secret, ...] = ()
    allow_unauthenticated: bool = False


@dataclass(frozen=True)
class GitHubApp:
    app_id: int = field(metadata={"key": "id", "required": "the App's numeric id"})
    private_key: Secret = field(metadata={"required": "{file: PATH} to a .pem"})
    installation_id: int | None = None


@dataclass(frozen=True)
class GitHubConfig:
    api_url: str = DEFAULT_API_URL
    token: Secret | None = None
    app: GitHubApp | None = None
    repositories: tuple[str, ...] = ()
    dry_run: bool = False


@dataclass(frozen=True)
class Dispatch:
    repository: str
    event_type: str = "${event_type}"
    client_payload: Any = None  # None: the default payload built from W&B's fields


@dataclass(frozen=True)
class Workflow:
    """A ``workflow_dispatch`` target: a workflow file (or id) run on ``ref``."""

    repository: str
    file: str  # the workflow's file name, or its numeric id
    ref: str  # template
    inputs: Mapping[str, Any] | None = None  # templates


@dataclass(frozen=True)
class WriteBack:
    """What to add to the event's W&B artifact version when its run ends one way."""

    aliases: tuple[str, ...] = ()  # templates
    tags: tuple[str, ...] = ()  # templates


WRITE_BACK_OUTCOMES = ("run_succeeded", "run_failed")


@dataclass(frozen=True)
class Route:
    name: str
    dispatch: Dispatch | None = None  # exactly one of dispatch and workflow
    sources: tuple[str, ...] | None = None  # None: every source
    when: tuple[tuple[str, tuple[str, ...]], ...] = ()
    workflow: Workflow | None = None
    # outcome (run_succeeded, run_failed) -> what to write back to W&B
    write_back: tuple[tuple[str, WriteBack], ...] = ()

    @property
    def repository(self) -> str:
        target = self.dispatch or self.workflow
        assert target is not None
        return target.repository


OUTCOMES = ("delivery_dead", "run_failed", "run_succeeded", "no_run_started", "delivered")
# each kind of notifier and the key of its block that holds the URL
NOTIFIER_URL_KEYS = {"slack": "webhook_url", "teams": "webhook_url", "webhook": "url"}


@dataclass(frozen=True)
class Notifier:
    """Where ``notify:`` announces the outcomes it names."""

    name: str
    outcomes: tuple[str, ...]
    # set by the one block the notifier has, named for its kind: slack, teams or webhook
    kind: str = field(metadata={"key": None})
    url: Secret = field(metadata={"key": None})
    secret: Secret | None = field(default=None, metadata={"key": None})  # webhook only


@dataclass(frozen=True)
class RunsConfig:
    follow: bool = True
    no_run_after: float = 300.0
    give_up_after: float = 6 * 3600.0
    max_requests_per_hour: int = 1000  # GitHub requests spent following runs, all workers
    min_interval: float = 10.0  # the shortest time between two looks at a young run


@dataclass(frozen=True)
class DeliveryConfig:
    max_attempts: int = 20
    max_age: float = 24 * 3600.0
    initial_backoff: float = 5.0
    max_backoff: float = 3600.0
    lease: float = 60.0
    timeout: float = 10.0
    concurrency: int = 4


@dataclass(frozen=True)
class LoggingConfig:
    format: str = field(default="text", metadata={"choices": ("text", "json")})
    level: str = field(default="INFO", metadata={"choices": ("DEBUG", "INFO", "WARNING", "ERROR")})


DEFAULT_WANDB_URL = "https://api.wandb.ai"


@dataclass(frozen=True)
class CatchUp:
    """``wandb.catch_up``: read the registry every ``every`` seconds for changes whose
    webhook never came, spending at most ``max_requests_per_hour`` W&B requests."""

    every: float = 300.0
    max_requests_per_hour: int = 2000


@dataclass(frozen=True)
class WandbConfig:
    """The ``wandb:`` block: how the bridge reaches W&B and what it sets up there.

    ``api_key`` says where the key is, as ``("env", NAME)``, ``("file", PATH)`` or
    ``("inline", KEY)``. The ``wandb`` commands read it when they run. ``key`` is the key
    itself, read at load only when the running bridge talks to W&B (``catch_up``, or a
    route's ``write_back``): otherwise the bridge must not need it to start.
    """

    entity: str = field(metadata={"required": "the W&B team that owns the automations"})
    bridge_url: str
    source: str  # absent: the source named wandb, or the only one
    api_key: tuple[str, str] = field(default=("env", "WANDB_API_KEY"), repr=False)
    base_url: str = DEFAULT_WANDB_URL
    integration: str = "wandb-github-bridge"
    secret_name: str | None = None
    access_token_name: str | None = None
    catch_up: CatchUp | None = None
    key: Secret | None = field(default=None, repr=False, metadata={"key": None})


@dataclass(frozen=True, kw_only=True)
class Config:
    store: Secret = field(default_factory=lambda: Secret(DEFAULT_STORE, "default"))
    sources: Mapping[str, Source]
    github: GitHubConfig
    routes: tuple[Route, ...] = ()
    max_body_bytes: int = 1024 * 1024
    dedupe_window: float = 600.0
    delivery: DeliveryConfig = field(default_factory=DeliveryConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    admin_tokens: tuple[Secret, ...] = field(default=(), metadata={"key": "admin.tokens"})
    warnings: tuple[str, ...] = field(default=(), metadata={"key": None})  # found loading
    wandb: WandbConfig | None = None  # None: no ``wandb:`` block
    runs: RunsConfig = field(default_factory=RunsConfig)
    notify: tuple[Notifier, ...] = ()
    # finished events older than this are pruned
    retention: float = field(default=30 * 86400.0, metadata={"key": "retention.events"})

    def secrets(self) -> list[Secret]:
        """Every secret value this config holds, for redaction."""
        found = [self.store, *self.admin_tokens]
        for source in self.sources.values():
            found += [*source.secrets, *source.tokens]
        if self.github.token is not None:
            found.append(self.github.token)
        if self.github.app is not None:
            found.append(self.github.app.private_key)
        for n in self.notify:
            found += [n.url, *([n.secret] if n.secret else [])]
        if self.wandb is not None and self.wandb.key is not None:
            found.append(self.wandb.key)
        return found


def parse_duration(value: Any) -> float | None:
    """``10m`` → 600.0; a bare number is seconds; ``None`` when it is not a duration
    (negative, or longer than ``MAX_DURATION``)."""
    if isinstance(value, str) and (m := _DURATION_RE.match(value.strip())):
        value = float(m.group(1)) * _UNITS[m.group(2)]
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    # a longer wait is no duration: a lock or a socket given one raises OverflowError
    return float(value) if 0 <= value <= MAX_DURATION else None
