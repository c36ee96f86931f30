"""Fixtures shared across test modules are registered here, so that session-scoped ones exist once."""

pytest_plugins = ["tests.e2e_projects"]
