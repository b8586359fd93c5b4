"""What tests and benchmarks share: a bridge under gunicorn, fake servers, a PostgreSQL.

Nothing here ships in the wheel; `tests/` and `bench/` both import it, neither imports
the other."""
