"""Workflows and their runs in the fake GitHub: definitions, the workflow-dispatch body
checks, ``run-name`` rendering, the run's life by the clock, and the run-list filters.

No lock and no clock read here: ``FakeGitHub`` holds the state under its lock and passes
"now" in. Messages are GitHub's where known; the rest say plainly what the fake expected.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from werkzeug.datastructures import MultiDict

from tests.fakes._github_rules import (
    RUNS_DOCS,
    WORKFLOW_DISPATCH_DOCS,
    Reject,
    invalid,
    short,
)

TRIGGERS = ("repository_dispatch", "workflow_dispatch")
STATUSES = ("requested", "queued", "pending", "waiting", "in_progress", "completed")
CONCLUSIONS = (
    "success",
    "failure",
    "cancelled",
    "skipped",
    "timed_out",
    "action_required",
    "neutral",
    "stale",
)
INPUT_TYPES = ("string", "boolean", "number", "choice", "environment")
MAX_INPUTS = 25
MAX_INPUTS_CHARS = 65_535
DEFAULT_PER_PAGE = 30
MAX_PER_PAGE = 100
DEFAULT_BRANCH = "main"
DISPATCH_ACTOR = "wandb-bridge-bot"  # who the fake says triggered a dispatch's run
ISO_UTC = "%Y-%m-%dT%H:%M:%SZ"
_EXPRESSION = re.compile(r"\$\{\{(.*?)\}\}", re.DOTALL)


def iso(t: float) -> str:
    """GitHub's timestamp form: ISO 8601, UTC, whole seconds, ``Z``."""
    return datetime.fromtimestamp(t, UTC).strftime(ISO_UTC)


@dataclass(frozen=True)
class Timing:
    """One run's life: ``queued_for`` seconds queued, ``runs_for`` seconds in progress, then
    completed with ``conclusion``. None stays in that state until ``FakeGitHub.finish_run``."""

    queued_for: float | None
    runs_for: float | None
    conclusion: str

    def __post_init__(self) -> None:
        for name in ("queued_for", "runs_for"):
            seconds = getattr(self, name)
            if seconds is not None and not (seconds >= 0 and math.isfinite(seconds)):
                raise ValueError(f"{name} must be None or seconds >= 0, got {seconds!r}")
        if self.conclusion not in CONCLUSIONS:
            raise ValueError(f"conclusion must be one of {CONCLUSIONS}, got {self.conclusion!r}")


@dataclass(frozen=True, eq=False)
class Workflow:
    """A workflow file on the repository's default branch (``FakeGitHub.add_workflow``)."""

    id: int
    repo: str  # "owner/repo" as given
    path: str  # ".github/workflows/deploy.yml"
    name: str
    on: tuple[str, ...]
    types: tuple[str, ...] | None  # repository_dispatch types; None: every event type
    inputs: Mapping[str, Mapping[str, Any]]  # workflow_dispatch inputs, as in the YAML
    run_name: str | None
    refs: tuple[str, ...]  # branches and tags a workflow dispatch may name
    steps: tuple[Timing, ...]  # one per run in order; the last repeats

    @property
    def file_name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    def listens_to(self, event_type: str) -> bool:
        """Whether a repository dispatch of ``event_type`` starts this workflow."""
        return "repository_dispatch" in self.on and (self.types is None or event_type in self.types)

    def timing(self, run_number: int) -> Timing:
        return self.steps[min(run_number, len(self.steps)) - 1]


def new_workflow(
    workflow_id: int,
    repo: str,
    path: str,
    *,
    name: str,
    on: str | Iterable[str],
    types: Iterable[str] | None,
    inputs: Mapping[str, Mapping[str, Any]] | None,
    run_name: str | None,
    refs: Iterable[str],
    steps: Sequence[tuple[float | None, float | None, str]] | None,
    queued_for: float | None,
    runs_for: float | None,
    conclusion: str,
) -> Workflow:
    """A ``Workflow``; ValueError for a definition GitHub would not run as asked."""
    triggers = (on,) if isinstance(on, str) else tuple(on)
    unknown = [t for t in triggers if t not in TRIGGERS]
    if not triggers or unknown:
        raise ValueError(f"on: give some of {TRIGGERS}, got {triggers!r}")
    if types is not None and "repository_dispatch" not in triggers:
        raise ValueError("types: only for a workflow on repository_dispatch")
    if inputs and "workflow_dispatch" not in triggers:
        raise ValueError("inputs: only for a workflow on workflow_dispatch")
    declared = {str(k): dict(v) for k, v in (inputs or {}).items()}
    for key, spec in declared.items():
        kind = spec.get("type", "string")
        if kind not in INPUT_TYPES:
            raise ValueError(f"input {key!r}: type must be one of {INPUT_TYPES}, got {kind!r}")
        if kind == "choice" and not spec.get("options"):
            raise ValueError(f"input {key!r}: a choice needs options")
    if len(declared) > MAX_INPUTS:
        raise ValueError(f"at most {MAX_INPUTS} inputs, got {len(declared)}")
    branches = tuple(refs)
    if not branches:
        raise ValueError("refs: give at least one branch or tag")
    if steps is not None and not steps:
        raise ValueError("steps: give at least one (seconds_queued, seconds_running, conclusion)")
    timings = tuple(Timing(*step) for step in steps or [(queued_for, runs_for, conclusion)])
    if not path.startswith(".github/workflows/") or not path.endswith((".yml", ".yaml")):
        raise ValueError(f"path must be .github/workflows/NAME.yml, got {path!r}")
    return Workflow(
        id=workflow_id,
        repo=repo,
        path=path,
        name=name,
        on=triggers,
        types=None if types is None else tuple(types),
        inputs=declared,
        run_name=run_name,
        refs=branches,
        steps=timings,
    )


