"""How ``wandb-bridge wandb catch-up`` reports a pass, for people. Pure.

Names that came from W&B (collections, aliases, tags) go through ``printable``.
"""

from __future__ import annotations

from bridge.config.model import WandbConfig
from bridge.routing.changes import ALIAS, TAG
from bridge.store.models import target_name
from bridge.text import printable
from bridge.wandb.catchup_run import PassReport


def report_lines(report: PassReport, wb: WandbConfig) -> list[str]:
    """Per collection read, its versions and new items; then each change found and what
    became of it (dispatched as an event, or already dispatched)."""
    lines = [
        f"catch-up of W&B entity {printable(wb.entity)}: {len(report.collections)} "
        f"collection(s) read whole, {report.requests} W&B request(s)"
        + (" (dry run: nothing stored)" if report.dry_run else "")
    ]
    added = {seen.collection: seen.added for seen in report.result.collections}
    for c in report.collections:
        new = added.get(c.id, ())
        lines.append(f"  {printable(c.path)}: {len(c.versions)} version(s), {len(new)} new")
        versions = {v.artifact: v.version for v in c.versions}
        for x in new:
            artifact, kind, name = x.split("|", 2)
            what = {ALIAS: f"alias {name}", TAG: f"tag {name}"}.get(kind, "linked")
            lines.append(f"    + {printable(versions.get(artifact, artifact))} {printable(what)}")
    if report.result.baselines:
        lines.append(
            f"first whole reading of {len(report.result.baselines)} automation scope(s): "
            "what they hold is recorded as seen, and none of it dispatched"
        )
    found = report.result.caught_up
    verb = "would dispatch" if report.dry_run else "found"
    lines.append(f"{verb} {len(found)} change(s) no webhook was seen for" if found else "no change")
    for f in found:
        targets = ", ".join(
            target_name(d.kind, d.repository, d.workflow, d.ref, d.notifier) for d in f.deliveries
        )
        if report.dry_run:
            outcome = "unless its webhook came"
        elif f.event.id in report.recorded:
            outcome = f"dispatched as event {f.event.id}"
        else:
            outcome = "not dispatched: its webhook (or an earlier pass) did, or the bridge wrote it"
        lines.append(f"  {printable(f.change)} route {f.route!r} -> {targets}: {outcome}")
    lines += [f"note: {printable(note)}" for note in report.notes]
    return lines
