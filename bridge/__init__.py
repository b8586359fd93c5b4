"""wandb-github-bridge: W&B registry webhooks in, GitHub repository dispatches out.

``flask --app bridge run`` finds :func:`create_app` here; it reads the config named by
``$WANDB_BRIDGE_CONFIG``. Importing this package does no work.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bridge.version import __version__ as __version__

if TYPE_CHECKING:
    from flask import Flask


def create_app(*args: Any, **kwargs: Any) -> Flask:
    """See :func:`bridge.app.create_app`."""
    from bridge.app import create_app as factory

    return factory(*args, **kwargs)
