"""Artifact references as W&B writes them into payloads and users into inputs.

- ``entity/project/collection:alias`` (``:vN`` or an alias; ``latest`` when omitted),
  optionally prefixed ``wandb-artifact://``;
- ``wandb-artifact://_id/<id>``: the part after ``_id/`` is the GraphQL node id as is;
  an id with white space or a control character in it is refused, never sent to W&B.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from action.errors import InputError

ID_PREFIX = "wandb-artifact://_id/"
SCHEME = "wandb-artifact://"
REGISTRY_PREFIX = "wandb-registry-"
_PART = re.compile(r"^[^/:\s]+$")
_ID = re.compile(r"[^/\s\x00-\x1f\x7f-\x9f]+")


@dataclass(frozen=True)
class NameRef:
    entity: str
    project: str
    collection: str
    alias: str

    @property
    def is_registry(self) -> bool:
        return self.project.startswith(REGISTRY_PREFIX)

    def __str__(self) -> str:
        return f"{self.entity}/{self.project}/{self.collection}:{self.alias}"


@dataclass(frozen=True)
class IdRef:
    id: str

    def __str__(self) -> str:
        return ID_PREFIX + self.id


def parse_ref(text: str) -> NameRef | IdRef:
    """Parse a reference; raise InputError saying what shape was expected."""
    text = text.strip()
    if text.startswith(ID_PREFIX):
        node_id = text[len(ID_PREFIX) :].strip("/")
        if not node_id or "/" in node_id:
            raise _bad(text)
        if not _ID.fullmatch(node_id):
            raise InputError(
                f"artifact reference {text!r}: the id holds a line break, white space or "
                "another control character, which no W&B id does; nothing was sent to W&B.",
                fix="Use the id as W&B gives it (wandb-artifact://_id/<id>), or "
                "entity/project/collection:alias.",
            )
        return IdRef(node_id)
    if text.startswith(SCHEME):
        text = text[len(SCHEME) :]
    path, _, alias = text.partition(":")
    parts = path.split("/")
    if len(parts) != 3 or not all(_PART.match(p) for p in parts):
        raise _bad(text)
    if alias and not _PART.match(alias):
        raise _bad(text)
    return NameRef(parts[0], parts[1], parts[2], alias or "latest")


def _bad(text: str) -> InputError:
    return InputError(
        f"artifact reference {text!r} is neither entity/project/collection:alias "
        "nor wandb-artifact://_id/<id>.",
        fix="Set the `artifact` input, or have the W&B payload template send "
        '"artifact_version_string": "${artifact_version_string}".',
    )
