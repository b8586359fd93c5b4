"""W&B's event filters, evaluated as W&B evaluates them: does a change pass an
automation's filter? Pure.

A filter is MongoDB-like, as :mod:`bridge.wandb.filters` writes it and W&B stores it:
``$or``, ``$and``, ``$nor`` of conditions on the event's ``alias`` or ``tag``, each with
``$eq``, ``$ne``, ``$in``, ``$nin``, ``$regex`` (unanchored, as MongoDB's) or
``$exists``. An operator outside these is :class:`UnknownFilter`: catch-up then
dispatches nothing for that automation rather than guess.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any


class UnknownFilter(ValueError):
    """A filter with an operator catch-up does not evaluate."""


def filter_matches(value: Any, fields: Mapping[str, str]) -> bool:
    """Does W&B's event filter (``$or``/``$and``/``$nor``, and per field ``$eq``, ``$ne``,
    ``$in``, ``$nin``, ``$regex``, ``$exists``) let the event with ``fields`` through?
    An empty filter lets every event through; a field the event lacks matches nothing."""
    if value in (None, {}, []):
        return True
    if not isinstance(value, Mapping):
        raise UnknownFilter(f"a filter is an object, not {json.dumps(value)[:100]}")
    for key, inner in value.items():
        if key in ("$or", "$and", "$nor"):
            if not isinstance(inner, list):
                raise UnknownFilter(f"{key} takes a list")
            hits = [filter_matches(v, fields) for v in inner]
            if key == "$or":
                ok = any(hits) or not hits  # {"$or": []}: no condition at all
            elif key == "$and":
                ok = all(hits)
            else:
                ok = not any(hits)
        elif key.startswith("$"):
            raise UnknownFilter(f"operator {key}")
        else:
            ok = _field_matches(fields.get(key), inner)
        if not ok:
            return False
    return True


def _field_matches(actual: str | None, condition: Any) -> bool:
    if not isinstance(condition, Mapping):
        return actual is not None and actual == condition
    for op, operand in condition.items():
        if op == "$exists":
            ok = (actual is not None) == bool(operand)
        elif actual is None:
            ok = op in ("$ne", "$nin")
        elif op == "$eq":
            ok = actual == operand
        elif op == "$ne":
            ok = actual != operand
        elif op in ("$in", "$nin") and isinstance(operand, list):
            ok = (actual in operand) == (op == "$in")
        elif op == "$regex" and isinstance(operand, str):
            try:
                ok = re.search(operand, actual) is not None
            except re.error as exc:
                raise UnknownFilter(f"$regex {operand!r}: {exc}") from exc
        else:
            raise UnknownFilter(f"operator {op}")
        if not ok:
            return False
    return True
