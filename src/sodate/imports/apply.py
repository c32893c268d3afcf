"""Writing a chunk of valid rows: contacts as identify events, offline events as track events.

Both go through the event pipeline (`sodate.contacts.writes` and `sodate.pipeline`), so an
imported row resolves identities, merges and updates profiles exactly as the tracking API
would, and later stages (scores, segments, journeys) see it. An import writes each chunk with
`apply_chunk`: in one savepoint, else row by row, so that only the rows that fail are reported.
"""

from __future__ import annotations

import hashlib
import json
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy.orm import Session

from sodate.contacts import writes
from sodate.events import service as event_log
from sodate.events.pipeline import BatchEvent, EventBatch
from sodate.events.schemas import MessageType
from sodate.imports.models import Import, ImportKind
from sodate.imports.rows import ParsedRow, RowError
from sodate.pipeline import process_batch

log = structlog.get_logger(__name__)

MESSAGE_ID_PREFIX = "import-"


@dataclass
class Applied:
    created: int = 0
    updated: int = 0
    skipped: int = 0


def apply_contacts(
    session: Session,
    workspace_id: str,
    rows: Sequence[ParsedRow],
    *,
    now: datetime,
    source: str,
    context: dict[str, Any],
) -> Applied:
    """Create or update the rows' contacts, and the companies they name."""
    names = {
        row.contact.company_key: {"name": row.company_name}
        for row in rows
        if row.company_name and row.contact.company_key
    }
    results = writes.upsert_contacts(
        session,
        workspace_id,
        [row.contact for row in rows],
        now=now,
        source=source,
        context=context,
        company_traits=names,
        prepared=[row.prepared for row in rows],
    )
    return _count(results)


def _count(results: Sequence[writes.Upserted]) -> Applied:
    # Two rows of one new person both report `created`: only the first created the contact.
    applied = Applied()
    counted: set[int] = set()
    for result in results:
        if result.created and result.contact_id not in counted:
            applied.created += 1
            counted.add(result.contact_id)
        else:
            applied.updated += 1
    return applied


def apply_events(
    session: Session,
    workspace_id: str,
    rows: Sequence[ParsedRow],
    *,
    now: datetime,
    source: str,
    context: dict[str, Any],
) -> Applied:
    """Record each row's event on its contact (created if new), once per message id.

    A row whose message id is already stored (an earlier import of the same data under the
    same source) is skipped before anything is written, so a re-import changes nothing.
    """
    fresh: dict[str, ParsedRow] = {}
    ids = [message_id(source, row) for row in rows]
    stored = event_log.stored_message_ids(session, workspace_id, ids)
    for row, row_id in zip(rows, ids, strict=True):
        if row_id not in stored and row_id not in fresh:
            fresh[row_id] = row
    applied = Applied(skipped=len(rows) - len(fresh))
    if not fresh:
        return applied
    found = writes.upsert_contacts(
        session,
        workspace_id,
        [row.contact for row in fresh.values()],
        now=now,
        source=source,
        context=context,
        prepared=[row.prepared for row in fresh.values()],
    )
    events = [
        BatchEvent(
            message_id=row_id,
            type=MessageType.TRACK,
            name=row.event,
            user_id=None,
            anonymous_id=None,
            properties=row.properties,
            traits={},
            context={**context, "source": source, "line": row.line},
            timestamp=row.timestamp or now,
            received_at=now,
            activity=True,
            contact_id=result.contact_id,
        )
        for (row_id, row), result in zip(fresh.items(), found, strict=True)
    ]
    process_batch(
        session, EventBatch(workspace_id=workspace_id, events=events, now=now, source=source)
    )
    applied.created = len(events)
    return applied


def message_id(source: str, row: ParsedRow) -> str:
    """The same for the same data under the same source, whatever the file's encoding or order.

    Rows identical in every mapped value are one event; a column such as an order id or a
    time tells repeated purchases apart.
    """
    contact = row.contact
    content = [
        source,
        row.event,
        row.timestamp.isoformat() if row.timestamp else None,
        contact.email,
        contact.phone,
        contact.user_id,
        sorted(contact.external_ids.items()),
        sorted(row.properties.items()),
    ]
    digest = hashlib.sha256(json.dumps(content, ensure_ascii=False).encode()).hexdigest()
    return MESSAGE_ID_PREFIX + digest[:40]


def apply_chunk(
    session: Session, record: Import, rows: list[ParsedRow], *, now: datetime
) -> tuple[Applied, list[RowError]]:
    """Write the chunk; if that fails, write its rows one by one and report those that fail.

    When every row of the chunk fails on its own too, the fault is not in the rows (the
    database, a bug): the error propagates and the chunk is retried later, not rejected.
    """
    writer = apply_contacts if record.kind == ImportKind.CONTACTS else apply_events
    context: dict[str, Any] = {"importId": record.id}

    def write(chunk: list[ParsedRow]) -> Applied:
        return writer(
            session, record.workspace_id, chunk, now=now, source=record.source, context=context
        )

    try:
        with session.begin_nested():
            return write(rows), []
    except Exception:
        log.exception("an import chunk failed; retrying its rows one by one", import_id=record.id)
    total = Applied()
    failed: list[RowError] = []
    for index, row in enumerate(rows):
        try:
            with session.begin_nested():
                one = write([row])
        except Exception as exc:
            if len(failed) == index and index == len(rows) - 1 and index > 0:
                raise
            reason = f"could not be stored: {str(exc).strip().splitlines()[0][:250]}"
            failed.append(RowError(row.line, None, None, reason))
            _let_go(exc)
            continue
        total.created += one.created
        total.updated += one.updated
        total.skipped += one.skipped
    return total, failed


def _let_go(error: BaseException) -> None:
    """Clear the frames of a caught error and of the errors it chains: they refer to the error,
    in cycles (some fifty objects a failed row) that reference counting cannot free. A local
    import writes its chunk with the collector paused (`runtime.collection_deferred`), and a
    transaction's chunks retried row by row would hold them all until it ends."""
    seen: BaseException | None = error
    while seen is not None:
        traceback.clear_frames(seen.__traceback__)
        seen = seen.__cause__ or seen.__context__
