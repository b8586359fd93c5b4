"""The OpenAPI 3.1 document of the bridge's HTTP interface, served at ``/openapi.json``.

The document is ``openapi.yaml`` beside this module, shipped as package data; it is read
on the first request for it, and only the bridge's version is added here. A test
compares its paths and methods with the app's routes, and CI runs schemathesis against
a live bridge with it, so the document cannot drift from the code.
"""

from __future__ import annotations

import functools
from importlib import resources
from typing import Any

import yaml

from bridge.version import __version__

DOCUMENT = "openapi.yaml"


@functools.cache
def document() -> dict[str, Any]:
    """The document, read once per process; callers read it and never change it."""
    text = resources.files("bridge.ops").joinpath(DOCUMENT).read_text(encoding="utf-8")
    doc: dict[str, Any] = yaml.safe_load(text)
    doc["info"]["version"] = __version__
    return doc
