"""Times in query parameters (`workspace_instant`): every route that reads one refuses a time
too near either end of the calendar with a 422 naming the parameter, never a 500."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.workspaces.helpers import error_of

PARAMETERS = [
    ("/api/v1/reports/leads", "since"),
    ("/api/v1/reports/leads", "until"),
    ("/api/v1/orders", "placed_after"),
    ("/api/v1/orders", "placed_before"),
    ("/api/v1/carts", "idle_since"),
]
OFF_THE_CALENDAR = [
    "0001-01-01",  # midnight in Tokyo is in the year 0 in UTC: an overflow, and a 500
    "0001-01-01T00:00:00Z",  # a report's default start, 30 days before it, was too
    "0999-12-31T23:59:59+09:00",
    "9999-12-31T23:00:00-05:00",  # the year 10000 in UTC
    "9001-01-01",
]


@pytest.mark.parametrize(("path", "parameter"), PARAMETERS)
def test_a_time_near_the_ends_of_the_calendar_is_refused_naming_its_parameter(
    client: TestClient, admin_headers: dict[str, str], path: str, parameter: str
) -> None:
    for text in OFF_THE_CALENDAR:
        response = client.get(path, params={parameter: text}, headers=admin_headers)
        assert response.status_code == 422, (text, response.text)
        error = error_of(response)
        assert error["details"] == [
            {"loc": ["query", parameter], "msg": "a year from 1000 to 9000", "type": "time"}
        ]
        assert error["message"].startswith(f"{parameter}: "), error
    for text in ("1000-01-01", "1000-01-01T00:00:00+14:00", "9000-12-31T23:59:59-12:00"):
        response = client.get(path, params={parameter: text}, headers=admin_headers)
        assert response.status_code == 200, (text, response.text)
