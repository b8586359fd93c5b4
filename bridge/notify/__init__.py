"""Notifications: an outcome (a dead delivery, a run's conclusion, no run started)
announced to Slack, Microsoft Teams or a webhook, each as a durable delivery of its own."""