# -- workflow dispatch -----------------------------------------------------------------------


@dataclass(frozen=True)
class WorkflowDispatchBody:
    ref: str  # as sent
    branch: str  # the ref's short name: the run's head_branch
    inputs: dict[str, Any]  # as sent
    return_run_details: bool


def check_workflow_dispatch_body(
    raw: bytes, workflow: Workflow, *, run_details: bool
) -> WorkflowDispatchBody:
    """Validate a workflow-dispatch body against ``workflow`` (400, 422)."""
    docs = WORKFLOW_DISPATCH_DOCS
    try:
        body = json.loads(raw)
    except ValueError:
        raise Reject(400, "Problems parsing JSON", docs) from None
    if not isinstance(body, dict):
        invalid(f"{short(body)} is not an object.", docs)
    permitted = ("ref", "inputs", "return_run_details") if run_details else ("ref", "inputs")
    for key in body:
        if key not in permitted:
            invalid(f"{json.dumps(key)} is not a permitted key.", docs)
    if "ref" not in body:
        invalid('"ref" wasn\'t supplied.', docs)
    ref = body["ref"]
    if not isinstance(ref, str):
        invalid(f"For 'properties/ref', {short(ref)} is not a string.", docs)
    inputs = body.get("inputs", {})
    if not isinstance(inputs, dict):
        invalid(f"For 'properties/inputs', {short(inputs)} is not an object.", docs)
    details = body.get("return_run_details", False)
    if not isinstance(details, bool):
        invalid(f"For 'properties/return_run_details', {short(details)} is not a boolean.", docs)
    if "workflow_dispatch" not in workflow.on:
        raise Reject(422, "Workflow does not have 'workflow_dispatch' trigger", docs)
    branch = _short_ref(ref)
    if branch not in workflow.refs:
        raise Reject(422, f"No ref found for: {ref}", docs)
    _check_inputs(inputs, workflow.inputs)
    return WorkflowDispatchBody(ref, branch, inputs, details)


def _short_ref(ref: str) -> str:
    for prefix in ("refs/heads/", "refs/tags/"):
        if ref.startswith(prefix):
            return ref[len(prefix) :]
    return ref


def _check_inputs(inputs: dict[str, Any], declared: Mapping[str, Mapping[str, Any]]) -> None:
    docs = WORKFLOW_DISPATCH_DOCS
    if len(inputs) > MAX_INPUTS:
        message = f"No more than {MAX_INPUTS} properties are allowed; {len(inputs)} were supplied."
        raise Reject(422, message, docs)
    if len(json.dumps(inputs, ensure_ascii=False)) > MAX_INPUTS_CHARS:
        raise Reject(422, "inputs are too large.", docs)  # message unconfirmed
    for key, value in inputs.items():
        if value is None or not isinstance(value, str | int | float | bool):
            detail = (
                f"For 'properties/inputs/{key}', {short(value)} is not a string, number or boolean."
            )
            invalid(detail, docs)
    unexpected = [key for key in inputs if key not in declared]
    if unexpected:
        raise Reject(422, f"Unexpected inputs provided: {json.dumps(unexpected)}", docs)
    for key, spec in declared.items():
        if spec.get("required") and key not in inputs:
            raise Reject(422, f"Required input '{key}' not provided", docs)
    for key, value in inputs.items():
        spec = declared[key]
        kind = spec.get("type", "string")
        text = as_text(value)
        if kind == "choice" and text not in [as_text(o) for o in spec["options"]]:
            message = f"Provided value '{text}' for input '{key}' not in the list of allowed values"
            raise Reject(422, message, docs)
        if kind == "boolean" and text not in ("true", "false"):
            raise Reject(422, f"Provided value '{text}' for input '{key}' is not a boolean", docs)
        if kind == "number" and not _is_numeric(text):
            raise Reject(422, f"Provided value '{text}' for input '{key}' is not a number", docs)


