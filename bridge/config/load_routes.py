"""The ``routes:`` list: each route's conditions, its one target and its write-back.

What the field types cannot say is checked here: repositories and workflow files, the
templates' placeholders (each must name a W&B payload variable), GitHub's limits on a
payload, and the names W&B takes as aliases and tags.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from functools import partial
from typing import Any

from bridge.config.model import REPO_RE, WRITE_BACK_OUTCOMES, Dispatch, Route, Workflow, WriteBack
from bridge.config.sections import ReadField, SectionReader, join
from bridge.routing.limits import MAX_PAYLOAD_KEYS, workflow_inputs_problem
from bridge.routing.routes import WANDB_FIELDS, is_known_field
from bridge.routing.templates import template_problems, variables

MAX_WANDB_NAME = 128  # W&B's limit on an alias or a tag
TAG_RE = re.compile(r"^[-\w]+([ ]+[-\w]+)*\Z")
WORKFLOW_FILE_RE = re.compile(r"^(?:[0-9]+|[A-Za-z0-9_.-]+\.ya?ml)\Z")


def read_routes(
    r: SectionReader, raw: Any, path: str, sources: Collection[str]
) -> tuple[Route, ...]:
    """The routes at ``path``; ``sources`` are the names a route may restrict itself to.
    Each has a name of its own: catch-up and the W&B automations know a route by it."""
    if not isinstance(raw, list):
        r.problems.append(f"{path}: must be a list")
        return ()
    out: dict[str, Route] = {}
    for i, item in enumerate(raw):
        route = _route(r, item, f"{path}[{i}]", sources)
        if route is not None and route.name in out:
            r.problems.append(
                f"{path}[{i}].name: {route.name!r} names an earlier route too; give each "
                "route its own name"
            )
        elif route is not None:
            out[route.name] = route
    return tuple(out.values())


def _route(r: SectionReader, raw: Any, path: str, sources: Collection[str]) -> Route | None:
    spec = r.mapping(raw, path)
    values = r.fields_of(
        Route,
        spec,
        path,
        readers={
            "name": lambda v, p: path if v is None else str(v),
            "sources": partial(_route_sources, r, sources),
            "when": partial(_when, r),
            "dispatch": partial(_dispatch, r),
            "workflow": partial(_workflow, r),
            "write_back": partial(_write_back, r),
        },
    )
    if (spec.get("dispatch") is None) == (spec.get("workflow") is None):
        r.problems.append(
            f"{path}: give exactly one target: dispatch (a repository_dispatch) or "
            "workflow (a workflow_dispatch)"
        )
        return None
    if values["dispatch"] is None and values["workflow"] is None:
        return None  # its problems are recorded
    return Route(**values)


def _route_sources(
    r: SectionReader, sources: Collection[str], raw: Any, path: str
) -> tuple[str, ...]:
    names = r.globs(raw, path)
    for name in names:
        if name not in sources:
            r.problems.append(f"{path}: no source named {name!r} under sources")
    return names


def _when(r: SectionReader, raw: Any, path: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    when = r.mapping(raw, path)
    for key in when:
        if not is_known_field(str(key)):
            r.problems.append(
                f"{join(path, key)}: not a W&B payload variable (e.g. event_type, alias, "
                "artifact_collection_name, artifact_metadata.<KEY>); this route could "
                "never match"
            )
    return tuple((str(k), r.globs(v, join(path, k))) for k, v in when.items())


def _dispatch(r: SectionReader, raw: Any, path: str) -> Dispatch | None:
    readers: dict[str, ReadField] = {
        "repository": partial(_repository, r),
        "client_payload": partial(_payload, r),
    }
    values = r.fields_of(Dispatch, r.mapping(raw, path), path, readers)
    _templates(r, [values.get("event_type"), values["client_payload"]], path)
    return r.build(Dispatch, values)


def _repository(r: SectionReader, raw: Any, path: str) -> str | None:
    if not isinstance(raw, str) or not REPO_RE.match(raw):
        r.problems.append(f"{path}: must be owner/repo")
        return None
    return raw


def _payload(r: SectionReader, raw: Any, path: str) -> Mapping[str, Any] | None:
    if not isinstance(raw, Mapping):
        r.problems.append(f"{path}: must be a mapping")
        return None
    if len(raw) > MAX_PAYLOAD_KEYS:
        r.problems.append(
            f"{path}: has {len(raw)} keys; GitHub takes at most {MAX_PAYLOAD_KEYS} "
            "(nest the rest under one key)"
        )
    return raw


def _workflow(r: SectionReader, raw: Any, path: str) -> Workflow | None:
    readers: dict[str, ReadField] = {
        "repository": partial(_repository, r),
        "file": partial(_workflow_file, r),
        "ref": partial(_ref, r),
        "inputs": partial(_inputs, r),
    }
    values = r.fields_of(Workflow, r.mapping(raw, path), path, readers)
    _templates(r, [values.get("ref"), values["inputs"]], path)
    return r.build(Workflow, values)


def _workflow_file(r: SectionReader, raw: Any, path: str) -> str | None:
    if isinstance(raw, int) and not isinstance(raw, bool) and raw > 0:
        raw = str(raw)
    if not isinstance(raw, str) or not WORKFLOW_FILE_RE.match(raw):
        r.problems.append(f"{path}: must be the workflow's file name (e.g. deploy.yml) or its id")
        return None
    return raw


def _ref(r: SectionReader, raw: Any, path: str) -> str | None:
    if not isinstance(raw, str) or not raw.strip():
        r.problems.append(f"{path}: must be a branch or tag name (a template)")
        return None
    return raw


def _inputs(r: SectionReader, raw: Any, path: str) -> Mapping[str, Any] | None:
    if not isinstance(raw, Mapping):
        r.problems.append(f"{path}: must be a mapping of input names to templates")
        return None
    problem = workflow_inputs_problem(raw)
    if problem:
        r.problems.append(f"{path}: {problem}")
        return None
    return raw


def _write_back(r: SectionReader, raw: Any, path: str) -> tuple[tuple[str, WriteBack], ...]:
    """``write_back:``: per run outcome, the aliases and tags to add in W&B."""
    spec = r.mapping(raw, path)
    r.unknown(spec, WRITE_BACK_OUTCOMES, path)
    out = []
    for outcome in WRITE_BACK_OUTCOMES:
        if outcome not in spec:
            continue
        where = f"{path}.{outcome}"
        readers: dict[str, ReadField] = {
            kind: partial(_names, r, kind) for kind in ("aliases", "tags")
        }
        values = r.fields_of(WriteBack, r.mapping(spec[outcome], where), where, readers)
        if not any(values.values()):
            r.problems.append(f"{where}: give aliases, tags or both")
            continue
        out.append((outcome, WriteBack(**values)))
    return tuple(out)


def _names(r: SectionReader, kind: str, raw: Any, path: str) -> tuple[str, ...]:
    names = r.globs(raw, path, strings_only=True)
    _templates(r, list(names), path)
    for name in names:
        problem = write_back_name_problem(kind, name)
        if problem:
            r.problems.append(f"{path}: {name!r} {problem}")
    return names


def write_back_name_problem(kind: str, name: str) -> str | None:
    """Why W&B would refuse ``name`` as an alias or a tag (a template is checked once
    rendered, by W&B)."""
    if "${" in name:
        return None
    if len(name) > MAX_WANDB_NAME:
        return f"is longer than W&B's {MAX_WANDB_NAME} characters"
    if kind == "tags" and not TAG_RE.match(name):
        return "is not a W&B tag (letters, digits, _ and -, words apart by spaces)"
    if kind == "aliases" and (not name.strip() or any(c in name for c in "/:")):
        return "is not a W&B alias (no '/' or ':', not blank)"
    return None


def _templates(r: SectionReader, templates: list[Any], path: str) -> None:
    """Report malformed placeholders and names that are not W&B variables."""
    for template in templates:
        for problem in template_problems(template):
            r.problems.append(f"{path}: {problem}")
    for var in sorted(set().union(*(variables(t) for t in templates))):
        if not is_known_field(var):
            r.problems.append(
                f"{path}: ${{{var}}} is not a W&B payload variable; use one "
                "of " + ", ".join(f"${{{f}}}" for f in WANDB_FIELDS) + " or "
                "${artifact_metadata.<KEY>}"
            )
