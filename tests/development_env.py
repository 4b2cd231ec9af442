"""Loaded first (`-p tests.development_env` in pyproject's addopts), before pytest-django imports
the settings: the tests are a development environment, so DEBUG is on unless the caller says
otherwise (settings default to off, for production's sake). Processes the tests start (workers,
the sandbox) inherit it; those that test production set DEBUG=false themselves."""

import os

os.environ.setdefault("DEBUG", "true")
