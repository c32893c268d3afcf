"""Opening handoffs: new MQLs read from the stage changes, assigned an owner, jobs queued.

The opener reads the workspace's lifecycle changes on from where it stopped (they are facts
with ids), so every way a contact becomes MQL — an event, a model save, decay, a rules save, a
person — hands it off the same way, exactly once (one handoff per change, by a unique key).
A contact that leaves MQL some other way while its handoff waits closes the handoff.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from sodate.conditions.sql import CONTACTS, matching_contacts
from sodate.contacts.resolution import PlannedMerge
from sodate.handoff.models import Handoff, HandoffRules, HandoffState, HandoffStep, StepKind
from sodate.handoff.schemas import HandoffRulesIn
from sodate.lifecycle import service as lifecycle
from sodate.lifecycle.models import Stage
from sodate.queue import service as queue
from sodate.workspaces import service as workspaces
from sodate.workspaces.roles import Permission, Role, has_permission

HANDOFFS: sa.Table = Handoff.__table__  # type: ignore[assignment]
STEPS: sa.Table = HandoffStep.__table__  # type: ignore[assignment]

NOTIFY_JOB = "handoff.notify"
SLA_JOB = "handoff.sla"
CRM_JOB = "handoff.crm"
JOB_ATTEMPTS = 10
SALES_POOL = "sales"
_READ_CHUNK = 1000


@dataclass(frozen=True)
class Pools:
    """Who can receive leads: each assignment rule's owners, and every sales user."""

    by_rule: dict[str, list[int]]
    sales: list[int]
    emails: dict[int, str]

    def members(self, pool: str) -> list[int]:
        return self.by_rule.get(pool) or self.sales


def owner_pools(session: Session, workspace_id: str, rules: HandoffRulesIn) -> Pools:
    """Active users who may work leads only, each pool in id order (the round-robin order):
    a rule's owner may have been made a viewer since the rules were saved."""
    users = [
        user
        for user in workspaces.list_users(session, workspace_id)
        if user.is_active and can_own(user.role)
    ]
    by_email = {user.email.lower(): user for user in users}
    by_rule = {
        f"assign.{index}": sorted(
            by_email[email.lower()].id for email in rule.owners if email.lower() in by_email
        )
        for index, rule in enumerate(rules.assign)
    }
    sales = sorted(user.id for user in users if user.role == Role.SALES.value)
    return Pools(by_rule, sales, {user.id: user.email for user in users})


def can_own(role: str) -> bool:
    return has_permission(Role(role), Permission.SALES_WORK)


def next_in_turn(members: Sequence[int], last: int | None) -> int | None:
    if not members:
        return None
    after = [member for member in members if last is not None and member > last]
    return after[0] if after else members[0]


def open_handoffs(session: Session, workspace_id: str, *, now: datetime) -> int:
    """Hand off the contacts that became MQL since the last call; return how many."""
    row = session.get(HandoffRules, workspace_id)
    if row is None:
        return 0
    rules = HandoffRulesIn.model_validate(row.definition)
    opened = 0
    while True:
        changes = lifecycle.changes_after(
            session, workspace_id, row.read_changes_to, limit=_READ_CHUNK
        )
        if not changes:
            return opened
        contacts = {change.contact_id for change in changes}
        waiting = _pending(session, workspace_id, contacts)
        new: dict[int, int] = {}  # contact → the change that made it MQL
        closing: set[int] = set()
        for change in changes:
            contact = change.contact_id
            if change.to_stage is Stage.MQL and contact not in waiting and contact not in new:
                new[contact] = change.id
            elif change.from_stage is Stage.MQL and change.to_stage is not Stage.MQL:
                if contact in new:
                    del new[contact]
                elif contact in waiting:
                    closing.add(waiting.pop(contact))
        _close(session, closing, now=now)
        opened += _open(session, workspace_id, row, rules, new, now=now)
        row.read_changes_to = changes[-1].id
        session.flush()


def move_handoffs(
    session: Session, workspace_id: str, merges: Sequence[PlannedMerge], now: datetime
) -> None:
    """A merged contact's handoffs pass to the survivor, the person they are about. One that
    waits closes if the survivor has its own waiting, or is no longer an MQL (it kept a
    further stage): nobody should decide a lead twice, or one that has moved on."""
    for merge in merges:
        waiting = _pending(session, workspace_id, {merge.survivor, merge.merged})
        moved = waiting.get(merge.merged)
        stages = lifecycle.stages_of(session, workspace_id, [merge.survivor])
        if moved is not None and (
            merge.survivor in waiting or stages.get(merge.survivor) != Stage.MQL.value
        ):
            _close(session, {moved}, now=now)
        session.execute(
            sa.update(HANDOFFS)
            .where(HANDOFFS.c.workspace_id == workspace_id, HANDOFFS.c.contact_id == merge.merged)
            .values(contact_id=merge.survivor)
        )


def _pending(session: Session, workspace_id: str, contacts: set[int]) -> dict[int, int]:
    rows = session.execute(
        sa.select(HANDOFFS.c.contact_id, HANDOFFS.c.id).where(
            HANDOFFS.c.workspace_id == workspace_id,
            HANDOFFS.c.contact_id.in_(sorted(contacts)),
            HANDOFFS.c.state == HandoffState.PENDING.value,
        )
    )
    return {contact: handoff for contact, handoff in rows}


