"""Configuration: the typed model, loading and validation, secret values."""
