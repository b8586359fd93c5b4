"""What tests and benchmarks share: a bridge under gunicorn, fake servers, a PostgreSQL.

``bridge`` starts ``wandb-bridge serve`` and waits for it, ``processes`` the process
groups and health checks under it, ``loopback`` serves a fake or stand-in from a thread,
``pg`` a throwaway PostgreSQL, ``wait`` polls for a condition, ``fake_wandb`` is the
action's W&B. Nothing here ships in the wheel; `tests/` and `bench/` both import it,
neither imports the other."""