def _close(session: Session, handoffs: set[int], *, now: datetime) -> None:
    if not handoffs:
        return
    session.execute(
        sa.update(HANDOFFS)
        .where(HANDOFFS.c.id.in_(sorted(handoffs)))
        .values(state=HandoffState.CLOSED.value, due_at=None, decided_at=now)
    )
    session.execute(
        sa.insert(STEPS),
        [
            {"handoff_id": handoff, "kind": StepKind.CLOSED.value, "at": now}
            for handoff in sorted(handoffs)
        ],
    )


def _open(
    session: Session,
    workspace_id: str,
    row: HandoffRules,
    rules: HandoffRulesIn,
    new: dict[int, int],
    *,
    now: datetime,
) -> int:
    if not new:
        return 0
    pool_of = _pool_of_each(session, workspace_id, rules, set(new), now=now)
    pools = owner_pools(session, workspace_id, rules)
    last_owners = dict(row.last_owners)
    due = now + timedelta(hours=rules.sla_hours)
    rows: list[dict[str, Any]] = []
    for contact, change_id in sorted(new.items(), key=lambda item: item[1]):
        pool = pool_of.get(contact, SALES_POOL)
        key = pool if pools.by_rule.get(pool) else SALES_POOL
        owner = next_in_turn(pools.members(pool), last_owners.get(key))
        if owner is not None:
            last_owners[key] = owner
        rows.append(
            {
                "workspace_id": workspace_id,
                "contact_id": contact,
                "mql_change_id": change_id,
                "state": HandoffState.PENDING.value,
                "owner_user_id": owner,
                "assigned_by": key,
                "opened_at": now,
                "due_at": due,
                "escalations": 0,
                "engagement_reset": False,
            }
        )
    ids = session.execute(
        sa.insert(HANDOFFS).returning(HANDOFFS.c.id, sort_by_parameter_order=True), rows
    ).scalars()
    opened = list(zip(ids, (r["owner_user_id"] for r in rows), strict=True))
    session.execute(
        sa.insert(STEPS),
        [
            {
                "handoff_id": handoff,
                "kind": StepKind.OPENED.value,
                "owner_user_id": owner,
                "at": now,
            }
            for handoff, owner in opened
        ],
    )
    jobs: list[queue.NewJob] = []
    for handoff, owner in opened:
        if owner is not None:
            jobs += notify_jobs(workspace_id, rules, handoff, [owner], "assigned", now=now)
        jobs.append(sla_job(workspace_id, handoff, 0, due))
        if rules.crm_webhook is not None:
            jobs.append(crm_job(workspace_id, handoff, "lead.handed_off", now=now))
    row.last_owners = last_owners
    queue.enqueue(session, jobs, now=now, max_attempts=JOB_ATTEMPTS)
    return len(new)


def _pool_of_each(
    session: Session,
    workspace_id: str,
    rules: HandoffRulesIn,
    contacts: set[int],
    *,
    now: datetime,
) -> dict[int, str]:
    """The first assignment rule each contact satisfies (set-based, one query per rule)."""
    dialect = session.get_bind().dialect.name
    zone: ZoneInfo = workspaces.workspace_zone(session, workspace_id)
    left, found = set(contacts), {}
    for index, rule in enumerate(rules.assign):
        if not left:
            break
        query = matching_contacts(
            rule.when, dialect=dialect, workspace_id=workspace_id, now=now, zone=zone
        )
        ids = sorted(left)
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            for contact in session.scalars(query.where(CONTACTS.c.id.in_(chunk))):
                found[contact] = f"assign.{index}"
        left -= set(found)
    return found


def notify_jobs(
    workspace_id: str,
    rules: HandoffRulesIn,
    handoff_id: int,
    users: Sequence[int],
    purpose: str,
    *,
    now: datetime,
    round_: int = 0,
) -> list[queue.NewJob]:
    """One job per user and channel: an email each, and one Slack post for them all."""
    jobs = []
    if rules.notify.email:
        jobs += [
            queue.NewJob(
                kind=NOTIFY_JOB,
                idempotency_key=f"handoff:{handoff_id}:{purpose}:{round_}:email:{user}",
                due_at=now,
                payload={
                    "handoff_id": handoff_id,
                    "purpose": purpose,
                    "round": round_,
                    "channel": "email",
                    "user_id": user,
                },
                workspace_id=workspace_id,
            )
            for user in users
        ]
    if rules.notify.slack_webhook is not None:
        jobs.append(
            queue.NewJob(
                kind=NOTIFY_JOB,
                idempotency_key=f"handoff:{handoff_id}:{purpose}:{round_}:slack",
                due_at=now,
                payload={
                    "handoff_id": handoff_id,
                    "purpose": purpose,
                    "round": round_,
                    "channel": "slack",
                    "user_ids": list(users),
                },
                workspace_id=workspace_id,
            )
        )
    return jobs


def sla_job(workspace_id: str, handoff_id: int, escalations: int, due: datetime) -> queue.NewJob:
    """The SLA timer: a job due at the deadline; it acts only if the handoff still waits."""
    return queue.NewJob(
        kind=SLA_JOB,
        idempotency_key=f"handoff:{handoff_id}:sla:{escalations}",
        due_at=due,
        payload={"handoff_id": handoff_id, "escalations": escalations},
        workspace_id=workspace_id,
    )


def crm_job(workspace_id: str, handoff_id: int, event: str, *, now: datetime) -> queue.NewJob:
    return queue.NewJob(
        kind=CRM_JOB,
        idempotency_key=f"handoff:{handoff_id}:crm:{event}",
        due_at=now,
        payload={"handoff_id": handoff_id, "event": event},
        workspace_id=workspace_id,
    )
