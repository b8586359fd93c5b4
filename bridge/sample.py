"""The body ``send-test`` sends when given none: W&B's GitHub example, filled in."""

from __future__ import annotations

SAMPLE_BODY = (
    b'{"event_type": "BUILD_AND_DEPLOY", "client_payload": {"event_author": "alice", '
    b'"artifact_version": "wandb-artifact://_id/QXJ0aWZhY3Q6MTIzNDU2", '
    b'"artifact_version_string": "acme/model-registry/churn:production", '
    b'"artifact_collection_name": "churn", "project_name": "model-registry", '
    b'"entity_name": "acme"}}'
)
