"""``wandb-bridge wandb list|plan|apply|delete|catch-up|render``: the W&B side, from the config.

:func:`register` adds the subcommand to the main parser; :func:`run` carries it out with
the loaded config. Results go to stdout; what stops a command goes to stderr, one line
each, naming the cause and the fix. Text that came from W&B is printed escaped.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from typing import Any

from bridge.cli_options import with_config
from bridge.config.model import Config, WandbConfig
from bridge.config.secrets import Secret, resolve_secret
from bridge.errors import CliError, ConfigError, RequestRefused, WandbError
from bridge.wandb.api import WandbApi
from bridge.wandb.apply import apply_plan
from bridge.wandb.client import GraphQL
from bridge.wandb.plan import UNCHANGED, is_managed, make_plan
from bridge.wandb.render import fill, judge, sample_values, version_values
from bridge.wandb.show import listing_json, listing_lines, plan_lines, trigger_words, verdict_lines
from bridge.wandb.state import read_automations, survey
from bridge.wandb.wanted import wanted

ARTIFACT_RE = re.compile(r"^[^/:\s]+/[^/:\s]+/[^/:\s]+(:[^/:\s]+)?$")


def register(subparsers: Any) -> None:
    """Add ``wandb`` and its subcommands to the main parser's ``subparsers``."""

    w = with_config(
        subparsers.add_parser("wandb", help="set up W&B's webhook and automations from routes")
    )
    sub = w.add_subparsers(dest="wandb_command", required=True)
    s = with_config(sub.add_parser("list", help="W&B's webhook integrations and automations"))
    s.add_argument("--json", action="store_true", help="print JSON, for tools")
    with_config(sub.add_parser("plan", help="show what apply would change in W&B"))
    s = with_config(sub.add_parser("apply", help="make W&B's automations match the routes"))
    s.add_argument(
        "--create-secrets",
        action="store_true",
        help="store the source's secret and token as W&B team secrets when missing",
    )
    s = with_config(sub.add_parser("delete", help="delete one automation this bridge manages"))
    s.add_argument("name", help="the automation's name, as `wandb list` shows it")
    s.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    s = with_config(
        sub.add_parser("catch-up", help="dispatch registry changes whose webhook never came")
    )
    s.add_argument(
        "--dry-run", action="store_true", help="show what it would dispatch; store nothing"
    )
    s = with_config(sub.add_parser("render", help="fill a payload template, show what happens"))
    s.add_argument("template", help="the W&B payload template (a file, or - for stdin)")
    s.add_argument(
        "--event",
        default="ADD_ARTIFACT_ALIAS",
        choices=["ADD_ARTIFACT_ALIAS", "LINK_ARTIFACT", "LINK_MODEL"],
        help="the W&B event (default %(default)s)",
    )
    s.add_argument(
        "--artifact",
        type=_artifact,
        help="ENTITY/PROJECT/NAME:ALIAS: fill in that version's real values from W&B",
    )


def _artifact(text: str) -> str:
    if not ARTIFACT_RE.match(text):
        raise argparse.ArgumentTypeError(f"must be ENTITY/PROJECT/NAME:ALIAS, not {text!r}")
    return text if ":" in text else f"{text}:latest"


def run(args: argparse.Namespace, config: Config) -> int:
    """Carry out ``wandb <command>`` with ``config``; the exit status."""
    command = args.wandb_command
    if command == "render":
        return _render(args, config)
    wb = wandb_block(config)
    if command == "catch-up":
        return _catch_up(config, wb, dry_run=args.dry_run)
    api = connect(config, wb)
    try:
        if command == "list":
            return _list(api, wb, as_json=args.json)
        if command == "delete":
            return _delete(api, config, wb, args.name, confirmed=args.yes)
        return _plan_or_apply(
            api,
            config,
            wb,
            apply=command == "apply",
            create_secrets=command == "apply" and args.create_secrets,
        )
    finally:
        api.gql.close()


def _plan_or_apply(
    api: WandbApi, config: Config, wb: WandbConfig, *, apply: bool, create_secrets: bool
) -> int:
    found = survey(api, config, wb)
    plan = make_plan(
        wb,
        found.targets,
        found.skipped,
        found.integrations,
        found.automations,
        found.secret_names,
        create_secrets=create_secrets,
    )
    if not apply:
        print("\n".join(plan_lines(plan, wb, api.gql.base_url)))
        return _problems(plan.problems)
    if plan.problems:
        return _problems(plan.problems)
    for skipped in plan.skipped:
        print(f"not in W&B: route {skipped.route!r}: {skipped.reason}")
    if plan.changes_nothing and not (create_secrets and False in plan.secrets.values()):
        print(f"W&B already matches the config ({plan.count(UNCHANGED)} automations); sent nothing")
        return 0
    sent = apply_plan(api, config, wb, plan, print, create_secrets=create_secrets)
    print(f"applied: {sent} change(s) sent to W&B entity {wb.entity}")
    return 0


def wandb_block(config: Config) -> WandbConfig:
    if config.wandb is None:
        raise ConfigError(
            [
                "wandb: the config has no wandb: block; add one with entity and bridge_url "
                "(docs/wandb.md shows it)"
            ]
        )
    return config.wandb


def connect(config: Config, wb: WandbConfig) -> WandbApi:
    """The API for ``wb.entity``, with the key read now."""
    return WandbApi(GraphQL(wb.base_url, api_key(wb), secrets=config.secrets()), wb.entity)


