"""Workspace-isolation cases of the contacts routes (run by tests/test_isolation.py)."""

from __future__ import annotations
