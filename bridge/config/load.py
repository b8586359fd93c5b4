"""Load the YAML configuration once and validate it into :mod:`bridge.config.model` objects.

Every problem is collected with its key path and reported together in one
:class:`~bridge.errors.ConfigError`; the bridge never starts on a config it would have
to guess about. Unknown keys are problems too (a typo must not silently do nothing).
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from typing import Any

from bridge.config.files import MAX_CONFIG_BYTES, UnreadableFile, read_text
from bridge.config.model import (
    DEFAULT_API_URL,
    DEFAULT_PATH,
    NOTIFIER_KINDS,
    OUTCOMES,
    REPO_RE,
    SOURCE_RE,
    WRITE_BACK_OUTCOMES,
    CatchUp,
    Config,
    DeliveryConfig,
    Dispatch,
    GitHubApp,
    GitHubConfig,
    LoggingConfig,
    Notifier,
    Route,
    RunsConfig,
    Source,
    WandbConfig,
    Workflow,
    WriteBack,
    parse_duration,
)
from bridge.config.secrets import Secret, private_key_problem, resolve_secret
from bridge.config.yaml_text import parse_yaml
from bridge.errors import ConfigError
from bridge.routing.limits import MAX_PAYLOAD_KEYS, workflow_inputs_problem
from bridge.routing.routes import WANDB_FIELDS, is_known_field
from bridge.routing.templates import template_problems, variables
from bridge.store.sqlite import parse_sqlite_url

MIN_CATCH_UP = 30.0  # seconds between two catch-up passes, at least
MAX_WANDB_NAME = 128  # W&B's limit on an alias or a tag
TAG_RE = re.compile(r"^[-\w]+([ ]+[-\w]+)*$")
WORKFLOW_FILE_RE = re.compile(r"^(?:[0-9]+|[A-Za-z0-9_.-]+\.ya?ml)$")
_TOP = {
    "store",
    "max_body_bytes",
    "dedupe_window",
    "sources",
    "github",
    "routes",
    "delivery",
    "logging",
    "admin",
    "wandb",
    "runs",
    "notify",
    "retention",
}


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


class _Parser:
    def __init__(self, environ: Mapping[str, str]) -> None:
        self.env = environ
        self.problems: list[str] = []
        self.warnings: list[str] = []
        self.write_backs = False  # a route writes back to W&B: the bridge needs its key

    # -- small typed readers; each records a problem and returns a default ---------------

    def _mapping(self, raw: Any, path: str) -> Mapping[str, Any]:
        if raw is None:
            return {}
        if not isinstance(raw, Mapping):
            self.problems.append(f"{path}: must be a mapping")
            return {}
        return raw

    def _unknown(self, raw: Mapping[str, Any], known: set[str], path: str) -> None:
        for key in raw:
            if key not in known:
                self.problems.append(
                    f"{path}.{key}: unknown key (known: {', '.join(sorted(known))})"
                )

    def _int(self, raw: Any, path: str, default: int, minimum: int = 0) -> int:
        if raw is None:
            return default
        if isinstance(raw, bool) or not isinstance(raw, int) or raw < minimum:
            self.problems.append(f"{path}: must be a whole number >= {minimum}")
            return default
        return raw

    def _duration(self, raw: Any, path: str, default: float) -> float:
        if raw is None:
            return default
        value = parse_duration(raw)
        if value is None:
            self.problems.append(f"{path}: must be a duration such as 30s, 10m, 24h or 0")
            return default
        return value

    def _bool(self, raw: Any, path: str, default: bool) -> bool:
        if raw is None:
            return default
        if not isinstance(raw, bool):
            self.problems.append(f"{path}: must be true or false")
            return default
        return raw

    def _secrets(self, raw: Any, path: str) -> tuple[Secret, ...]:
        if raw is None:
            return ()
        if not isinstance(raw, list):
            raw = [raw]
        out = []
        for i, item in enumerate(raw):
            s = resolve_secret(item, f"{path}[{i}]", self.env, self.problems, self.warnings)
            if s is not None:
                out.append(s)
        return tuple(out)

    def _secret(self, raw: Any, path: str) -> Secret | None:
        """One secret value (a key that takes a single one, such as github.token)."""
        return resolve_secret(raw, path, self.env, self.problems, self.warnings)

    def _globs(self, raw: Any, path: str, *, strings_only: bool = False) -> tuple[str, ...]:
        items = raw if isinstance(raw, list) else [raw]
        # bool is an int to Python, but `true` is never a glob anyone meant
        allowed = (str,) if strings_only else (str, int, float)
        if not items or not all(isinstance(x, allowed) and not isinstance(x, bool) for x in items):
            self.problems.append(f"{path}: must be a string or a list of strings")
            return ()
        return tuple(str(x) for x in items)

    # -- sections --------------------------------------------------------------------------

    def parse(self, raw: Any) -> Config:
        top = self._mapping(raw, "(top level)")
        self._unknown(top, _TOP, "")
        store = self._store(top.get("store"))
        sources = self._sources(top.get("sources"))
        github = self._github(top.get("github"))
        routes = self._routes(top.get("routes"), set(sources))
        delivery = self._delivery(top.get("delivery"))
        logging = self._logging(top.get("logging"))
        admin = self._mapping(top.get("admin"), "admin")
        self._unknown(admin, {"tokens"}, "admin")
        admin_tokens = self._secrets(admin.get("tokens"), "admin.tokens")
        max_body = self._int(top.get("max_body_bytes"), "max_body_bytes", 1024 * 1024, 1)
        window = self._duration(top.get("dedupe_window"), "dedupe_window", 600.0)
        wandb = self._wandb(top.get("wandb"), sources)
        if self.write_backs and wandb is None:
            self.problems.append(
                "routes: a route has write_back, which writes to W&B: add a wandb: block "
                "(base_url, api_key, entity, bridge_url) so the bridge can reach W&B"
            )
        runs = self._runs(top.get("runs"))
        if self.write_backs and (not runs.follow or github.dry_run):
            self.problems.append(
                "routes: a route has write_back, which acts when a run ends, but the bridge "
                "follows no runs (runs.follow: false or github.dry_run: true); follow runs or "
                "drop write_back"
            )
        notify = self._notify(top.get("notify"))
        retention = self._mapping(top.get("retention"), "retention")
        self._unknown(retention, {"events"}, "retention")
        keep = self._duration(retention.get("events"), "retention.events", 30 * 86400.0)
        if keep < window:
            self.warnings.append(
                "retention.events: shorter than dedupe_window, so a repeat of a pruned event "
                "is taken as new"
            )
        if self.problems:
            raise ConfigError([p.lstrip(".") for p in self.problems])
        assert store is not None
        return Config(
            store=store,
            sources=sources,
            github=github,
            routes=routes,
            max_body_bytes=max_body,
            dedupe_window=window,
            delivery=delivery,
            logging=logging,
            admin_tokens=admin_tokens,
            warnings=tuple(self.warnings),
            wandb=wandb,
            runs=runs,
            notify=notify,
            retention=keep,
        )

    def _store(self, raw: Any) -> Secret | None:
        if raw is None:
            return Secret("sqlite:///wandb-bridge.db", "default")
        if isinstance(raw, str):  # a store URL without a password is not a secret
            secret: Secret | None = Secret(raw, "inline")
            userinfo = raw.split("://", 1)[-1].split("@", 1)
            if len(userinfo) == 2 and ":" in userinfo[0]:
                self.warnings.append(
                    "store: the URL holds a password in the config file; prefer "
                    "{env: NAME} or {file: PATH}"
                )
        else:
            secret = resolve_secret(raw, "store", self.env, self.problems, self.warnings)
        if secret is not None and not secret.value.startswith(
            ("sqlite:///", "postgresql://", "postgres://")
        ):
            self.problems.append(
                "store: must start with sqlite:/// or postgresql:// (e.g. sqlite:///bridge.db)"
            )
        elif secret is not None and secret.value.startswith("sqlite:///"):
            try:
                parse_sqlite_url(secret.value)
            except ValueError as exc:
                self.problems.append(f"store: {exc}")
        return secret

    def _sources(self, raw: Any) -> dict[str, Source]:
        sources = self._mapping(raw, "sources")
        if not sources:
            self.problems.append("sources: define at least one source (one per W&B webhook)")
        out = {}
        for name, body in sources.items():
            path = f"sources.{name}"
            if not isinstance(name, str) or not SOURCE_RE.match(name):
                self.problems.append(f"{path}: a source name is 1-64 letters, digits, _ . -")
                continue
            spec = self._mapping(body, path)
            self._unknown(spec, {"secrets", "tokens", "allow_unauthenticated"}, path)
            secrets = self._secrets(spec.get("secrets"), f"{path}.secrets")
            tokens = self._secrets(spec.get("tokens"), f"{path}.tokens")
            unauth = self._bool(
                spec.get("allow_unauthenticated"), f"{path}.allow_unauthenticated", False
            )
            if not spec.get("secrets") and not spec.get("tokens") and not unauth:
                self.problems.append(
                    f"{path}: needs at least one of secrets/tokens "
                    "(or allow_unauthenticated: true, which accepts anyone's requests)"
                )
            elif unauth and not secrets and not tokens:
                self.warnings.append(
                    f"{path}: allow_unauthenticated is true: anyone who can reach the bridge "
                    "can queue events through this source, and the drop-in "
                    "/repos/<owner>/<repo>/dispatches path accepts unsigned dispatches"
                )
            out[name] = Source(name, secrets, tokens, unauth)
        return out

    def _github(self, raw: Any) -> GitHubConfig:
        gh = self._mapping(raw, "github")
        self._unknown(gh, {"api_url", "token", "app", "repositories", "dry_run"}, "github")
        api_url = gh.get("api_url", DEFAULT_API_URL)
        if not isinstance(api_url, str) or not api_url.startswith(("https://", "http://")):
            self.problems.append("github.api_url: must be an http(s) URL")
            api_url = DEFAULT_API_URL
        dry_run = self._bool(gh.get("dry_run"), "github.dry_run", False)
        token = None
        if gh.get("token") is not None:
            token = self._secret(gh["token"], "github.token")
        app = self._app(gh.get("app")) if gh.get("app") is not None else None
        if gh.get("token") is None and gh.get("app") is None and not dry_run:
            self.problems.append(
                "github: set token or app (the credentials the bridge dispatches with), "
                "or dry_run: true"
            )
        if gh.get("token") is not None and gh.get("app") is not None:
            self.problems.append("github: set token or app, not both")
        repos: tuple[str, ...] = ()
        if gh.get("repositories") not in (None, []):
            repos = self._globs(gh["repositories"], "github.repositories", strings_only=True)
        return GitHubConfig(api_url.rstrip("/"), token, app, repos, dry_run)

    def _app(self, raw: Any) -> GitHubApp | None:
        app = self._mapping(raw, "github.app")
        self._unknown(app, {"id", "private_key", "installation_id"}, "github.app")
        app_id = self._int(app.get("id"), "github.app.id", 0, 1)
        if app.get("id") is None:
            self.problems.append("github.app.id: is required (the App's numeric id)")
        key = None
        if app.get("private_key") is not None:
            key = self._secret(app["private_key"], "github.app.private_key")
        if app.get("private_key") is None:
            self.problems.append("github.app.private_key: is required ({file: PATH} to a .pem)")
        inst = app.get("installation_id")
        inst_id = self._int(inst, "github.app.installation_id", 0, 1) if inst is not None else None
        if key is None:
            return None
        problem = private_key_problem(key)
        if problem:
            self.problems.append(f"github.app.private_key: {problem}")
            return None
        return GitHubApp(app_id, key, inst_id)

    def _routes(self, raw: Any, sources: set[str]) -> tuple[Route, ...]:
        if raw is None:
            return ()
        if not isinstance(raw, list):
            self.problems.append("routes: must be a list")
            return ()
        out = []
        for i, item in enumerate(raw):
            route = self._route(item, f"routes[{i}]", sources)
            if route is not None:
                out.append(route)
        return tuple(out)

    def _route(self, raw: Any, path: str, sources: set[str]) -> Route | None:
        spec = self._mapping(raw, path)
        self._unknown(spec, {"name", "sources", "when", "dispatch", "workflow", "write_back"}, path)
        name = spec.get("name", path)
        route_sources = None
        if spec.get("sources") is not None:
            route_sources = self._globs(spec["sources"], f"{path}.sources")
            for s in route_sources:
                if s not in sources:
                    self.problems.append(f"{path}.sources: no source named {s!r} under sources")
        when = self._mapping(spec.get("when"), f"{path}.when")
        for key in when:
            if not is_known_field(str(key)):
                self.problems.append(
                    f"{path}.when.{key}: not a W&B payload variable (e.g. event_type, alias, "
                    "artifact_collection_name, artifact_metadata.<KEY>); this route could "
                    "never match"
                )
        conditions = tuple((str(k), self._globs(v, f"{path}.when.{k}")) for k, v in when.items())
        if ("dispatch" in spec) == ("workflow" in spec):
            self.problems.append(
                f"{path}: give exactly one target: dispatch (a repository_dispatch) or "
                "workflow (a workflow_dispatch)"
            )
            return None
        if "workflow" in spec:
            workflow = self._workflow(spec["workflow"], f"{path}.workflow")
            if workflow is None:
                return None
            return Route(
                str(name),
                None,
                route_sources,
                conditions,
                workflow,
                self._write_back(spec.get("write_back"), f"{path}.write_back"),
            )
        d = self._mapping(spec.get("dispatch"), f"{path}.dispatch")
        self._unknown(d, {"repository", "event_type", "client_payload"}, f"{path}.dispatch")
        repo = d.get("repository")
        if not isinstance(repo, str) or not REPO_RE.match(repo):
            self.problems.append(f"{path}.dispatch.repository: must be owner/repo")
            return None
        event_type = d.get("event_type", "${event_type}")
        if not isinstance(event_type, str) or not event_type:
            self.problems.append(f"{path}.dispatch.event_type: must be a non-empty string")
            event_type = "${event_type}"
        payload = d.get("client_payload")
        if payload is not None and not isinstance(payload, Mapping):
            self.problems.append(f"{path}.dispatch.client_payload: must be a mapping")
            payload = None
        self._templates([event_type, payload], f"{path}.dispatch")
        if isinstance(payload, Mapping) and len(payload) > MAX_PAYLOAD_KEYS:
            self.problems.append(
                f"{path}.dispatch.client_payload: has {len(payload)} keys; GitHub takes at "
                f"most {MAX_PAYLOAD_KEYS} (nest the rest under one key)"
            )
        return Route(
            str(name),
            Dispatch(repo, event_type, payload),
            route_sources,
            conditions,
            write_back=self._write_back(spec.get("write_back"), f"{path}.write_back"),
        )

    def _write_back(self, raw: Any, path: str) -> tuple[tuple[str, WriteBack], ...]:
        """``write_back:``: per run outcome, the aliases and tags to add in W&B."""
        if raw is None:
            return ()
        spec = self._mapping(raw, path)
        self._unknown(spec, set(WRITE_BACK_OUTCOMES), path)
        out = []
        for outcome in WRITE_BACK_OUTCOMES:
            if outcome not in spec:
                continue
            where = f"{path}.{outcome}"
            each = self._mapping(spec[outcome], where)
            self._unknown(each, {"aliases", "tags"}, where)
            lists: dict[str, tuple[str, ...]] = {}
            for key in ("aliases", "tags"):
                given = each.get(key)
                names = (
                    () if given is None else self._globs(given, f"{where}.{key}", strings_only=True)
                )
                self._templates(list(names), f"{where}.{key}")
                for name in names:
                    problem = write_back_name_problem(key, name)
                    if problem:
                        self.problems.append(f"{where}.{key}: {name!r} {problem}")
                lists[key] = names
            if not lists["aliases"] and not lists["tags"]:
                self.problems.append(f"{where}: give aliases, tags or both")
                continue
            out.append((outcome, WriteBack(lists["aliases"], lists["tags"])))
        self.write_backs = self.write_backs or bool(out)
        return tuple(out)

    def _templates(self, templates: list[Any], path: str) -> None:
        """Report malformed placeholders and names that are not W&B variables."""
        for template in templates:
            for problem in template_problems(template):
                self.problems.append(f"{path}: {problem}")
        for var in sorted(set().union(*(variables(t) for t in templates))):
            if not is_known_field(var):
                self.problems.append(
                    f"{path}: ${{{var}}} is not a W&B payload variable; use one "
                    "of " + ", ".join(f"${{{f}}}" for f in WANDB_FIELDS) + " or "
                    "${artifact_metadata.<KEY>}"
                )

    def _workflow(self, raw: Any, path: str) -> Workflow | None:
        w = self._mapping(raw, path)
        self._unknown(w, {"repository", "file", "ref", "inputs"}, path)
        repo, file, ref = w.get("repository"), w.get("file"), w.get("ref")
        ok = True
        if not isinstance(repo, str) or not REPO_RE.match(repo):
            self.problems.append(f"{path}.repository: must be owner/repo")
            ok = False
        if isinstance(file, int) and not isinstance(file, bool) and file > 0:
            file = str(file)
        if not isinstance(file, str) or not WORKFLOW_FILE_RE.match(file):
            self.problems.append(
                f"{path}.file: must be the workflow's file name (e.g. deploy.yml) or its id"
            )
            ok = False
        if not isinstance(ref, str) or not ref.strip():
            self.problems.append(f"{path}.ref: must be a branch or tag name (a template)")
            ok = False
        inputs = w.get("inputs")
        if inputs is not None and not isinstance(inputs, Mapping):
            self.problems.append(f"{path}.inputs: must be a mapping of input names to templates")
            ok = False
        if isinstance(inputs, Mapping):
            problem = workflow_inputs_problem(inputs)
            if problem:
                self.problems.append(f"{path}.inputs: {problem}")
                ok = False
        self._templates([ref, inputs], path)
        if not ok:
            return None
        return Workflow(str(repo), str(file), str(ref), inputs)

    def _runs(self, raw: Any) -> RunsConfig:
        r = self._mapping(raw, "runs")
        self._unknown(
            r,
            {"follow", "no_run_after", "give_up_after", "max_requests_per_hour", "min_interval"},
            "runs",
        )
        dflt = RunsConfig()
        return RunsConfig(
            follow=self._bool(r.get("follow"), "runs.follow", dflt.follow),
            no_run_after=self._duration(
                r.get("no_run_after"), "runs.no_run_after", dflt.no_run_after
            ),
            give_up_after=self._duration(
                r.get("give_up_after"), "runs.give_up_after", dflt.give_up_after
            ),
            min_interval=self._duration(
                r.get("min_interval"), "runs.min_interval", dflt.min_interval
            ),
            max_requests_per_hour=self._int(
                r.get("max_requests_per_hour"),
                "runs.max_requests_per_hour",
                dflt.max_requests_per_hour,
                1,
            ),
        )

    def _notify(self, raw: Any) -> tuple[Notifier, ...]:
        if raw is None:
            return ()
        if not isinstance(raw, list):
            self.problems.append("notify: must be a list of notification targets")
            return ()
        out, names = [], set()
        for i, item in enumerate(raw):
            path = f"notify[{i}]"
            n = self._mapping(item, path)
            self._unknown(n, {"name", "outcomes", *NOTIFIER_KINDS}, path)
            name = n.get("name", f"notify-{i}")
            if not isinstance(name, str) or not SOURCE_RE.match(name) or name in names:
                self.problems.append(f"{path}.name: a unique name of 1-64 letters, digits, _ . -")
                continue
            names.add(name)
            outcomes = n.get("outcomes")
            if (
                not isinstance(outcomes, list)
                or not outcomes
                or any(o not in OUTCOMES for o in outcomes)
            ):
                self.problems.append(f"{path}.outcomes: a list of {', '.join(OUTCOMES)}")
                continue
            kinds = [k for k in NOTIFIER_KINDS if k in n]
            if len(kinds) != 1:
                self.problems.append(f"{path}: give exactly one of {', '.join(NOTIFIER_KINDS)}")
                continue
            kind = kinds[0]
            spec = self._mapping(n[kind], f"{path}.{kind}")
            url_key = "url" if kind == "webhook" else "webhook_url"
            self._unknown(
                spec, {url_key, "secret"} if kind == "webhook" else {url_key}, f"{path}.{kind}"
            )
            url = self._secret(spec.get(url_key), f"{path}.{kind}.{url_key}")
            if url is not None and not url.value.startswith(("https://", "http://")):
                self.problems.append(f"{path}.{kind}.{url_key}: must be an http(s) URL")
                continue
            secret = None
            if kind == "webhook" and spec.get("secret") is not None:
                secret = self._secret(spec["secret"], f"{path}.webhook.secret")
            if url is not None:
                out.append(Notifier(name, tuple(dict.fromkeys(outcomes)), kind, url, secret))
        return tuple(out)

    def _delivery(self, raw: Any) -> DeliveryConfig:
        d = self._mapping(raw, "delivery")
        keys = {
            "max_attempts",
            "max_age",
            "initial_backoff",
            "max_backoff",
            "lease",
            "timeout",
            "concurrency",
        }
        self._unknown(d, keys, "delivery")
        dflt = DeliveryConfig()
        cfg = DeliveryConfig(
            max_attempts=self._int(
                d.get("max_attempts"), "delivery.max_attempts", dflt.max_attempts, 1
            ),
            max_age=self._duration(d.get("max_age"), "delivery.max_age", dflt.max_age),
            initial_backoff=self._duration(
                d.get("initial_backoff"), "delivery.initial_backoff", dflt.initial_backoff
            ),
            max_backoff=self._duration(
                d.get("max_backoff"), "delivery.max_backoff", dflt.max_backoff
            ),
            lease=self._duration(d.get("lease"), "delivery.lease", dflt.lease),
            timeout=self._duration(d.get("timeout"), "delivery.timeout", dflt.timeout),
            concurrency=self._int(
                d.get("concurrency"), "delivery.concurrency", dflt.concurrency, 1
            ),
        )
        return cfg

    def _logging(self, raw: Any) -> LoggingConfig:
        lg = self._mapping(raw, "logging")
        self._unknown(lg, {"format", "level"}, "logging")
        fmt = lg.get("format", "text")
        if fmt not in ("text", "json"):
            self.problems.append("logging.format: must be text or json")
            fmt = "text"
        level = str(lg.get("level", "INFO")).upper()
        if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            self.problems.append("logging.level: must be DEBUG, INFO, WARNING or ERROR")
            level = "INFO"
        return LoggingConfig(fmt, level)

    def _wandb(self, raw: Any, sources: Mapping[str, Source]) -> WandbConfig | None:
        """The ``wandb:`` block, for ``wandb-bridge wandb ...`` only (None when absent)."""
        if raw is None:
            return None
        w = self._mapping(raw, "wandb")
        known = {"base_url", "api_key", "entity", "bridge_url", "integration", "source"}
        known |= {"secret_name", "access_token_name", "catch_up"}
        self._unknown(w, known, "wandb")
        base_url = w.get("base_url", WandbConfig.base_url)
        if not isinstance(base_url, str) or not re.match(r"https?://[^/@]+(/|$)", base_url):
            self.problems.append(
                "wandb.base_url: must be W&B's http(s) URL without credentials, such as "
                "https://api.wandb.ai or your W&B Server's https://wandb.example.com"
            )
            base_url = WandbConfig.base_url
        key = w.get("api_key", {"env": "WANDB_API_KEY"})
        api_key: tuple[str, str] = ("env", "WANDB_API_KEY")
        if isinstance(key, str) and key:
            self.warnings.append(
                "wandb.api_key: is a plain string in the config file; prefer "
                "{env: NAME} or {file: PATH}"
            )
            api_key = ("inline", key)
        elif isinstance(key, Mapping) and len(key) == 1:
            ((kind, name),) = key.items()
            if kind in ("env", "file") and isinstance(name, str) and name:
                api_key = (kind, name)
            else:
                self.problems.append("wandb.api_key: must be {env: NAME}, {file: PATH} or a string")
        else:
            self.problems.append("wandb.api_key: must be {env: NAME}, {file: PATH} or a string")
        entity = w.get("entity")
        if not isinstance(entity, str) or not entity:
            self.problems.append(
                "wandb.entity: is required (the W&B team that owns the automations)"
            )
            entity = ""
        bridge_url = w.get("bridge_url")
        host = re.match(r"https://([^/:?#@]+)(:\d+)?(/[^?#]*)?$", str(bridge_url))
        if not isinstance(bridge_url, str) or host is None:
            self.problems.append(
                "wandb.bridge_url: must be the https:// URL W&B reaches this bridge at, such as "
                "https://bridge.acme.dev"
            )
            bridge_url = ""
        elif host.group(1).lower() == "localhost" or _is_ip(host.group(1)):
            self.problems.append(
                "wandb.bridge_url: W&B refuses webhook URLs on localhost or an IP address; give "
                "the bridge's DNS name"
            )
        integration = w.get("integration", WandbConfig.integration)
        if (
            not isinstance(integration, str)
            or not re.fullmatch(r"[-\w]+( +[-\w]+)*", integration[:65])
            or len(integration) > 64
        ):
            self.problems.append(
                "wandb.integration: a W&B webhook name is 1-64 letters, digits, _ and -, in "
                "words separated by spaces"
            )
            integration = WandbConfig.integration
        names: dict[str, str | None] = {}
        for k in ("secret_name", "access_token_name"):
            value = w.get(k)
            if value is not None and (
                not isinstance(value, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value)
            ):
                self.problems.append(
                    f"wandb.{k}: a W&B team secret's name is letters, digits and _, such as "
                    "BRIDGE_WEBHOOK_SECRET"
                )
                value = None
            names[k] = value
        source = w.get("source")
        if source is None:
            source = "wandb" if "wandb" in sources or len(sources) != 1 else next(iter(sources))
        if source not in sources:
            self.problems.append(
                f"wandb.source: names no source under sources ({source!r}); name the source "
                "W&B's webhook posts to (its URL ends in /webhooks/<source>)"
            )
        else:
            spec = sources[source]
            checks = (
                ("secret_name", spec.secrets, "checks X-Wandb-Signature, so W&B must sign"),
                ("access_token_name", spec.tokens, "checks the access token, so W&B must send"),
            )
            for k, held, what in checks:
                if held and names[k] is None:
                    example = (
                        "BRIDGE_WEBHOOK_SECRET" if k == "secret_name" else "BRIDGE_ACCESS_TOKEN"
                    )
                    self.problems.append(
                        f"wandb.{k}: is required: source {source!r} {what} one; name the W&B "
                        f"team secret that holds it (e.g. {example})"
                    )
        catch_up = self._catch_up(w.get("catch_up"))
        key = None
        if catch_up is not None or self.write_backs:  # the running bridge talks to W&B
            raw_key = api_key[1] if api_key[0] == "inline" else {api_key[0]: api_key[1]}
            problems: list[str] = []
            key = resolve_secret(raw_key, "wandb.api_key", self.env, problems, [])
            self.problems += [
                f"{p} (catch_up and write_back need the key when the bridge starts)"
                for p in problems
            ]
        return WandbConfig(
            entity=entity,
            bridge_url=str(bridge_url).rstrip("/"),
            source=str(source),
            api_key=api_key,
            base_url=base_url.rstrip("/"),
            integration=integration,
            secret_name=names["secret_name"],
            access_token_name=names["access_token_name"],
            catch_up=catch_up,
            key=key,
        )

    def _catch_up(self, raw: Any) -> CatchUp | None:
        if raw is None:
            return None
        spec = self._mapping(raw, "wandb.catch_up")
        self._unknown(spec, {"every", "max_requests_per_hour"}, "wandb.catch_up")
        every = self._duration(spec.get("every"), "wandb.catch_up.every", CatchUp.every)
        if every < MIN_CATCH_UP:
            self.problems.append(
                f"wandb.catch_up.every: at least {MIN_CATCH_UP:g}s (each pass reads every "
                "collection the managed automations watch)"
            )
        budget = self._int(
            spec.get("max_requests_per_hour"),
            "wandb.catch_up.max_requests_per_hour",
            CatchUp.max_requests_per_hour,
            1,
        )
        return CatchUp(every, budget)


def write_back_name_problem(kind: str, name: str) -> str | None:
    """Why W&B would refuse ``name`` as an alias or a tag (a template is checked once
    rendered, by W&B)."""
    if "${" in name:
        return None
    if len(name) > MAX_WANDB_NAME:
        return f"is longer than W&B's {MAX_WANDB_NAME} characters"
    if kind == "tags" and not TAG_RE.match(name):
        return "is not a W&B tag (letters, digits, _ and -, words apart by spaces)"
    if kind == "aliases" and (not name.strip() or any(c in name for c in "/:")):
        return "is not a W&B alias (no '/' or ':', not blank)"
    return None


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True