def api_key(wb: WandbConfig) -> Secret:
    """The W&B API key: read at load when the running bridge talks to W&B, else now."""
    if wb.key is not None:
        return wb.key
    kind, where = wb.api_key
    problems: list[str] = []
    raw: Any = where if kind == "inline" else {kind: where}
    key = resolve_secret(raw, "wandb.api_key", os.environ, problems, [])
    if key is None:
        raise ConfigError(problems)
    return key


def _problems(problems: tuple[str, ...]) -> int:
    for problem in problems:
        print(f"wandb-bridge: {problem}", file=sys.stderr)
    return 1 if problems else 0


# -- list ------------------------------------------------------------------------------


def _list(api: WandbApi, wb: WandbConfig, *, as_json: bool) -> int:
    api.entity_scope()
    integrations = api.integrations()
    automations = read_automations(api)
    if as_json:
        print(json.dumps(listing_json(wb, integrations, automations), indent=2))
    else:
        print("\n".join(listing_lines(wb, integrations, automations)))
    return 0


# -- delete ------------------------------------------------------------------------------


def _delete(api: WandbApi, config: Config, wb: WandbConfig, name: str, *, confirmed: bool) -> int:
    api.entity_scope()
    found = [a for a in read_automations(api) if a.name == name]
    if not found:
        raise WandbError(
            f"W&B has no automation named {name!r} in {wb.entity}; `wandb-bridge wandb list` "
            "shows their names"
        )
    automation = found[0]
    if not is_managed(automation, wb.integration):
        raise WandbError(
            f"automation {name!r} is not managed by this bridge (its description lacks the "
            f"marker, or it does not post to integration {wb.integration!r}); delete it in "
            "W&B's UI if you mean to"
        )
    if not confirmed:
        print(
            f"delete automation {name!r} ({trigger_words(automation)}) from W&B entity "
            f"{wb.entity}? [y/N] ",
            end="",
            file=sys.stderr,
            flush=True,
        )
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            print("wandb-bridge: not deleted (answer y to confirm, or pass --yes)", file=sys.stderr)
            return 1
    api.delete_automation(automation)
    print(f"deleted automation {name!r}")
    still = [w.route for w in wanted(config, wb, api.features())[0] if w.name == name]
    if still:
        print(
            f"note: route {still[0]!r} still calls for it; the next `wandb-bridge wandb "
            "apply` creates it again unless you change that route"
        )
    return 0


# -- catch-up ----------------------------------------------------------------------------


def _catch_up(config: Config, wb: WandbConfig, *, dry_run: bool) -> int:
    """One catch-up pass by hand (``every`` does not apply; the lease does)."""
    import socket

    from bridge.store import open_store
    from bridge.wandb.catchup_run import CatchUpRunner
    from bridge.wandb.show_catchup import report_lines

    store = open_store(config.store.value)
    try:
        store.migrate(create=not dry_run)  # a dry run writes nothing, not even the schema
        owner = f"{socket.gethostname()}:{os.getpid()}:catch-up"
        report = CatchUpRunner(config, store, api_key(wb), owner=owner).run_pass(
            every=0, dry_run=dry_run
        )
    finally:
        store.close()
    if report is None:
        raise CliError(
            "another catch-up pass is running (in `serve` or by hand); try again when it ends"
        )
    print("\n".join(report_lines(report, wb)))
    for line in report.missed:
        print(f"wandb-bridge: left out: {line}", file=sys.stderr)
    return 1 if report.missed else 0


# -- render ------------------------------------------------------------------------------


def _render(args: argparse.Namespace, config: Config) -> int:
    template = _read_template(args.template)
    wb = config.wandb
    if args.artifact:
        if wb is None:
            wandb_block(config)  # raises: the look-up needs the wandb: block's key and URL
        assert wb is not None
        api = connect(config, wb)
        path, _, alias = args.artifact.rpartition(":")
        entity, project, collection = path.split("/")
        try:
            found = api.artifact_version(entity, project, f"{collection}:{alias}")
        finally:
            api.gql.close()
        if found is None:
            raise WandbError(
                f"W&B has no version {collection}:{alias} in {entity}/{project}; check "
                "--artifact (ENTITY/PROJECT/NAME:ALIAS)"
            )
        values = version_values(args.event, args.artifact, found)
        what = f"{args.event}, {args.artifact}"
    else:
        values = sample_values(args.event, wb.entity if wb else "acme")
        what = f"{args.event}, sample values"
    body, unknown = fill(template, values)
    print(f"W&B would send ({what}):")
    print(body.rstrip("\n"))
    for name in dict.fromkeys(unknown):
        print(f"note: ${{{name}}} is not a W&B variable the bridge knows; W&B may send it empty")
    source = wb.source if wb else next(iter(config.sources))
    print(f"\nthe bridge, at /webhooks/{source}:")
    try:
        verdicts = judge(config, source, body.encode("utf-8"))
    except RequestRefused as exc:
        print(f"  refuses it: {exc.status} {exc.code}: {exc.message}")
        return 1
    print("\n".join(verdict_lines(verdicts)))
    return 1 if any(v.refused for v in verdicts) else 0


def _read_template(name: str) -> str:
    """A payload template: W&B's are a few KB, so a file over 1 MiB is the wrong one."""
    from bridge.config.files import MAX_CONFIG_BYTES, UnreadableFile, read_text

    if name == "-":
        text = sys.stdin.read(MAX_CONFIG_BYTES + 1)
        if len(text) > MAX_CONFIG_BYTES:
            raise CliError("cannot read the template from standard input: it is over 1 MiB")
        return text
    try:
        return read_text(name, MAX_CONFIG_BYTES)
    except UnreadableFile as exc:
        raise CliError(f"cannot read the template {name}: {exc}") from exc
