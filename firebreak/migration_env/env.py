"""Alembic's entry point for every service: the work is in firebreak.migrations."""

from firebreak.migrations import run_environment

run_environment()
