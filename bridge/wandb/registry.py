"""Read, through :class:`~bridge.wandb.api.WandbApi`, the collections catch-up watches.

Each watcher's scope becomes collections (a collection scope itself; a project's or a
registry's every collection; an entity's every project's every collection), then each
collection is read whole, every page of its versions. When W&B refuses one read (its
GraphQL answers with errors: no access, an object gone), that scope or collection is
left out and the pass goes on; any other failure (a 429, a 5xx, a timeout, no
connection, the request budget spent) stops the pass, and everything not read yet is
left out. What is left out is named in :attr:`Reading.missed`; its state is not touched.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple, TypeVar

from bridge.errors import WandbError
from bridge.wandb.api import WandbApi, refused
from bridge.wandb.catchup import Collection, Reading, version_of
from bridge.wandb.watchers import Watcher

T = TypeVar("T")


class CollectionRef(NamedTuple):
    id: str
    entity: str
    project: str
    name: str

    @property
    def path(self) -> str:
        return f"{self.entity}/{self.project}/{self.name}"


def read(api: WandbApi, watching: Sequence[Watcher]) -> tuple[Reading, WandbError | None]:
    """What the watchers' scopes hold now, and the failure that stopped the pass early
    (None when every read was made)."""
    listed: dict[str, list[CollectionRef] | None] = {}  # by baseline key
    found: dict[str, Collection] = {}
    missed: list[str] = []
    stopped: WandbError | None = None
    try:
        expanded: dict[tuple[str, object], list[CollectionRef] | None] = {}
        for w in watching:
            where = (w.entity, w.scope)
            if where not in expanded:
                expanded[where] = _expand(api, w, missed)
            listed[w.baseline] = expanded[where]
        refs = {r.id: r for each in listed.values() for r in each or ()}
        for ref in sorted(refs.values(), key=lambda r: r.path):
            collection = _read_collection(api, ref, missed)
            if collection is not None:
                found[collection.id] = collection
    except WandbError as exc:
        stopped = exc
        missed.append(f"the pass stopped early: {exc}")
    watched = {
        key: tuple(r.id for r in refs if r.id in found) for key, refs in listed.items() if refs
    }
    whole = frozenset(
        key for key, refs in listed.items() if refs is not None and all(r.id in found for r in refs)
    )
    return Reading(found, watched, whole, tuple(missed)), stopped


def _expand(api: WandbApi, w: Watcher, missed: list[str]) -> list[CollectionRef] | None:
    """The collections ``w`` watches; None when W&B refused a listing of them."""
    scope = w.automation.scope
    assert scope is not None
    if w.scope.type == "ARTIFACT_COLLECTION":
        return [CollectionRef(scope.id, w.entity, w.scope.project or "", scope.name)]
    if w.scope.type == "PROJECT":
        projects: list[str] | None = [w.scope.project or ""]
    else:
        projects = _refusable(missed, f"projects of {w.entity}", api.project_names, w.entity)
    if projects is None:
        return None
    refs: list[CollectionRef] = []
    for project in projects:
        where = f"collections of {w.entity}/{project}"
        pairs = _refusable(missed, where, api.collections, w.entity, project)
        if pairs is None:
            return None
        refs += [CollectionRef(cid, w.entity, project, name) for cid, name in pairs]
    return refs


def _read_collection(api: WandbApi, ref: CollectionRef, missed: list[str]) -> Collection | None:
    nodes = _refusable(
        missed, f"versions of {ref.path}", api.versions, ref.entity, ref.project, ref.name
    )
    if nodes is None:
        return None
    versions = tuple(version_of(node, ref.name) for node in nodes)
    return Collection(ref.id, ref.entity, ref.project, ref.name, versions)


def _refusable(missed: list[str], what: str, read: Callable[..., T | None], *args: str) -> T | None:
    """``read(*args)``; None (and a line in ``missed``) when W&B refused it or has no such
    object. Failures other than a refusal stop the pass: they are raised."""
    try:
        answer = read(*args)
    except WandbError as exc:
        if not refused(exc):
            raise
        missed.append(f"{what}: {exc}")
        return None
    if answer is None:
        missed.append(f"{what}: W&B has no such object (deleted, or out of the API key's sight)")
    return answer
