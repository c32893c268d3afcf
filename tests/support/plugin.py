"""Test job handlers, loaded by `sodate worker` processes through SODATE_PLUGINS.

Each execution of a job is recorded as a row of `test_job_effects`, written with the job's own
session, so an effect commits if and only if the runner marks the job done in the same
transaction. The table is not part of Sodate's schema: tests create and drop it with
`create_effects_table` / `drop_effects_table`.

Payload keys understood by the handlers:
- `sleep`: seconds to sleep after recording each job's effect (a slow handler); before it
  sleeps, the handler creates the file `started-<idempotency key>` in the worker's working
  directory, so a test can wait until the job is really running;
- `fail`: raise instead of finishing, which rolls the whole batch back.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa

from sodate.db.engine import Database
from sodate.queue.handlers import ClaimedJob, JobContext, job_handler

EFFECTS_TABLE = "test_job_effects"
EFFECT_KIND = "test.effect"
# Sorts after EFFECT_KIND, so in a batch holding both kinds its group runs second.
LATER_EFFECT_KIND = "test.effect.later"


class HandlerFailed(RuntimeError):
    """Raised by a handler whose job asks for it (`{"fail": true}`)."""


def create_effects_table(db: Database) -> None:
    with db.transaction() as session:
        session.execute(sa.text(f"DROP TABLE IF EXISTS {EFFECTS_TABLE}"))
        session.execute(
            sa.text(
                f"CREATE TABLE {EFFECTS_TABLE} ("
                "job_id BIGINT NOT NULL, pid INTEGER NOT NULL, attempt INTEGER NOT NULL)"
            )
        )


def drop_effects_table(db: Database) -> None:
    with db.transaction() as session:
        session.execute(sa.text(f"DROP TABLE IF EXISTS {EFFECTS_TABLE}"))


def read_effects(db: Database) -> list[tuple[int, int, int]]:
    """Every recorded execution as (job_id, pid, attempt), read without waiting for writers."""
    with db.read() as session:
        rows = session.execute(
            sa.text(f"SELECT job_id, pid, attempt FROM {EFFECTS_TABLE} ORDER BY job_id")
        ).all()
    return [(int(job_id), int(pid), int(attempt)) for job_id, pid, attempt in rows]


_INSERT_EFFECT = sa.text(
    f"INSERT INTO {EFFECTS_TABLE} (job_id, pid, attempt) VALUES (:job_id, :pid, :attempt)"
)


@job_handler(LATER_EFFECT_KIND)
@job_handler(EFFECT_KIND)
def record_effects(ctx: JobContext, jobs: Sequence[ClaimedJob]) -> None:
    pid = os.getpid()
    for job in jobs:
        if job.payload.get("fail"):
            raise HandlerFailed(f"job {job.idempotency_key} was told to fail")
        ctx.session.execute(_INSERT_EFFECT, {"job_id": job.id, "pid": pid, "attempt": job.attempts})
        pause = float(job.payload.get("sleep", 0))
        if pause:
            started_marker(Path.cwd(), job.idempotency_key).touch()
            time.sleep(pause)


def started_marker(directory: Path, idempotency_key: str) -> Path:
    return directory / f"started-{idempotency_key}"
