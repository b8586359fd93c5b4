"""The example config and the example workflows work together: every event type a
quickstart route dispatches starts one of the example workflows, so following the two
examples never records "no run started" for an event the quickstart routes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
LINK = {"LINK_ARTIFACT", "LINK_MODEL"}  # W&B sends either for a link: one event to the bridge


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _listened_types() -> dict[str, str]:
    """Each repository_dispatch type the example workflows list, with the file's name."""
    types = {}
    for path in sorted((EXAMPLES / "workflows").glob("*.yml")):
        on = _yaml(path)[True]  # YAML 1.1 reads the key `on` as True
        for event_type in (on.get("repository_dispatch") or {}).get("types", []):
            types[event_type] = path.name
    return types


def _dispatched_types(route: dict[str, Any]) -> set[str]:
    """The event types a route's repository dispatch can carry."""
    event_type = route["dispatch"].get("event_type", "${event_type}")
    if event_type != "${event_type}":
        assert "${" not in event_type, f"{route['name']}: an example names its type plainly"
        return {event_type}
    when = route.get("when", {}).get("event_type")  # W&B's own type is passed on
    assert when, f"{route['name']}: passes W&B's event type on but does not say which"
    types = {when} if isinstance(when, str) else set(when)
    return types | LINK if types & LINK else types


def test_every_type_the_quickstart_dispatches_starts_an_example_workflow():
    listened = _listened_types()
    routes = _yaml(EXAMPLES / "quickstart.yaml")["routes"]
    assert any("dispatch" in r for r in routes)
    for route in routes:
        if "dispatch" in route:
            missing = _dispatched_types(route) - listened.keys()
            assert not missing, f"route {route['name']}: no example workflow lists {missing}"
        else:
            workflow = EXAMPLES / "workflows" / route["workflow"]["file"]
            assert "workflow_dispatch" in _yaml(workflow)[True], route["name"]


def test_each_example_workflow_names_the_bridge_event_in_its_run_name():
    # Without the event id in the title the bridge cannot find the run a dispatch started.
    for path in (EXAMPLES / "workflows").glob("*.yml"):
        assert "client_payload.bridge_event_id" in _yaml(path)["run-name"], path.name
