"""Pieces every part of the command line shares: ``--config`` on each subcommand.

``bridge.cli`` builds the parser and ``bridge.wandb.cli`` adds the ``wandb`` commands to
it; both take these from here, so neither imports the other's module to get them.
"""

from __future__ import annotations

import argparse

CONFIG_HELP = "config file (default: $WANDB_BRIDGE_CONFIG, else ./wandb-bridge.yaml)"


def with_config(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """``parser`` with its own ``--config``; the default is SUPPRESS, so a ``--config``
    given earlier on the line (before the subcommand) is not reset by this one."""
    parser.add_argument("--config", default=argparse.SUPPRESS, help=CONFIG_HELP)
    return parser
