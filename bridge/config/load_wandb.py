"""The ``wandb:`` block: how the bridge reaches W&B and what it sets up there.

Besides each value's own check, the block must agree with the source W&B posts to: a
source that checks signatures or tokens needs the names of the W&B team secrets that
hold them. The API key itself is read only when the running bridge talks to W&B.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from functools import partial
from typing import Any

from bridge.config.model import Source, WandbConfig
from bridge.config.secrets import Secret, resolve_secret
from bridge.config.sections import SectionReader

MIN_CATCH_UP = 30.0  # seconds between two catch-up passes, at least


def read_wandb(
    r: SectionReader, raw: Any, path: str, sources: Mapping[str, Source], write_backs: bool
) -> WandbConfig | None:
    """The block at ``path``, checked against the configured ``sources``; with the API key
    read when the running bridge talks to W&B (``catch_up``, or routes that write back)."""
    values = r.fields_of(
        WandbConfig,
        r.mapping(raw, path),
        path,
        readers={
            "base_url": partial(
                r.base_url,
                such_as="https://api.wandb.ai or your W&B Server's https://wandb.example.com",
            ),
            "api_key": partial(_api_key, r),
            "bridge_url": partial(_bridge_url, r),
            "integration": partial(_integration, r),
            "source": partial(_source, r, sources),
            "secret_name": partial(_team_secret_name, r),
            "access_token_name": partial(_team_secret_name, r),
        },
    )
    catch_up = values["catch_up"]
    if catch_up is not None and catch_up.every < MIN_CATCH_UP:
        r.problems.append(
            f"{path}.catch_up.every: at least {MIN_CATCH_UP:g}s (each pass reads every "
            "collection the managed automations watch)"
        )
    source = sources.get(values["source"])
    if source is not None:
        checks = (
            ("secret_name", source.secrets, "checks X-Wandb-Signature, so W&B must sign"),
            ("access_token_name", source.tokens, "checks the access token, so W&B must send"),
        )
        for key, held, what in checks:
            if held and values[key] is None:
                example = "BRIDGE_WEBHOOK_SECRET" if key == "secret_name" else "BRIDGE_ACCESS_TOKEN"
                r.problems.append(
                    f"{path}.{key}: is required: source {source.name!r} {what} one; name the "
                    f"W&B team secret that holds it (e.g. {example})"
                )
    if catch_up is not None or write_backs:
        values["key"] = _key(r, values["api_key"], f"{path}.api_key")
    return r.build(WandbConfig, values)


def _key(r: SectionReader, api_key: tuple[str, str], path: str) -> Secret | None:
    kind, name = api_key
    problems: list[str] = []
    key = resolve_secret(name if kind == "inline" else {kind: name}, path, r.env, problems, [])
    r.problems += [
        f"{p} (catch_up and write_back need the key when the bridge starts)" for p in problems
    ]
    return key


def _api_key(r: SectionReader, raw: Any, path: str) -> tuple[str, str] | None:
    """Where the key is: ``(env, NAME)``, ``(file, PATH)`` or ``(inline, KEY)``."""
    if isinstance(raw, str) and raw:
        r.warnings.append(
            f"{path}: is a plain string in the config file; prefer {{env: NAME}} or {{file: PATH}}"
        )
        return ("inline", raw)
    if isinstance(raw, Mapping) and len(raw) == 1:
        ((kind, name),) = raw.items()
        if kind in ("env", "file") and isinstance(name, str) and name:
            return (kind, name)
    r.problems.append(f"{path}: must be {{env: NAME}}, {{file: PATH}} or a string")
    return None


def _bridge_url(r: SectionReader, raw: Any, path: str) -> str | None:
    host = re.match(r"https://([^/:?#@\s]+)(:\d+)?(/[^?#\s]*)?\Z", str(raw))
    if not isinstance(raw, str) or host is None:
        r.problems.append(
            f"{path}: must be the https:// URL W&B reaches this bridge at, such as "
            "https://bridge.acme.dev"
        )
        return None
    if host.group(1).lower() == "localhost" or _is_ip(host.group(1)):
        r.problems.append(
            f"{path}: W&B refuses webhook URLs on localhost or an IP address; give the "
            "bridge's DNS name"
        )
    return raw.rstrip("/")


def _integration(r: SectionReader, raw: Any, path: str) -> str | None:
    if not isinstance(raw, str) or len(raw) > 64 or not re.fullmatch(r"[-\w]+( +[-\w]+)*", raw):
        r.problems.append(
            f"{path}: a W&B webhook name is 1-64 letters, digits, _ and -, in words "
            "separated by spaces"
        )
        return None
    return raw


def _team_secret_name(r: SectionReader, raw: Any, path: str) -> str | None:
    if not isinstance(raw, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", raw):
        r.problems.append(
            f"{path}: a W&B team secret's name is letters, digits and _, such as "
            "BRIDGE_WEBHOOK_SECRET"
        )
        return None
    return raw


def _source(r: SectionReader, sources: Mapping[str, Source], raw: Any, path: str) -> str:
    """The source W&B posts to: absent, the one named wandb, or the only one."""
    if raw is None:
        raw = "wandb" if "wandb" in sources or len(sources) != 1 else next(iter(sources))
    if not isinstance(raw, str) or raw not in sources:
        r.problems.append(
            f"{path}: names no source under sources ({raw!r}); name the source W&B's "
            "webhook posts to (its URL ends in /webhooks/<source>)"
        )
    return str(raw)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True
