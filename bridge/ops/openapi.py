"""The OpenAPI 3.1 document of the bridge's HTTP interface, served at ``/openapi.json``.

A test compares its paths and methods with the app's routes, and CI runs schemathesis
against a live bridge with it, so the document cannot drift from the code.
"""

from __future__ import annotations

from typing import Any

from bridge import __version__


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _ok(description: str, schema: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
    }


_INTAKE_ERRORS = {
    "400": _error(
        "invalid_json: the body is not a strict JSON object; unreadable_body: the body "
        "could not be read (bad chunked framing, cut short)"
    ),
    "401": _error("missing_token, invalid_token, missing_signature or invalid_signature"),
    "404": _error("unknown_source (webhooks only)"),
    "413": _error("payload_too_large: over max_body_bytes"),
    "415": _error("unsupported_media_type: not JSON"),
    "422": _error(
        "invalid_dispatch: breaks one of GitHub's limits (the message says which); "
        "invalid_repository: the drop-in path's owner or repository is not a GitHub name"
    ),
    "503": _error("store_unavailable: the event could not be committed; retry"),
}
_ADMIN_ERRORS = {
    "400": _error("invalid_parameter"),
    "401": _error("missing_token or invalid_token (the admin token)"),
    "404": _error("event_not_found, or admin_api_disabled when no admin token is configured"),
    "503": _error("store_unavailable"),
}
_WEBHOOK_PARAMS = [
    {
        "name": "X-Wandb-Signature",
        "in": "header",
        "required": False,
        "description": "base64(HMAC-SHA256(secret, raw body)), as W&B sends it",
        "schema": {"type": "string"},
    }
]
_EVENT_ID = {"name": "event_id", "in": "path", "required": True, "schema": {"type": "string"}}


def _intake(summary: str, params: list[dict[str, Any]], body_ref: str) -> dict[str, Any]:
    return {
        "post": {
            "summary": summary,
            "security": [{"webhookToken": []}, {}],
            "parameters": params + _WEBHOOK_PARAMS,
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": {"$ref": f"#/components/schemas/{body_ref}"}}
                },
            },
            "responses": {
                "202": _ok("stored; deliveries queued", "Accepted"),
                "200": _ok("the same body arrived within dedupe_window", "Duplicate"),
                **_INTAKE_ERRORS,
            },
        }
    }


def _path_param(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


def document() -> dict[str, Any]:
    status_schema = {"type": "object", "properties": {"status": {"type": "string"}}}
    plain = {"content": {"application/json": {"schema": status_schema}}}
    passthrough = _intake(
        "Drop-in for GitHub's repository dispatch endpoint",
        [_path_param("owner"), _path_param("repo")],
        "Dispatch",
    )
    passthrough["post"]["responses"]["403"] = _error("repository_not_allowed")
    return {
        "openapi": "3.1.0",
        "info": {"title": "wandb-github-bridge", "version": __version__},
        "paths": {
            "/repos/{owner}/{repo}/dispatches": passthrough,
            "/webhooks/{source}": _intake(
                "Any W&B payload, routed by the bridge's routes",
                [_path_param("source")],
                "Webhook",
            ),
            "/healthz": {
                "get": {
                    "summary": "Process alive",
                    "responses": {"200": {"description": "alive", **plain}},
                }
            },
            "/readyz": {
                "get": {
                    "summary": "Store reachable and config loaded",
                    "responses": {
                        "200": {"description": "ready", **plain},
                        "503": {"description": "the store cannot be reached", **plain},
                    },
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics",
                    "responses": {
                        "200": {
                            "description": "Prometheus text format",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        }
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "summary": "This document",
                    "responses": {
                        "200": {
                            "description": "OpenAPI 3.1",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        }
                    },
                }
            },
            "/api/events": {
                "get": {
                    "summary": "Events, newest first",
                    "security": [{"adminToken": []}],
                    "parameters": [
                        {
                            "name": "state",
                            "in": "query",
                            "required": False,
                            "description": "only events with a dispatch (not a notification) "
                            "in this state",
                            "schema": {"enum": ["queued", "in_flight", "delivered", "dead"]},
                        },
                        {
                            "name": "limit",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "integer", "minimum": 1, "maximum": 500},
                        },
                        {
                            "name": "run",
                            "in": "query",
                            "required": False,
                            "description": "only events whose dispatches' runs ended so",
                            "schema": {
                                "enum": ["succeeded", "failed", "running", "no_run", "unknown"]
                            },
                        },
                    ],
                    "responses": {"200": _ok("events", "EventList"), **_ADMIN_ERRORS},
                }
            },
            "/api/events/{event_id}": {
                "get": {
                    "summary": "One event with its deliveries and every attempt",
                    "security": [{"adminToken": []}],
                    "parameters": [_EVENT_ID],
                    "responses": {"200": _ok("the event", "EventDetail"), **_ADMIN_ERRORS},
                }
            },
            "/api/events/{event_id}/replay": {
                "post": {
                    "summary": "Queue the event's finished deliveries again",
                    "security": [{"adminToken": []}],
                    "parameters": [_EVENT_ID],
                    "responses": {
                        "202": _ok("queued again", "Replayed"),
                        "200": _ok("nothing to queue: all queued or in flight already", "Replayed"),
                        **_ADMIN_ERRORS,
                    },
                }
            },
        },
        "components": {
            "securitySchemes": {
                "webhookToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "the W&B webhook's access token",
                },
                "adminToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "one of admin.tokens",
                },
            },
            "schemas": _schemas(),
        },
    }


