"""Shared pytest setup."""

from hypothesis import settings

# Property tests draw the same examples on every run, so a CI result never
# depends on luck; exploring new examples is a deliberate local act
# (e.g. `pytest --hypothesis-seed=<n>`).
settings.register_profile("fastface", derandomize=True)
settings.load_profile("fastface")

# `--strict-skips` (scripts/test.sh): a skip for a reason not allowed fails the run.
from skip_guard import pytest_addoption, pytest_configure  # noqa: E402, F401
