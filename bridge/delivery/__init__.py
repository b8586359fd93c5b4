"""Delivery: the worker that sends stored dispatches to GitHub, retries and credentials."""
