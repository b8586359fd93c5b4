"""Routing: which routes an event matches, the dispatches they render, GitHub's limits."""
