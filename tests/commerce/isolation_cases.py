"""Workspace-isolation cases of the commerce routes (run by tests/test_isolation.py)."""

from __future__ import annotations
