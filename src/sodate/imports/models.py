"""Tables of import jobs and their per-row reports."""

from __future__ import annotations
