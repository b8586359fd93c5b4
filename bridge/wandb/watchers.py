"""The automations catch-up stands in for: managed by this bridge, on an event the
registry state shows (a version linked, an alias or a tag added), for a route the config
has. Pure.

W&B names a watched scope by id and short name; each watcher also says, by name, which
entity and project it watches, for :mod:`bridge.wandb.registry` to read.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from bridge.config.model import Config, WandbConfig
from bridge.routing.changes import EVENTS
from bridge.routing.limits import ROUTE_KEY
from bridge.wandb.model import Automation, ScopeRef, Wanted
from bridge.wandb.plan import is_managed
from bridge.wandb.state import REGISTRY_PREFIX

# The events catch-up can see in the registry state (``LINK_MODEL`` is W&B's link event).
CAUGHT_EVENTS = frozenset(EVENTS.values())


@dataclass(frozen=True)
class Watcher:
    """A managed automation catch-up stands in for: its route, where it watches (by
    name, in ``entity``) and ``baseline``, the key of its first whole reading."""

    automation: Automation
    route: str
    entity: str
    scope: ScopeRef

    @property
    def baseline(self) -> str:
        # Per automation: one made again (a new id) takes a new baseline, so changes made
        # while no automation watched are never dispatched.
        scope = self.automation.scope
        return f"{self.automation.id}|{scope.type}:{scope.id}" if scope else self.automation.id


def watchers(
    automations: Iterable[Automation],
    config: Config,
    wb: WandbConfig,
    wanted: Iterable[Wanted],
    org: str,
) -> tuple[list[Watcher], list[str]]:
    """The managed automations catch-up stands in for, and why others are left out (one
    line each). A disabled one is kept: its collections are read, so that what changed
    while it was off is not taken for new when it is on again; it dispatches nothing.
    ``wanted``: the automations the routes call for; ``org``: the registries' entity."""
    wants = list(wanted)
    by_name = {w.name: w for w in wants}
    routes = {r.name for r in config.routes}
    found: list[Watcher] = []
    notes: list[str] = []
    for a in automations:
        if not (is_managed(a, wb.integration) and a.integration is not None):
            continue  # not ours: catch-up never stands in for another's automation
        if not a.integration.url.startswith(wb.bridge_url.rstrip("/") + "/"):
            continue
        if a.event not in CAUGHT_EVENTS or a.scope is None:
            continue
        payload = a.payload if isinstance(a.payload, Mapping) else {}
        route = payload.get(ROUTE_KEY)
        if route is None:  # its webhook names no route: intake cannot tell its change
            notes.append(
                f"automation {a.name!r}: made before automations named their route "
                f"({ROUTE_KEY}), so catch-up leaves it out; run `wandb-bridge wandb apply`"
            )
            continue
        if not isinstance(route, str) or route not in routes:
            notes.append(
                f"automation {a.name!r}: its route is not in the config; run "
                "`wandb-bridge wandb apply`"
            )
            continue
        same = [by_name[a.name]] if a.name in by_name else [w for w in wants if w.route == route]
        where = _where(a, same, org, wb.entity)
        if where is None:
            notes.append(
                f"automation {a.name!r}: it watches {a.scope.words()}, which no route "
                "names; run `wandb-bridge wandb apply`"
            )
            continue
        found.append(Watcher(a, route, *where))
    return found, notes


def _where(
    a: Automation, wants: Sequence[Wanted], org: str, entity: str
) -> tuple[str, ScopeRef] | None:
    """The entity and scope (by name) ``a`` watches. W&B names a collection scope without
    its project: the wanted automation of that name knows it, or else the route's one
    wanted automation that watches a collection of that name."""
    assert a.scope is not None
    if a.scope.type == "ENTITY":
        return a.scope.name, ScopeRef("ENTITY")
    if a.scope.type == "PROJECT":
        project = a.scope.name
        return (org if project.startswith(REGISTRY_PREFIX) else entity), ScopeRef(
            "PROJECT", project
        )
    refs = {
        w.scope
        for w in wants
        if w.scope.type == "ARTIFACT_COLLECTION" and w.scope.collection == a.scope.name
    }
    if len(refs) != 1:
        return None
    (ref,) = refs
    project = ref.project or ""
    return (org if project.startswith(REGISTRY_PREFIX) else entity), ref
