"""Load the YAML configuration once and validate it into :mod:`bridge.config.model` objects.

Every problem is collected with its key path and reported together in one
:class:`~bridge.errors.ConfigError`; the bridge never starts on a config it would have
to guess about. Unknown keys are problems too (a typo must not silently do nothing).

Each mapping becomes its model dataclass the same way (:mod:`bridge.config.sections`):
the fields are the keys, their defaults the defaults, their types say how a value is
read. What a type cannot say is here, in :mod:`.load_routes` and in :mod:`.load_wandb`:
the checks of one value (a URL, a private key) and the rules between keys.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import partial
from typing import Any

from bridge.config.files import MAX_CONFIG_BYTES, UnreadableFile, read_text
from bridge.config.load_routes import read_routes
from bridge.config.load_wandb import read_wandb
from bridge.config.model import (
    DEFAULT_PATH,
    NOTIFIER_URL_KEYS,
    OUTCOMES,
    SOURCE_RE,
    Config,
    GitHubApp,
    GitHubConfig,
    Notifier,
    Route,
    Source,
)
from bridge.config.secrets import Secret, private_key_problem
from bridge.config.sections import SectionReader, join
from bridge.config.yaml_text import parse_yaml
from bridge.errors import ConfigError
from bridge.store.sqlite import parse_sqlite_url


def find_config_path(explicit: str | None, environ: Mapping[str, str]) -> str:
    """``--config``, else ``$WANDB_BRIDGE_CONFIG``, else ``./wandb-bridge.yaml``."""
    return explicit or environ.get("WANDB_BRIDGE_CONFIG") or DEFAULT_PATH


def load_config(path: str, environ: Mapping[str, str] | None = None) -> Config:
    """Read and validate the file at ``path``; raise ConfigError listing every problem."""
    env = os.environ if environ is None else environ
    try:
        text = read_text(path, MAX_CONFIG_BYTES)
    except UnreadableFile as exc:
        raise ConfigError([f"{path}: cannot read the config file ({exc})"]) from exc
    raw = parse_yaml(text, path)
    return parse_config({} if raw is None else raw, env)


def parse_config(raw: Any, environ: Mapping[str, str]) -> Config:
    """Validate an already-parsed YAML document."""
    return _Parser(environ).parse(raw)


class _Parser(SectionReader):
    """Reads the top level and the sections that need more than their fields' types."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        super().__init__(environ)
        self.sources: Mapping[str, Source] = {}
        self.write_backs = False  # a route writes back to W&B: the bridge needs its key

    def parse(self, raw: Any) -> Config:
        top = self.mapping(raw, "")
        # Config's fields are read in their order: sources, then routes, then wandb, so
        # the later ones can check against the earlier
        readers = {
            "store": self._store,
            "sources": self._sources,
            "github": self._github,
            "routes": self._routes,
            "wandb": lambda raw, path: read_wandb(self, raw, path, self.sources, self.write_backs),
            "notify": self._notify,
        }
        values = self.fields_of(Config, top, "", readers)
        runs, github = values["runs"], values.get("github")
        if self.write_backs and top.get("wandb") is None:
            self.problems.append(
                "routes: a route has write_back, which writes to W&B: add a wandb: block "
                "(base_url, api_key, entity, bridge_url) so the bridge can reach W&B"
            )
        if self.write_backs and (not runs.follow or (github and github.dry_run)):
            self.problems.append(
                "routes: a route has write_back, which acts when a run ends, but the bridge "
                "follows no runs (runs.follow: false or github.dry_run: true); follow runs or "
                "drop write_back"
            )
        if values["retention"] < values["dedupe_window"]:
            self.warnings.append(
                "retention.events: shorter than dedupe_window, so a repeat of a pruned event "
                "is taken as new"
            )
        if self.problems:
            raise ConfigError(self.problems)
        return Config(**values, warnings=tuple(self.warnings))

    def _routes(self, raw: Any, path: str) -> tuple[Route, ...]:
        routes = read_routes(self, raw, path, self.sources)
        self.write_backs = any(route.write_back for route in routes)
        return routes

    def _store(self, raw: Any, path: str) -> Secret | None:
        if isinstance(raw, str):  # a store URL without a password is not a secret
            secret: Secret | None = Secret(raw, "inline")
            userinfo = raw.split("://", 1)[-1].split("@", 1)
            if len(userinfo) == 2 and ":" in userinfo[0]:
                self.warnings.append(
                    f"{path}: the URL holds a password in the config file; prefer "
                    "{env: NAME} or {file: PATH}"
                )
        else:
            secret = self.secret(raw, path)
        if secret is None:
            return None
        if not secret.value.startswith(("sqlite:///", "postgresql://", "postgres://")):
            self.problems.append(
                f"{path}: must start with sqlite:/// or postgresql:// (e.g. sqlite:///bridge.db)"
            )
        elif secret.value.startswith("sqlite:///"):
            try:
                parse_sqlite_url(secret.value)
            except ValueError as exc:
                self.problems.append(f"{path}: {exc}")
        return secret

    def _sources(self, raw: Any, path: str) -> dict[str, Source]:
        sources = self.mapping(raw, path)
        if not sources:
            self.problems.append(f"{path}: define at least one source (one per W&B webhook)")
        out = {}
        for name, body in sources.items():
            where = join(path, name)
            if not isinstance(name, str) or not SOURCE_RE.match(name):
                self.problems.append(f"{where}: a source name is 1-64 letters, digits, _ . -")
                continue
            spec = self.mapping(body, where)
            source = Source(name, **self.fields_of(Source, spec, where))
            if (
                not spec.get("secrets")
                and not spec.get("tokens")
                and not source.allow_unauthenticated
            ):
                self.problems.append(
                    f"{where}: needs at least one of secrets/tokens "
                    "(or allow_unauthenticated: true, which accepts anyone's requests)"
                )
            elif source.allow_unauthenticated and not source.secrets and not source.tokens:
                self.warnings.append(
                    f"{where}: allow_unauthenticated is true: anyone who can reach the bridge "
                    "can queue events through this source, and the drop-in "
                    "/repos/<owner>/<repo>/dispatches path accepts unsigned dispatches"
                )
            out[name] = source
        self.sources = out
        return out

    def _github(self, raw: Any, path: str) -> GitHubConfig:
        spec = self.mapping(raw, path)
        values = self.fields_of(
            GitHubConfig,
            spec,
            path,
            readers={
                "api_url": partial(
                    self.base_url, such_as="https://api.github.com or https://HOST/api/v3"
                ),
                "app": self._app,
                # an empty list is as good as none: every repository
                "repositories": lambda v, p: () if v == [] else self.globs(v, p, strings_only=True),
            },
        )
        given = {k for k in ("token", "app") if spec.get(k) is not None}
        if not given and not values["dry_run"]:
            self.problems.append(
                f"{path}: set token or app (the credentials the bridge dispatches with), "
                "or dry_run: true"
            )
        if len(given) == 2:
            self.problems.append(f"{path}: set token or app, not both")
        return GitHubConfig(**values)

    def _app(self, raw: Any, path: str) -> GitHubApp | None:
        values = self.fields_of(
            GitHubApp, self.mapping(raw, path), path, readers={"private_key": self._private_key}
        )
        return self.build(GitHubApp, values)

    def _private_key(self, raw: Any, path: str) -> Secret | None:
        key = self.secret(raw, path)
        problem = private_key_problem(key) if key is not None else None
        if problem:
            self.problems.append(f"{path}: {problem}")
            return None
        return key

    # -- notify -------------------------------------------------------------------------

    def _notify(self, raw: Any, path: str) -> tuple[Notifier, ...]:
        if not isinstance(raw, list):
            self.problems.append(f"{path}: must be a list of notification targets")
            return ()
        out: list[Notifier] = []
        for i, item in enumerate(raw):
            notifier = self._notifier(item, f"{path}[{i}]", f"notify-{i}", out)
            if notifier is not None:
                out.append(notifier)
        return tuple(out)

    def _notifier(self, raw: Any, path: str, name: str, before: list[Notifier]) -> Notifier | None:
        spec = self.mapping(raw, path)
        taken = {n.name for n in before}

        def read_name(raw: Any, where: str) -> str | None:
            given = name if raw is None else raw
            if not isinstance(given, str) or not SOURCE_RE.match(given) or given in taken:
                self.problems.append(f"{where}: a unique name of 1-64 letters, digits, _ . -")
                return None
            return given

        def read_outcomes(raw: Any, where: str) -> tuple[str, ...] | None:
            if not isinstance(raw, list) or not raw or any(o not in OUTCOMES for o in raw):
                self.problems.append(f"{where}: a list of {', '.join(OUTCOMES)}")
                return None
            return tuple(dict.fromkeys(raw))

        values = self.fields_of(
            Notifier,
            spec,
            path,
            readers={"name": read_name, "outcomes": read_outcomes},
            also=NOTIFIER_URL_KEYS,
        )
        kinds = [k for k in NOTIFIER_URL_KEYS if k in spec]
        if len(kinds) != 1:
            self.problems.append(f"{path}: give exactly one of {', '.join(NOTIFIER_URL_KEYS)}")
            return None
        (kind,) = kinds
        where = f"{path}.{kind}"
        block = self.mapping(spec[kind], where)
        url_key = NOTIFIER_URL_KEYS[kind]
        self.unknown(block, [url_key, "secret"] if kind == "webhook" else [url_key], where)
        url = self.secret(block.get(url_key), f"{where}.{url_key}")
        if url is not None and not url.value.startswith(("https://", "http://")):
            self.problems.append(f"{where}.{url_key}: must be an http(s) URL")
            return None
        if kind == "webhook" and block.get("secret") is not None:
            values["secret"] = self.secret(block["secret"], f"{where}.secret")
        return self.build(Notifier, {**values, "kind": kind, "url": url} if url else values)