def _schemas() -> dict[str, Any]:
    nullable_str = {"type": ["string", "null"]}
    delivery = {
        "type": "object",
        "required": ["id", "target", "event_type", "state"],
        "properties": {
            "id": {"type": "string"},
            "kind": {
                "enum": [
                    "repository_dispatch",
                    "workflow_dispatch",
                    "notification",
                    "wandb_write_back",
                ]
            },
            "target": {"type": "string"},
            "route": {"type": "string"},
            "event_type": {"type": "string"},
            "state": {"enum": ["queued", "in_flight", "delivered", "dead"]},
            "attempts": {"type": "integer"},
            "next_attempt_at": nullable_str,
            "created_at": nullable_str,
            "finished_at": nullable_str,
            "last_status": {"type": ["integer", "null"]},
            "last_error": nullable_str,
            "runs_search": {"enum": ["searching", "done", "no_run", "unknown", None]},
            "runs": {"type": "array", "items": {"$ref": "#/components/schemas/Run"}},
        },
    }
    run = {
        "type": "object",
        "required": ["id", "status", "conclusion"],
        "properties": {
            "id": {"type": "integer"},
            "url": nullable_str,
            "workflow": nullable_str,
            "status": nullable_str,
            "conclusion": nullable_str,
            "created_at": nullable_str,
            "updated_at": nullable_str,
            "following": {"type": "boolean"},
            "gave_up": {"type": "boolean"},
        },
    }
    attempt = {
        "type": "object",
        "properties": {
            "attempt": {"type": "integer"},
            "started_at": {"type": "string"},
            "finished_at": {"type": "string"},
            "status": {"type": ["integer", "null"]},
            "outcome": {"enum": ["delivered", "retry", "dead", "abandoned", "dry_run"]},
            "response": nullable_str,
            "wait_seconds": {"type": ["number", "null"]},
        },
    }
    event = {
        "type": "object",
        "required": ["id", "source", "received_at", "origin", "deliveries"],
        "properties": {
            "id": {"type": "string"},
            "source": {"type": "string"},
            "endpoint": {"type": "string"},
            "received_at": {"type": "string"},
            "origin": {
                "enum": ["webhook", "catch_up"],
                "description": "catch_up: a registry change the bridge found with no webhook",
            },
            "deliveries": {"type": "array", "items": {"$ref": "#/components/schemas/Delivery"}},
        },
    }
    detail_delivery = {
        "allOf": [
            {"$ref": "#/components/schemas/Delivery"},
            {
                "type": "object",
                "properties": {
                    "client_payload": {"type": "object"},
                    "inputs": {"type": "object", "description": "a workflow dispatch's inputs"},
                    "message": {"type": "object", "description": "a notification's body"},
                    "write_back": {
                        "type": "object",
                        "description": "the aliases and tags a W&B write-back adds",
                    },
                    "history": {"type": "array", "items": {"$ref": "#/components/schemas/Attempt"}},
                },
            },
        ],
    }
    return {
        "Error": {
            "type": "object",
            "required": ["error", "message"],
            "properties": {"error": {"type": "string"}, "message": {"type": "string"}},
        },
        "Dispatch": {
            "type": "object",
            "required": ["event_type"],
            "properties": {
                "event_type": {"type": "string", "minLength": 1, "maxLength": 100},
                "client_payload": {"type": "object", "maxProperties": 10},
            },
        },
        "Webhook": {"type": "object", "description": "a flat or GitHub-shaped W&B payload"},
        "Accepted": {
            "type": "object",
            "required": ["event_id", "deliveries"],
            "properties": {
                "event_id": {"type": "string"},
                "deliveries": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["id", "target", "event_type", "state"],
                        "properties": {
                            "id": {"type": "string"},
                            "target": {"type": "string"},
                            "event_type": {"type": "string"},
                            "state": {"const": "queued"},
                        },
                    },
                },
                "duplicates": {
                    "type": "array",
                    "description": "routes whose dispatch of this change catch-up made already",
                    "items": {
                        "type": "object",
                        "required": ["route", "event_id"],
                        "properties": {
                            "route": {"type": "string"},
                            "event_id": {"type": "string"},
                        },
                    },
                },
                "ignored": {
                    "type": "string",
                    "description": "why no delivery was queued (the bridge's own write-back)",
                },
            },
        },
        "Duplicate": {
            "type": "object",
            "required": ["duplicate_of"],
            "properties": {"duplicate_of": {"type": "string"}},
        },
        "Delivery": delivery,
        "Run": run,
        "Attempt": attempt,
        "Event": event,
        "EventDetail": {
            "allOf": [
                {"$ref": "#/components/schemas/Event"},
                {
                    "type": "object",
                    "properties": {
                        "body": {"type": "string"},
                        "deliveries": {"type": "array", "items": detail_delivery},
                    },
                },
            ],
        },
        "EventList": {
            "type": "object",
            "required": ["events"],
            "properties": {
                "events": {"type": "array", "items": {"$ref": "#/components/schemas/Event"}}
            },
        },
        "Replayed": {
            "type": "object",
            "required": ["event_id", "replayed", "pending"],
            "properties": {
                "event_id": {"type": "string"},
                "replayed": {"type": "array", "items": {"type": "string"}},
                "pending": {"type": "array", "items": {"type": "string"}},
            },
        },
    }