def _is_numeric(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def dispatched_inputs(
    inputs: Mapping[str, Any], declared: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any]:
    """The run's ``inputs`` context: what was sent, then the declared defaults."""
    merged = dict(inputs)
    for key, spec in declared.items():
        if key not in merged and "default" in spec:
            merged[key] = spec["default"]
    return merged


# -- run-name --------------------------------------------------------------------------------


def as_text(value: Any) -> str:
    """A context value as an expression renders it into a string."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, str | int | float):
        return str(value)
    return json.dumps(value)


def render(template: str, context: Mapping[str, Any]) -> str:
    """``template`` with each ``${{ a.b.c }}`` replaced by that path of ``context`` (a missing
    path, or anything but a dotted path, renders as "")."""

    def lookup(match: re.Match[str]) -> str:
        value: Any = context
        for part in match.group(1).strip().split("."):
            if not isinstance(value, Mapping) or part not in value:
                return ""
            value = value[part]
        return as_text(value)

    return _EXPRESSION.sub(lookup, template)


def repository_dispatch_context(
    repo: str, event_type: str, client_payload: Mapping[str, Any]
) -> dict[str, Any]:
    event = {"action": event_type, "branch": DEFAULT_BRANCH, "client_payload": client_payload}
    return {"github": _github_context(repo, "repository_dispatch", DEFAULT_BRANCH, event)}


def workflow_dispatch_context(repo: str, branch: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
    event = {"ref": f"refs/heads/{branch}", "inputs": {k: as_text(v) for k, v in inputs.items()}}
    return {
        "github": _github_context(repo, "workflow_dispatch", branch, event),
        "inputs": dict(inputs),
    }


def _github_context(repo: str, event_name: str, branch: str, event: Any) -> dict[str, Any]:
    return {
        "event_name": event_name,
        "event": event,
        "ref": f"refs/heads/{branch}",
        "ref_name": branch,
        "repository": repo,
        "repository_owner": repo.partition("/")[0],
    }


# -- runs ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """A workflow run as it stood when read (``FakeGitHub.runs``)."""

    id: int
    repo: str
    workflow_id: int
    path: str
    name: str
    display_title: str
    event: str  # "repository_dispatch" | "workflow_dispatch"
    head_branch: str
    status: str
    conclusion: str | None
    run_number: int
    created_at: float  # clock()
    updated_at: float  # the last transition (clock time)
    html_url: str
    url: str  # the API's
    client_payload: dict[str, Any] | None  # a repository dispatch's
    inputs: dict[str, Any] | None  # a workflow dispatch's, with the defaults
    actor: str = DISPATCH_ACTOR  # who triggered it (``actor`` and ``triggering_actor``)


@dataclass
class RunState:
    """A run's fixed facts and its timing; its status is a function of the clock."""

    id: int
    workflow: Workflow
    repo: str
    run_number: int
    event: str
    head_branch: str
    display_title: str
    created_at: float
    timing: Timing
    api_url: str
    html_url: str
    client_payload: dict[str, Any] | None = None
    inputs: dict[str, Any] | None = None
    finished: tuple[float, str] | None = field(default=None)  # finish_run: (when, conclusion)
    actor: str = DISPATCH_ACTOR

    def phase(self, now: float) -> tuple[str, str | None, float]:
        """(status, conclusion, updated_at) at ``now``."""
        started = _after(self.created_at, self.timing.queued_for)
        done = _after(started, self.timing.runs_for)
        if self.finished is not None and self.finished[0] < done:
            when, conclusion = self.finished
            if now >= when:
                return "completed", conclusion, when
            done = math.inf
        if now >= done:
            return "completed", self.timing.conclusion, done
        if now >= started:
            return "in_progress", None, started
        return "queued", None, self.created_at

    def snapshot(self, now: float) -> Run:
        status, conclusion, updated = self.phase(now)
        return Run(
            id=self.id,
            repo=self.repo,
            workflow_id=self.workflow.id,
            path=self.workflow.path,
            name=self.workflow.name,
            display_title=self.display_title,
            event=self.event,
            head_branch=self.head_branch,
            status=status,
            conclusion=conclusion,
            run_number=self.run_number,
            created_at=self.created_at,
            updated_at=updated,
            html_url=self.html_url,
            url=self.api_url,
            client_payload=self.client_payload,
            inputs=self.inputs,
            actor=self.actor,
        )


def _after(start: float, seconds: float | None) -> float:
    return math.inf if seconds is None else start + seconds


def run_json(run: Run) -> dict[str, Any]:
    """A run as GitHub's API shows it (the fields the bridge may read, and a few more)."""
    owner, _, name = run.repo.partition("/")
    return {
        "id": run.id,
        "name": run.name,
        "node_id": f"WFR_fake{run.id}",
        "head_branch": run.head_branch,
        "head_sha": hashlib.sha256(f"{run.repo}@{run.head_branch}".encode()).hexdigest()[:40],
        "path": run.path,
        "display_title": run.display_title,
        "run_number": run.run_number,
        "event": run.event,
        "status": run.status,
        "conclusion": run.conclusion,
        "workflow_id": run.workflow_id,
        "url": run.url,
        "html_url": run.html_url,
        "created_at": iso(run.created_at),
        "updated_at": iso(run.updated_at),
        "run_attempt": 1,
        "run_started_at": iso(run.created_at),
        "repository": {"full_name": run.repo, "name": name, "owner": {"login": owner}},
        "actor": {"login": run.actor, "type": _account_type(run.actor)},
        "triggering_actor": {"login": run.actor, "type": _account_type(run.actor)},
    }


def _account_type(login: str) -> str:
    return "Bot" if login.endswith("[bot]") else "User"


# -- listing ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    runs: list[Run]
    total_count: int
    page: int
    per_page: int

    @property
    def last_page(self) -> int:
        return max(1, math.ceil(self.total_count / self.per_page))


def select_runs(runs: Iterable[Run], query: MultiDict[str, str]) -> Page:
    """Filter by ``event``, ``status``, ``branch``, ``created``; newest first; paginate
    (``per_page`` default 30, at most 100; ``page`` from 1). 422 for a filter it cannot read."""
    keep: list[Callable[[Run], bool]] = []
    if event := query.get("event"):
        keep.append(lambda r: r.event == event)
    if branch := query.get("branch"):
        keep.append(lambda r: r.head_branch == branch)
    if status := query.get("status"):
        if status in CONCLUSIONS:
            keep.append(lambda r: r.conclusion == status)
        elif status in STATUSES:
            keep.append(lambda r: r.status == status)
        else:
            raise Reject(
                422,
                f"status must be one of {', '.join(STATUSES + CONCLUSIONS)} (got {status!r})",
                RUNS_DOCS,
            )
    if created := query.get("created"):
        low, high = created_range(created)
        keep.append(lambda r: low <= math.floor(r.created_at) < high)
    per_page = min(_positive(query, "per_page", DEFAULT_PER_PAGE), MAX_PER_PAGE)
    page = _positive(query, "page", 1)
    chosen = [r for r in runs if all(k(r) for k in keep)]
    chosen.sort(key=lambda r: (r.created_at, r.id), reverse=True)
    start = (page - 1) * per_page
    return Page(chosen[start : start + per_page], len(chosen), page, per_page)


def _positive(query: MultiDict[str, str], name: str, default: int) -> int:
    text = query.get(name)
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise Reject(422, f"{name} must be an integer (got {text!r})", RUNS_DOCS) from None
    return value if value >= 1 else default


def created_range(text: str) -> tuple[float, float]:
    """GitHub's search date syntax as [low, high) epoch seconds: ``>=D``, ``>D``, ``<=D``,
    ``<D``, ``D..D`` (``*`` open), ``D``; D a date or an ISO 8601 date-time."""
    text = text.strip().replace(" ", "+")  # a "+HH:MM" offset sent unescaped
    try:
        if ".." in text:
            first, _, last = text.partition("..")
            low = -math.inf if first == "*" else _point(first)[0]
            high = math.inf if last == "*" else _point(last)[1]
            return low, high
        for operator in (">=", "<=", ">", "<"):
            if text.startswith(operator):
                start, end = _point(text[len(operator) :])
                return {
                    ">=": (start, math.inf),
                    ">": (end, math.inf),
                    "<=": (-math.inf, end),
                    "<": (-math.inf, start),
                }[operator]
        return _point(text)
    except ValueError:
        message = (
            f"created: cannot read {text!r}; the fake understands >=, >, <=, <, A..B and a date"
            " or an ISO 8601 date-time"
        )
        raise Reject(422, message, RUNS_DOCS) from None


def _point(text: str) -> tuple[float, float]:
    """The seconds a date (a whole day) or a date-time (one second) covers."""
    if "T" not in text:
        day = date.fromisoformat(text)
        start = datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()
        return start, start + 86_400
    moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    start = math.floor(moment.timestamp())
    return start, start + 1
