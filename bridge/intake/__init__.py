"""Intake: the webhook endpoints, the checks a request passes, and its durable accept."""
