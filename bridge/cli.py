"""The ``wandb-bridge`` command line. Exit status: 0 success, 1 failure, 2 usage error."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bridge.cli_options import CONFIG_HELP, with_config
from bridge.config.load import find_config_path, load_config
from bridge.config.model import Config
from bridge.errors import BridgeError, CliError, ConfigError, ListenError
from bridge.states import DeliveryState, RunFilter, WatchState
from bridge.version import __version__

log = logging.getLogger("bridge.cli")


# The body ``send-test`` sends when given none: W&B's GitHub example, filled in.
SAMPLE_BODY = (
    b'{"event_type": "BUILD_AND_DEPLOY", "client_payload": {"event_author": "alice", '
    b'"artifact_version": "wandb-artifact://_id/QXJ0aWZhY3Q6MTIzNDU2", '
    b'"artifact_version_string": "acme/model-registry/churn:production", '
    b'"artifact_collection_name": "churn", "project_name": "model-registry", '
    b'"entity_name": "acme"}}'
)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="wandb-bridge", description=__doc__)
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    p.add_argument("--config", default=None, help=CONFIG_HELP)
    sub = p.add_subparsers(dest="command", required=True)

    s = with_config(sub.add_parser("serve", help="run the HTTP service and delivery"))
    s.add_argument("--bind", default="127.0.0.1:8080", help="HOST:PORT (default %(default)s)")
    s.add_argument("--workers", type=int, default=2, help="gunicorn processes (default 2)")
    s.add_argument(
        "--threads", type=_positive, default=64, help="request threads per process (default 64)"
    )
    s.add_argument("--no-worker", action="store_true", help="accept only; deliver elsewhere")
    s = with_config(sub.add_parser("worker", help="run the delivery worker alone"))
    s.add_argument(
        "--burst",
        action="store_true",
        help="deliver what is due now, then exit (cron, one-shot jobs, draining a backlog)",
    )
    with_config(sub.add_parser("check-config", help="validate the config and exit"))

    s = sub.add_parser("sign", help="print the X-Wandb-Signature W&B would send for a body")
    g = s.add_mutually_exclusive_group()
    g.add_argument(
        "--secret-env",
        default=None,
        help="env variable holding the secret (default WANDB_WEBHOOK_SECRET)",
    )
    g.add_argument("--secret-file", help="file holding the secret")
    s.add_argument("body", nargs="?", default="-", help="body file, or - for stdin")

    s = sub.add_parser("send-test", help="send a body to a bridge exactly as W&B does")
    s.add_argument("url", help="where to send it, e.g. http://127.0.0.1:8080/webhooks/wandb")
    s.add_argument("--payload", default=None, help="body file or - (default: W&B's example)")
    s.add_argument("--secret-env", default=None, help="env variable holding the secret")
    s.add_argument("--token-env", default=None, help="env variable holding the access token")

    e = with_config(sub.add_parser("events", help="list, show and replay stored events"))
    ev = e.add_subparsers(dest="action", required=True)
    s = with_config(ev.add_parser("list", help="the latest events and their deliveries"))
    s.add_argument(
        "--state",
        choices=[s.value for s in DeliveryState],
        help="only events with a dispatch (not a notification nor a write-back) in this state",
    )
    s.add_argument(
        "--limit", type=_positive, default=20, help="at most this many events (default 20)"
    )
    s.add_argument(
        "--run",
        choices=[r.value for r in RunFilter],
        help="only events whose dispatches' workflow runs ended so",
    )
    s.add_argument(
        "--json", action="store_true", help='print {"events": [...]} as the admin API does'
    )
    s = with_config(ev.add_parser("show", help="one event in full, as JSON"))
    s.add_argument("id", help="the event id (evt_...)")
    s = with_config(ev.add_parser("prune", help="delete finished events past retention.events"))
    s.add_argument("--dry-run", action="store_true", help="count what would go; delete nothing")
    s = with_config(ev.add_parser("replay", help="queue an event's dispatches again"))
    s.add_argument("id", nargs="?", help="the event whose finished dispatches to queue again")
    s.add_argument("--dead", action="store_true", help="replay every dead delivery")
    from bridge.wandb.cli import register

    register(sub)
    return p


def _positive(text: str) -> int:
    if not text.isascii() or not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, not {text!r}")
    return int(text)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from bridge import logs

    logs.configure()
    try:
        status = int(COMMANDS[args.command](args))
        sys.stdout.flush()  # now, so that a reader gone away is caught below, not at exit
        return status
    except ListenError as exc:
        print(f"wandb-bridge: {exc}", file=sys.stderr)
        return 2 if exc.usage else 1
    except BridgeError as exc:
        print(f"wandb-bridge: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The output went to a reader that stopped (`... | head`): stop quietly. Python
        # flushes stdout again at exit, so point it at devnull first (the recipe of the
        # signal module's docs, "Note on SIGPIPE").
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1


def _config(args: argparse.Namespace, *, warn: bool = False) -> Config:
    """The config ``--config`` (or the environment) names; ``warn`` prints its warnings
    (``serve`` and ``check-config``: once, where an operator reads them)."""
    path = find_config_path(args.config, os.environ)
    if args.config is None and "WANDB_BRIDGE_CONFIG" not in os.environ and not Path(path).exists():
        raise ConfigError(
            [
                f"no config file: {path} does not exist; pass --config PATH or set "
                "$WANDB_BRIDGE_CONFIG (examples/quickstart.yaml is a start)"
            ]
        )
    config = load_config(path)
    from bridge import logs

    logs.configure(config.logging)
    if warn:
        for warning in config.warnings:
            log.warning("config: %s", warning)
    return config


def cmd_check_config(args: argparse.Namespace) -> int:
    config = _config(args, warn=True)
    gh = config.github
    mode = "dry run" if gh.dry_run else ("GitHub App" if gh.app else "token")
    store = config.store.value.split("://", 1)[0]
    print(
        f"config OK: {len(config.sources)} source(s), {len(config.routes)} route(s), "
        f"store {store}, GitHub {gh.api_url} ({mode})"
    )
    for line in permissions(config):
        print(line)
    return 0


def permissions(config: Config) -> list[str]:
    """What the GitHub credential must be allowed, for the features this config uses."""
    needs = ["Contents: write (repository dispatches)"]
    if any(r.workflow is not None for r in config.routes):
        needs.append("Actions: write (workflow dispatches)")
    if config.runs.follow and not config.github.dry_run:
        needs.append("Actions: read (following the runs a dispatch started)")
    return [
        "GitHub permissions this config needs (GitHub App or fine-grained token): "
        + "; ".join(needs)
        + ". A classic token needs the repo scope."
    ]


def cmd_serve(args: argparse.Namespace) -> int:
    config = _config(args, warn=True)
    if args.workers < 1:
        print("wandb-bridge: --workers must be at least 1", file=sys.stderr)
        return 2
    from bridge.bind import check_bind
    from bridge.server import serve

    check_bind(args.bind)
    serve(config, args.bind, args.workers, with_worker=not args.no_worker, threads=args.threads)
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    config = _config(args)
    from bridge.delivery.build import build_worker

    worker = build_worker(config)
    stops = (signal.SIGTERM, signal.SIGINT)
    previous = {sig: signal.signal(sig, lambda *_: worker.stop()) for sig in stops}
    try:
        # A burst acts on what a bridge stored: it never creates a store, so a wrong
        # store: fails instead of draining an empty one.
        worker.store.migrate(create=not args.burst)
        if args.burst:
            attempts = worker.drain()
            queued = worker.store.stats().by_state.get(DeliveryState.QUEUED, 0)
            print(
                f"made {attempts} delivery attempt(s); {queued} queued for later (retries "
                "not due yet, or waiting for GitHub's rate limit)"
            )
        else:
            worker.run()
    finally:
        worker.store.close()
        for sig, handler in previous.items():  # as they were (an in-process caller's)
            signal.signal(sig, handler)
    return 0


def _read_body(name: str | None) -> bytes:
    if name in (None, "-"):
        return sys.stdin.buffer.read()
    try:
        return Path(str(name)).read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read {name}: {exc.strerror}") from exc


def _env_secret(name: str) -> str | None:
    value = os.environ.get(name)
    if not value:
        print(f"wandb-bridge: environment variable {name} is not set", file=sys.stderr)
        return None
    return value


def cmd_sign(args: argparse.Namespace) -> int:
    from bridge.signature import sign

    if args.secret_file:
        from bridge.config.files import MAX_SECRET_BYTES, UnreadableFile, read_text

        try:
            secret: str | None = read_text(args.secret_file, MAX_SECRET_BYTES).strip()
        except UnreadableFile as exc:
            raise CliError(f"cannot read the secret file {args.secret_file}: {exc}") from exc
    else:
        secret = _env_secret(args.secret_env or "WANDB_WEBHOOK_SECRET")
    if not secret:
        return 2
    print(sign(secret, _read_body(args.body)))
    return 0


def cmd_send_test(args: argparse.Namespace) -> int:
    from bridge import http
    from bridge.errors import OutboundError
    from bridge.signature import sign

    body = SAMPLE_BODY if args.payload is None else _read_body(args.payload)
    headers = {"Content-Type": "application/json", "User-Agent": http.USER_AGENT}
    for env, header, fmt in (
        (args.secret_env, "X-Wandb-Signature", None),
        (args.token_env, "Authorization", "Bearer {}"),
    ):
        if env:
            value = _env_secret(env)
            if value is None:
                return 2
            headers[header] = sign(value, body) if fmt is None else fmt.format(value)
    try:
        reply = http.fetch(
            http.new_session(1), "POST", args.url, timeout=30, data=body, headers=headers
        )
    except OutboundError as exc:
        print(f"wandb-bridge: cannot reach {args.url}: {exc.message}", file=sys.stderr)
        return 1
    print(reply.status)
    print(reply.text() + ("" if reply.complete else "\n[... the rest of the answer not read]"))
    return 0 if 200 <= reply.status < 300 else 1


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def cmd_events(args: argparse.Namespace) -> int:
    from bridge.ops.documents import event_json
    from bridge.store import open_store

    config = _config(args)
    store = open_store(config.store.value)
    store.migrate(create=False)  # these commands act on what a bridge stored: never a new one
    try:
        if args.action == "list" and args.json:
            events = store.list_events(args.state, args.limit, args.run)
            print(json.dumps({"events": [event_json(e, False) for e in events]}, indent=2))
        elif args.action == "list":
            _list(store.list_events(args.state, args.limit, args.run), args)
        elif args.action == "prune":
            return _prune(store, time.time() - config.retention, args.dry_run)
        elif args.action == "show":
            print(json.dumps(event_json(store.get_event(args.id), True), indent=2))
        elif args.dead == bool(args.id):
            print("wandb-bridge: events replay takes an event id or --dead", file=sys.stderr)
            return 2
        else:
            pending: list[str] = []  # replaying twice leaves those queued or in flight be
            if args.dead:
                ids = store.replay_dead(time.time())
            else:
                done = store.replay(args.id, time.time())
                ids, pending = done.queued, done.pending
            print(f"queued again: {len(ids)} deliver{'y' if len(ids) == 1 else 'ies'}")
            for delivery_id in ids:
                print(delivery_id)
            if pending:
                print(f"left as they are, queued or in flight already: {len(pending)}")
                for delivery_id in pending:
                    print(delivery_id)
    finally:
        store.close()
    return 0


def _list(events: Sequence[Any], args: argparse.Namespace) -> None:
    """One line per event under a header, or which filters matched nothing."""
    if not events:
        filters = [
            f"--{name} {getattr(args, name)}" for name in ("state", "run") if getattr(args, name)
        ]
        print("no events matched " + " ".join(filters) if filters else "no events stored")
        return
    width = max(len("SOURCE"), *(len(e.source) for e in events))
    print(f"{'EVENT':<30}  {'RECEIVED':<20}  {'SOURCE':<{width}}  DELIVERIES")
    for event in events:
        states = ",".join(_delivery_summary(d) for d in event.deliveries) or "-"
        print(f"{event.id:<30}  {_iso(event.received_at):<20}  {event.source:<{width}}  {states}")


def _delivery_summary(d: Any) -> str:
    """``dlv_…:delivered`` and, when it was followed, what its runs did (GitHub's words,
    escaped and cut short)."""
    text = f"{d.id}:{d.state}"
    if d.runs:
        text += ":run=" + "+".join(_inert(r.conclusion or r.status or "?") for r in d.runs)
    elif d.watch == WatchState.NO_RUN:
        text += ":no_run_started"
    return text


def _inert(text: str, limit: int = 40) -> str:
    """Text from GitHub on one terminal line: control characters escaped, at most
    ``limit`` characters."""
    from bridge.text import printable

    text = printable(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _prune(store: Any, before: float, dry_run: bool) -> int:
    if dry_run:
        count = store.prune(before, batch=1_000_000_000, dry_run=True)
        print(f"would prune {count} finished event(s) older than retention.events")
        return 0
    total = 0
    while pruned := store.prune(before, batch=500):
        total += pruned
    print(f"pruned {total} finished event(s) older than retention.events")
    return 0


def cmd_wandb(args: argparse.Namespace) -> int:
    from bridge.wandb.cli import run

    return run(args, _config(args))


COMMANDS = {
    "serve": cmd_serve,
    "worker": cmd_worker,
    "check-config": cmd_check_config,
    "sign": cmd_sign,
    "send-test": cmd_send_test,
    "events": cmd_events,
    "wandb": cmd_wandb,
}
