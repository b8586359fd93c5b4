"""The packaged GitHub Action: fetch the W&B artifact a dispatch names, verified.

Run as ``python -m action`` by ``action.yml``; the entry point is :func:`action.main.main`.
Importing this package does no work.
"""
