"""``action.artifact``: W&B's artifact node read defensively."""

from __future__ import annotations

from typing import Any

import pytest

from action.artifact import outputs, parse_artifact
from action.errors import ApiError

WHERE: dict[str, Any] = {
    "entity": "acme",
    "project": "churn",
    "collection": "model",
    "version_index": None,
    "aliases": [{"alias": "prod"}, {"alias": ""}, "x", {"alias": 5}],
}


@pytest.mark.parametrize(
    ("metadata", "parsed"),
    [
        ('{"acc": 0.9}', {"acc": 0.9}),
        ({"acc": 0.9}, {"acc": 0.9}),  # older servers: an object
        ('{"acc": NaN}', {"acc": None}),  # not JSON: null, so fromJSON() reads the output
        ("[1, 2]", {"value": [1, 2]}),
        ("not json", {}),
        ("[" * 5000, {}),
        (None, {}),
    ],
)
def test_metadata(metadata: Any, parsed: dict[str, Any]) -> None:
    node = {"id": "QQ==", "versionIndex": 3, "metadata": metadata}
    assert parse_artifact(node, **WHERE).metadata == parsed


def test_fields_of_the_wrong_type_read_as_missing() -> None:
    node = {"id": 7, "versionIndex": 3, "size": "12", "fileCount": {}, "digest": ["x"]}
    artifact = parse_artifact(node, **WHERE)
    assert (artifact.id, artifact.size, artifact.file_count, artifact.digest) == ("", 12, 0, "")
    assert artifact.aliases == ("prod",)
    assert artifact.name == "acme/churn/model:v3"
    assert outputs(artifact)["aliases"] == '["prod"]'


@pytest.mark.parametrize("index", [None, True, -1, "3", 1.5])
def test_no_usable_version_index(index: Any) -> None:
    with pytest.raises(ApiError, match="lacks its collection or version"):
        parse_artifact({"versionIndex": index}, **WHERE)
