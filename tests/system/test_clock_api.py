from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import sqlalchemy as sa
from fastapi.testclient import TestClient

from sodate.app import create_app
from sodate.queue import service as queue
from sodate.queue.handlers import ClaimedJob, JobContext, job_handler
from sodate.queue.models import Job, JobState
from sodate.runtime import Runtime
from tests.conftest import bearer, make_settings, new_workspace

fired: list[str] = []


@job_handler("test.clock-timer")
def _record_timer(_context: JobContext, jobs: Sequence[ClaimedJob]) -> None:
    fired.extend(job.idempotency_key for job in jobs)


def _schedule(runtime: Runtime, key: str, after: timedelta) -> None:
    with runtime.db.transaction() as session:
        queue.enqueue(
            session,
            [
                queue.NewJob(
                    kind="test.clock-timer", idempotency_key=key, due_at=runtime.clock.now() + after
                )
            ],
            now=runtime.clock.now(),
            max_attempts=3,
        )


def test_advance_fires_timers_that_fall_due(
    client: TestClient, runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    fired.clear()
    start = runtime.clock.now()
    _schedule(runtime, "in-2-days", timedelta(days=2))
    _schedule(runtime, "in-4-days", timedelta(days=4))

    response = client.post("/api/v1/clock/advance", json={"by": "3d"}, headers=admin_headers)

    assert response.status_code == 200, response.text
    assert response.json()["jobs_run"] == 1
    assert fired == ["in-2-days"]
    assert (
        client.get("/api/v1/clock", headers=admin_headers)
        .json()["now"]
        .startswith((start + timedelta(days=3)).date().isoformat())
    )
    with runtime.db.read() as session:
        states = dict(session.execute(sa.select(Job.idempotency_key, Job.state)).all())
    assert states == {"in-2-days": JobState.DONE.value, "in-4-days": JobState.SCHEDULED.value}


def test_advance_to_an_instant(
    client: TestClient, runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    response = client.post(
        "/api/v1/clock/advance", json={"to": "2026-05-01T09:00:00+09:00"}, headers=admin_headers
    )
    assert response.status_code == 200
    assert response.json()["now"].startswith("2026-05-01T00:00:00")
    backwards = client.post(
        "/api/v1/clock/advance", json={"to": "2026-04-01T00:00:00+00:00"}, headers=admin_headers
    )
    assert backwards.status_code == 422


def test_advance_needs_exactly_one_of_by_or_to(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    assert client.post("/api/v1/clock/advance", json={}, headers=admin_headers).status_code == 422
    bad = client.post("/api/v1/clock/advance", json={"by": "soon"}, headers=admin_headers)
    assert bad.status_code == 422
    assert "duration" in bad.json()["error"]["message"]


def test_advance_is_refused_on_the_system_clock(settings, tmp_path) -> None:
    system = Runtime.create(make_settings(settings.database_url, tmp_path, clock="system"))
    try:
        keys = new_workspace(system)
        with TestClient(create_app(system)) as client:
            response = client.post(
                "/api/v1/clock/advance", json={"by": "1d"}, headers=bearer(keys.admin_key.key)
            )
            assert response.status_code == 409
            assert "SODATE_CLOCK=manual" in response.json()["error"]["message"]
            assert (
                client.get("/api/v1/clock", headers=bearer(keys.admin_key.key)).json()["mode"]
                == "system"
            )
    finally:
        system.close()


def test_only_roles_with_the_permission_may_advance(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    created = client.post(
        "/api/v1/api-keys", json={"name": "m", "role": "marketer"}, headers=admin_headers
    ).json()
    response = client.post(
        "/api/v1/clock/advance", json={"by": "1d"}, headers=bearer(created["key"])
    )
    assert response.status_code == 403
