"""Fill a W&B payload template as W&B does, and judge the body as the bridge would.

W&B fills a template as text: each ``${name}`` is replaced by the variable's value (an
unknown or blank one by nothing), then the result is sent as the body. Values are
escaped for a JSON string here (W&B does not document it; a value with a quote would
otherwise break the body). The body then goes through the bridge's own intake checks
and routing, unchanged: what ``render`` shows is what ``serve`` would do.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from bridge.config.model import Config, Route
from bridge.errors import RequestRefused
from bridge.intake.checks import check_size, parse_object
from bridge.routing.limits import ROUTE_KEY, PlannedDispatch
from bridge.routing.routes import (
    METADATA_PREFIX,
    WANDB_FIELDS,
    plan_dispatches,
    route_matches,
    value_matches,
    webhook_fields,
)
from bridge.routing.templates import as_text

EVENT_ID = "<event id>"  # the bridge's id for the event, made up when it arrives
SAMPLE_PROJECT = "wandb-registry-model"
SAMPLE_COLLECTION = "churn"
_VARIABLE = re.compile(r"\$\{([^}]*)\}")


def sample_values(event: str, entity: str) -> dict[str, Any]:
    """W&B's variables for a made-up version ``churn:v3`` of the model registry."""
    alias = "production" if event == "ADD_ARTIFACT_ALIAS" else ""
    return {
        "event_type": event,
        "event_author": "alice",
        "entity_name": entity,
        "project_name": SAMPLE_PROJECT,
        "artifact_collection_name": SAMPLE_COLLECTION,
        "artifact_version": "wandb-artifact://_id/QXJ0aWZhY3Q6MTIzNDU2",
        "artifact_version_string": f"{entity}/{SAMPLE_PROJECT}/{SAMPLE_COLLECTION}:"
        + (alias or "v3"),
        "alias": alias,
        "tag": "",
        "artifact_metadata": {},
    }


def version_values(event: str, artifact: str, found: Mapping[str, Any]) -> dict[str, Any]:
    """W&B's variables for the real version ``artifact`` (ENTITY/PROJECT/NAME:ALIAS),
    from what the API said of it (``id``, ``versionIndex``, ``metadata``)."""
    path, _, alias = artifact.rpartition(":")
    entity, project, collection = path.split("/")
    added = alias if event == "ADD_ARTIFACT_ALIAS" else ""
    metadata = found.get("metadata")
    if isinstance(metadata, str):
        try:
            metadata = json.loads(metadata)
        except ValueError:
            metadata = {}
    return {
        **sample_values(event, entity),
        "project_name": project,
        "artifact_collection_name": collection,
        "artifact_version": f"wandb-artifact://_id/{found.get('id', '')}",
        "artifact_version_string": f"{path}:{added or 'v' + str(found.get('versionIndex', ''))}",
        "alias": added,
        "artifact_metadata": metadata if isinstance(metadata, dict) else {},
    }


def fill(template: str, values: Mapping[str, Any]) -> tuple[str, list[str]]:
    """The body W&B sends for ``template``, and the variables it knows nothing of."""
    unknown: list[str] = []

    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name.startswith(METADATA_PREFIX):
            value = (values.get("artifact_metadata") or {}).get(name[len(METADATA_PREFIX) :])
        elif name in WANDB_FIELDS:
            value = values.get(name)
        else:
            unknown.append(name)
            value = None
        return json.dumps(as_text(value), ensure_ascii=False)[1:-1]

    return _VARIABLE.sub(one, template), unknown


@dataclass(frozen=True)
class Verdict:
    """What one route does with the body: a dispatch, a refusal, or why it does not match."""

    route: str
    dispatch: PlannedDispatch | None = None
    refused: str | None = None
    why_not: str | None = None


def judge(config: Config, source: str, body: bytes) -> list[Verdict]:
    """Each route's verdict on ``body`` arriving at ``/webhooks/<source>``. Raises
    RequestRefused when the bridge would refuse the body itself."""
    check_size(len(body), config.max_body_bytes)
    fields = webhook_fields(parse_object(body), EVENT_ID)
    verdicts = []
    for route in config.routes:
        if not route_matches(route, source, fields):
            verdicts.append(Verdict(route.name, why_not=_why_not(route, source, fields)))
            continue
        try:
            (planned,) = plan_dispatches([route], source, fields)
        except RequestRefused as exc:
            verdicts.append(Verdict(route.name, refused=f"{exc.status} {exc.code}: {exc.message}"))
            continue
        verdicts.append(Verdict(route.name, dispatch=planned))
    return verdicts


def _why_not(route: Route, source: str, fields: Mapping[str, Any]) -> str:
    sources, when = route.sources, route.when
    if ROUTE_KEY in fields and fields[ROUTE_KEY] != route.name:
        return f"the webhook is for route {as_text(fields[ROUTE_KEY])!r} ({ROUTE_KEY})"
    if sources is not None and not any(fnmatchcase(source, s) for s in sources):
        return f"it listens to sources {', '.join(sources)}, not {source}"
    for key, globs in when:
        if not value_matches(key, fields.get(key), globs):
            return f"{key} is {as_text(fields.get(key))!r}, not {' or '.join(globs)}"
    return "no condition failed"
