"""HTTP routes of imports and exports. Handlers only delegate."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1")
