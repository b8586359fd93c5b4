"""The W&B side of the bridge's config: ``wandb-bridge wandb list|plan|apply|delete|render``.

The bridge's routes are the single source of truth. From them this package computes the
webhook integration and the automations W&B needs (``wanted``), compares them with what
W&B holds (``plan``), makes W&B match (``apply``), and shows what a payload template
would do (``render``). It speaks W&B's GraphQL API directly (``client``, ``api``): a
handful of operations, not the ``wandb`` SDK.
"""
