"""Fixtures of the lifecycle tests."""

from __future__ import annotations

from tests.test_cli import run  # noqa: F401 - the fixture that runs the `sodate` CLI
