"""The event-processing pipeline: its steps in order, and what a merge moves. One place.

The event processor takes a workspace's oldest accepted messages as one batch and runs every
step over the batch in one transaction: a crash anywhere rolls the whole batch back, and it is
processed again from the start, so nothing counts twice. The same transaction deletes the
messages from the inbox, except on SQLite, whose inbox is a file of its own
(`sodate.events.inbox`): there they are deleted once the transaction has committed, and a
crash before that leaves them to be read again and dropped as already stored.
Only one processor works on a workspace at a time (SQLite has
one writer; PostgreSQL takes a transaction-scoped advisory lock), so each contact's events are
applied in the order they were accepted.

Later capabilities add their steps to `STEPS` (scores, segments, stages, journey triggers), and the
tables they keep per contact to `MERGE_STEPS`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import closing, nullcontext
from datetime import datetime
from typing import NamedTuple

import orjson
from sqlalchemy.orm import Session

from sodate.commerce import pipeline as commerce
from sodate.conditions import filtered
from sodate.consents import service as consents
from sodate.contacts import service as contacts
from sodate.contacts.resolution import PlannedMerge
from sodate.db.locks import lock_workspace
from sodate.events import pipeline as events
from sodate.events import service as event_log
from sodate.handoff import opening as handoff
from sodate.lifecycle import realtime as lifecycle
from sodate.runtime import Runtime, collection_deferred
from sodate.scoring import realtime as scoring
from sodate.segments import realtime as segments
from sodate.segments.models import ChangeCause

PipelineStep = Callable[[Session, events.EventBatch], None]
MergeStep = Callable[[Session, str, Sequence[PlannedMerge], datetime], None]

MERGE_STEPS: tuple[MergeStep, ...] = (
    event_log.move_history,
    filtered.move_filtered_times,
    commerce.move_orders,
    scoring.move_scores,
    lifecycle.move_stages,
    handoff.move_handoffs,
    consents.move_consents,
    segments.move_memberships,
)


def _move_merged_history(session: Session, batch: events.EventBatch) -> None:
    if batch.merges:
        for step in MERGE_STEPS:
            step(session, batch.workspace_id, batch.merges, batch.now)


STEPS: tuple[PipelineStep, ...] = (
    events.resolve_contacts,
    _move_merged_history,
    events.store_events,
    events.update_profiles,
    events.count_events,
    segments.keep_filtered_times,
    commerce.apply_commerce,
    scoring.update_scores,
    segments.update_memberships,
    lifecycle.update_stages,
    segments.update_stage_readers,
)


def process_batch(session: Session, batch: events.EventBatch) -> None:
    """Run every step over the batch, holding the workspace's processing lock.

    API upserts and imports call this directly, so they queue behind the event processor
    (and it behind them) instead of resolving the same people concurrently.
    """
    lock_workspace(session, batch.workspace_id, wait=True)
    for step in STEPS:
        step(session, batch)


def merge_contacts(
    session: Session,
    workspace_id: str,
    survivor_id: int,
    merged_id: int,
    *,
    reason: str,
    now: datetime,
) -> None:
    """An explicit merge (API): the contact rows, every capability's history, then the survivor's
    stage."""
    lock_workspace(session, workspace_id, wait=True)
    record = contacts.merge_contact_rows(
        session, workspace_id, survivor_id, merged_id, reason=reason, now=now
    )
    merge = PlannedMerge(survivor=record.survivor_id, merged=record.merged_id, reason=reason)
    for step in MERGE_STEPS:
        step(session, workspace_id, [merge], now)
    # The two histories together may meet a stage rule or the MQL threshold that neither met
    # alone: the survivor is checked as the event pipeline checks its merges' survivors, then
    # the segments that read stages (the merge steps re-checked the others).
    batch = events.EventBatch(workspace_id=workspace_id, events=[], now=now, merges=[merge])
    lifecycle.update_stages(session, batch)
    segments.refresh_stage_readers(
        session, workspace_id, batch.changed_stages, now=now, cause=ChangeCause.MERGE
    )


def process_pending(runtime: Runtime, *, batch_size: int) -> int:
    """Process one batch of the workspace whose messages waited longest; return its size."""
    skip: list[str] = []
    while True:
        with runtime.inbox.read() as inbox:
            workspace_id = event_log.oldest_pending_workspace(inbox, skip=skip)
        if workspace_id is None:
            return 0
        now = runtime.clock.now()
        with collection_deferred():
            processed = _process_workspace(runtime, workspace_id, batch_size, now)
        if processed is not None:
            return processed
        skip.append(workspace_id)


def _process_workspace(
    runtime: Runtime, workspace_id: str, batch_size: int, now: datetime
) -> int | None:
    """Process the workspace's oldest messages in one transaction; return how many were
    taken, or None if another worker holds the workspace."""
    # Where the inbox is the database's own table (PostgreSQL), the batch reads and deletes
    # its requests in its transaction; SQLite's inbox file has a writer of its own.
    apart = runtime.inbox is not runtime.db
    with runtime.db.transaction() as session:
        if not lock_workspace(session, workspace_id):
            return None
        with runtime.inbox.read() if apart else nullcontext(session) as inbox:
            taken = _take_events(session, inbox, workspace_id, batch_size)
        if not taken.request_ids:
            return 0
        batch = events.EventBatch(workspace_id=workspace_id, events=taken.events, now=now)
        if batch.events:
            process_batch(session, batch)
        if not apart:
            event_log.delete_inbox(session, taken.request_ids)
    if apart:
        # After the commit: should this fail, the requests are read again and their
        # messages dropped as stored (`_take_events`).
        with runtime.inbox.transaction() as inbox:
            event_log.delete_inbox(inbox, taken.request_ids)
    return taken.messages


class _Taken(NamedTuple):
    request_ids: list[int]
    messages: int
    events: list[events.BatchEvent]


SENDER_WEIGHT = 2
"""What each person a batch's messages come from counts for, in messages, against the batch's
size. A batch's memory grows by about 1.5 KB a message and 3.3 KB a person (their profile,
states and scores), and its time by about 25–40 µs a message and 50–100 µs a person, the more
when they are new (`BENCHMARKS.md`, "Batches measured by their senders"): a batch takes
requests until its messages and twice their senders reach three times `event_batch_size`. So
it holds `event_batch_size` messages when each is another person's, and more when people send
several."""
MESSAGES_PER_BATCH_SIZE = 2
"""A batch holds at most this many times `event_batch_size` messages, however few send them:
its transaction holds SQLite's writer, which the API's writes wait for."""


def _batch_full(messages: int, senders: int, batch_size: int) -> bool:
    return (
        messages >= MESSAGES_PER_BATCH_SIZE * batch_size
        or messages + SENDER_WEIGHT * senders >= (1 + SENDER_WEIGHT) * batch_size
    )


def _take_events(session: Session, inbox: Session, workspace_id: str, batch_size: int) -> _Taken:
    """The events of the workspace's oldest requests, as many as the batch takes
    (`SENDER_WEIGHT`, at least one request), of messages not processed before; a message id
    sent twice counts once.

    One request at a time is read, parsed and made into events, then let go: the steps read
    the events alone. The whole batch's texts and parsed messages, held at once, set the
    process's peak memory (4.5 KB an event at a batch of 40,000, the events themselves under a
    third of it), which held the batch size down.
    """
    request_ids: list[int] = []
    messages = 0
    senders: set[str] = set()
    first: dict[str, events.BatchEvent] = {}
    most = MESSAGES_PER_BATCH_SIZE * batch_size
    with closing(event_log.take_inbox(inbox, workspace_id, limit=most)) as rows:
        for row in rows:
            if request_ids and _batch_full(messages, len(senders), batch_size):
                break
            request_ids.append(row.id)
            for document in orjson.loads(row.messages):
                messages += 1
                senders.add(document.get("userId") or document["anonymousId"])
                message_id = document["messageId"]
                if message_id not in first:
                    first[message_id] = events.BatchEvent.from_document(document)
    stored = event_log.stored_message_ids(session, workspace_id, list(first))
    return _Taken(
        request_ids=request_ids,
        messages=messages,
        events=[event for message_id, event in first.items() if message_id not in stored],
    )
