"""Settings for every test: hypothesis runs without its per-example deadline, because
the suite's machines are shared and noisy and a timed assertion there fails at random."""

from hypothesis import settings

settings.register_profile("bridge", deadline=None)
settings.load_profile("bridge")
