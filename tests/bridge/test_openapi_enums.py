"""The OpenAPI document's enums are the words the bridge's states and kinds define.

The document is a file (package data) and the states are ``StrEnum``s in code; this
test is what keeps the two from drifting when a state or kind is added or renamed.
"""

from __future__ import annotations

from typing import Any

import pytest

from bridge.ops.documents import KINDS
from bridge.ops.openapi import document
from bridge.states import AttemptOutcome, DeliveryState, Origin, RunFilter, WatchState


def _schema(name: str) -> dict[str, Any]:
    schema: dict[str, Any] = document()["components"]["schemas"][name]
    return schema


def _query_enum(path: str, name: str) -> list[Any]:
    params = document()["paths"][path]["get"]["parameters"]
    (param,) = [p for p in params if p.get("name") == name]
    return list(param["schema"]["enum"])


@pytest.mark.parametrize(
    ("found", "words"),
    [
        pytest.param(
            lambda: _schema("Delivery")["properties"]["state"]["enum"], DeliveryState, id="state"
        ),
        pytest.param(lambda: _query_enum("/api/events", "state"), DeliveryState, id="state-filter"),
        pytest.param(lambda: _query_enum("/api/events", "run"), RunFilter, id="run-filter"),
        pytest.param(lambda: _schema("Event")["properties"]["origin"]["enum"], Origin, id="origin"),
        pytest.param(
            lambda: [w for w in _schema("Delivery")["properties"]["runs_search"]["enum"] if w],
            WatchState,
            id="runs-search",
        ),
        pytest.param(
            lambda: _schema("Delivery")["properties"]["kind"]["enum"], KINDS.values(), id="kind"
        ),
    ],
)
def test_document_enum_is_the_code_enum(found: Any, words: Any) -> None:
    assert sorted(found()) == sorted(str(w) for w in words)


def test_attempt_outcomes_match() -> None:
    (outcome,) = [
        s["properties"]["outcome"]["enum"]
        for s in document()["components"]["schemas"].values()
        if "outcome" in s.get("properties", {})
    ]
    assert sorted(outcome) == sorted(str(o) for o in AttemptOutcome)
