"""Parse the config's YAML, and say where it is broken without quoting it.

PyYAML's messages quote the text they stumbled on: an unquoted secret that starts with
``*`` is read as an alias and comes back as "found undefined alias 'the-secret'". So a
problem is reported as the key path, line and column, and a phrase chosen by the kind
of error, never PyYAML's own words.
"""

from __future__ import annotations

from typing import Any

import yaml

from bridge.errors import ConfigError

# By kind of error: what is usually wrong there, and the fix. Never the text itself.
_PROBLEMS = (
    (
        yaml.composer.ComposerError,
        "an alias or anchor that cannot be resolved (a value that starts with * or & "
        "must be quoted)",
    ),
    (
        yaml.scanner.ScannerError,
        "text YAML cannot read here (a tab for indentation, an unclosed quote, a ': ' inside "
        "a value, or a value that starts with @, ` or %; quote the value)",
    ),
    (
        yaml.parser.ParserError,
        "the structure does not parse (check the indentation, a missing ':' and unclosed brackets)",
    ),
    (
        yaml.constructor.ConstructorError,
        "a tag (!name) or a value YAML cannot build (a value that starts with ! must be quoted)",
    ),
)


def parse_yaml(text: str, path: str) -> Any:
    """The document in ``text`` (read from ``path``); ConfigError when it is not YAML."""
    try:
        return yaml.safe_load(text)
    except RecursionError:
        raise ConfigError([f"{path}: is not a config: its YAML nests too deeply"]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = ""
        if mark is not None:
            keys = key_path(text, mark.index)
            where = f" at line {mark.line + 1}, column {mark.column + 1}"
            where += f" (under {keys})" if keys else ""
        problem = next((p for kind, p in _PROBLEMS if isinstance(exc, kind)), "a syntax error")
        # from None: the chained exception's text would quote the line, secrets and all
        raise ConfigError([f"{path}: is not valid YAML{where}: {problem}"]) from None


class _Frame:
    """One open mapping or sequence while walking the events."""

    def __init__(self, is_map: bool) -> None:
        self.is_map = is_map
        self.key: str | None = None
        self.want_key = True
        self.index = -1


def key_path(text: str, index: int) -> str:
    """The key path (``github.app.private_key``, ``routes[2].when``) of the node that
    starts at character ``index`` of ``text``, from the parser's events up to there."""
    stack: list[_Frame] = []

    def begin() -> None:
        if stack and not stack[-1].is_map:
            stack[-1].index += 1

    def end(scalar: str | None) -> None:
        if stack and stack[-1].is_map:
            top = stack[-1]
            if top.want_key:
                top.key = scalar
            top.want_key = not top.want_key

    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if event.start_mark is not None and event.start_mark.index >= index:
                break
            if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                begin()
                stack.append(_Frame(isinstance(event, yaml.MappingStartEvent)))
            elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                stack.pop()
                end(None)
            elif isinstance(event, (yaml.ScalarEvent, yaml.AliasEvent)):
                begin()
                end(getattr(event, "value", None))
    except yaml.YAMLError:
        pass  # the error being reported: the path is what was read before it
    parts = []
    for frame in stack:
        if frame.is_map and not frame.want_key and frame.key is not None:
            parts.append("." + frame.key)
        elif not frame.is_map and frame.index >= 0:
            parts.append(f"[{frame.index}]")
    return "".join(parts).lstrip(".")
