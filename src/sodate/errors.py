"""Domain errors. Services raise them; the HTTP app and the CLI translate them in one place."""

from __future__ import annotations

from typing import Any


class SodateError(Exception):
    status_code = 400
    code = "bad_request"
    retry_after_seconds: int | None = None
    """Sent as `Retry-After` where the request may succeed later as it is."""

    def __init__(self, message: str, *, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []


class InvalidInput(SodateError):
    status_code = 422
    code = "invalid_input"


class NotFound(SodateError):
    status_code = 404
    code = "not_found"


class Conflict(SodateError):
    status_code = 409
    code = "conflict"


class UnsupportedMediaType(SodateError):
    status_code = 415
    code = "unsupported_media_type"


class Unauthorized(SodateError):
    status_code = 401
    code = "unauthorized"


class Forbidden(SodateError):
    status_code = 403
    code = "forbidden"
