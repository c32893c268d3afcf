"""Handoff operations. Functions take the session, flush and never commit."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from sodate.contacts import service as contacts
from sodate.db.locks import lock_workspace
from sodate.db.paging import fetch_page
from sodate.errors import Conflict, Forbidden, InvalidInput, NotFound
from sodate.handoff import opening
from sodate.handoff import rules as handoff_rules
from sodate.handoff.models import Handoff, HandoffState, HandoffStep, StepKind
from sodate.handoff.schemas import (
    HandoffOut,
    HandoffPage,
    LeadKpis,
    StepOut,
)
from sodate.lifecycle import service as lifecycle
from sodate.lifecycle.models import ChangeSource, Stage
from sodate.lifecycle.progress import Actor
from sodate.queue import service as queue
from sodate.scoring import service as scoring
from sodate.workspaces import service as workspaces
from sodate.workspaces.auth import Principal
from sodate.workspaces.roles import Role

HANDOFFS = opening.HANDOFFS
REPORT_DAYS = timedelta(days=30)
"""The lead report's period when it is given no start."""
STEPS = opening.STEPS


@dataclass(frozen=True)
class Decider:
    """Who accepts or rejects: a signed-in user (with its role) or an API key."""

    user_id: int | None
    api_key_id: int | None
    role: Role

    @classmethod
    def of(cls, principal: Principal) -> Decider:
        return cls(principal.user_id, principal.api_key_id, principal.role)

    def actor(self, reason: str) -> Actor:
        source = ChangeSource.USER if self.api_key_id is None else ChangeSource.API
        return Actor(source, user_id=self.user_id, api_key_id=self.api_key_id, reason=reason)


def list_handoffs(
    session: Session,
    workspace_id: str,
    *,
    state: HandoffState | None,
    owner_user_id: int | None,
    limit: int,
    after: int | None,
) -> HandoffPage:
    """Handoffs oldest first, optionally of one state or one owner."""
    statement = sa.select(Handoff).where(Handoff.workspace_id == workspace_id)
    if state is not None:
        statement = statement.where(Handoff.state == state.value)
    if owner_user_id is not None:
        statement = statement.where(Handoff.owner_user_id == owner_user_id)
    if after is not None:
        statement = statement.where(Handoff.id > after)
    page, cursor = fetch_page(session, statement.order_by(Handoff.id), limit=limit)
    return HandoffPage(items=_out(session, workspace_id, page), next_cursor=cursor)


def get_handoff(session: Session, workspace_id: str, handoff_id: int) -> HandoffOut:
    return _out(session, workspace_id, [_get(session, workspace_id, handoff_id)])[0]


def accept(
    session: Session, workspace_id: str, handoff_id: int, *, by: Decider, now: datetime
) -> HandoffOut:
    """The owner takes the lead: the contact becomes SQL."""
    handoff = _decide(session, workspace_id, handoff_id, HandoffState.ACCEPTED, by=by, now=now)
    lifecycle.set_stage(
        session,
        workspace_id,
        contacts.live_contact_id(session, workspace_id, handoff.contact_id),
        Stage.SQL,
        actor=by.actor("accepted by sales"),
        now=now,
    )
    _tell_crm(session, workspace_id, handoff.id, "lead.accepted", now=now)
    return get_handoff(session, workspace_id, handoff.id)


def reject(
    session: Session,
    workspace_id: str,
    handoff_id: int,
    *,
    reason: str,
    reset_engagement: bool,
    by: Decider,
    now: datetime,
) -> HandoffOut:
    """The owner sends the lead back to nurturing (recycled: a lead again, in a new cycle),
    optionally with its engagement score set back to 0."""
    handoff = _decide(session, workspace_id, handoff_id, HandoffState.REJECTED, by=by, now=now)
    handoff.reason = reason
    contact_id = contacts.live_contact_id(session, workspace_id, handoff.contact_id)
    lifecycle.set_stage(
        session, workspace_id, contact_id, Stage.LEAD, actor=by.actor(reason), now=now
    )
    if reset_engagement:
        in_use = lifecycle.threshold_in_use(session, workspace_id)
        if in_use is not None:
            scoring.reset_engagement(session, workspace_id, in_use[0], contact_id, now=now)
            handoff.engagement_reset = True
    session.flush()
    _tell_crm(session, workspace_id, handoff.id, "lead.rejected", now=now)
    return get_handoff(session, workspace_id, handoff.id)


def check_stage_move(session: Session, workspace_id: str, contact_id: int, *, by: Decider) -> None:
    """A sales user moves a lead's stage by hand only if its handoff waits on them, or it has
    none waiting: leaving MQL closes the handoff, which would decide another owner's lead
    (`_decide`) and keep it from the accepted leads the KPIs count."""
    if not _decides_own_only(by):
        return
    owner = session.scalar(
        sa.select(Handoff.owner_user_id).where(
            Handoff.workspace_id == workspace_id,
            Handoff.contact_id == contact_id,
            Handoff.state == HandoffState.PENDING.value,
        )
    )
    if owner is not None and owner != by.user_id:
        raise Forbidden(_OWN_LEADS_ONLY)


def _decides_own_only(by: Decider) -> bool:
    return by.role is Role.SALES and by.user_id is not None


_OWN_LEADS_ONLY = "a sales user decides only the leads assigned to them"


def _decide(
    session: Session,
    workspace_id: str,
    handoff_id: int,
    state: HandoffState,
    *,
    by: Decider,
    now: datetime,
) -> Handoff:
    lock_workspace(session, workspace_id, wait=True)
    handoff = _get(session, workspace_id, handoff_id)
    if handoff.state != HandoffState.PENDING.value:
        raise Conflict(f"handoff {handoff_id} is already {handoff.state}")
    if _decides_own_only(by) and handoff.owner_user_id != by.user_id:
        raise Forbidden(_OWN_LEADS_ONLY)
    handoff.state, handoff.due_at, handoff.decided_at = state.value, None, now
    session.add(
        HandoffStep(
            handoff_id=handoff.id,
            kind=StepKind(state.value).value,
            owner_user_id=handoff.owner_user_id,
            by_user_id=by.user_id,
            by_api_key_id=by.api_key_id,
            at=now,
        )
    )
    session.flush()
    return handoff


def escalate(
    session: Session, workspace_id: str, handoff_id: int, escalations: int, *, now: datetime
) -> bool:
    """The SLA passed: tell the managers, pass the lead to the next owner of its pool if the
    rules say so, and start the clock again. False if the handoff no longer waits on it."""
    handoff = session.get(Handoff, handoff_id)
    rules = handoff_rules.saved_rules(session, workspace_id)
    if (
        handoff is None
        or handoff.workspace_id != workspace_id
        or rules is None
        or handoff.state != HandoffState.PENDING.value
        or handoff.escalations != escalations
    ):
        return False
    pools = opening.owner_pools(session, workspace_id, rules)
    escalate_to = {email.lower() for email in rules.escalate_to}
    managers = [
        user.id
        for user in workspaces.list_users(session, workspace_id)
        if user.is_active and user.email.lower() in escalate_to
    ]
    handoff.escalations += 1
    session.add(
        HandoffStep(
            handoff_id=handoff.id,
            kind=StepKind.ESCALATED.value,
            owner_user_id=handoff.owner_user_id,
            at=now,
        )
    )
    round_ = handoff.escalations
    jobs = opening.notify_jobs(
        workspace_id, rules, handoff.id, managers, "escalated", now=now, round_=round_
    )
    members = pools.members(handoff.assigned_by)
    if rules.reassign_on_escalation and len(members) > 1:
        handoff.owner_user_id = opening.next_in_turn(members, handoff.owner_user_id)
        session.add(
            HandoffStep(
                handoff_id=handoff.id,
                kind=StepKind.REASSIGNED.value,
                owner_user_id=handoff.owner_user_id,
                at=now,
            )
        )
        if handoff.owner_user_id is not None:
            jobs += opening.notify_jobs(
                workspace_id,
                rules,
                handoff.id,
                [handoff.owner_user_id],
                "assigned",
                now=now,
                round_=round_,
            )
    handoff.due_at = now + timedelta(hours=rules.sla_hours)
    jobs.append(opening.sla_job(workspace_id, handoff.id, handoff.escalations, handoff.due_at))
    queue.enqueue(session, jobs, now=now, max_attempts=opening.JOB_ATTEMPTS)
    session.flush()
    return True


def _tell_crm(
    session: Session, workspace_id: str, handoff_id: int, event: str, *, now: datetime
) -> None:
    rules = handoff_rules.saved_rules(session, workspace_id)
    if rules is not None and rules.crm_webhook is not None:
        job = opening.crm_job(workspace_id, handoff_id, event, now=now)
        queue.enqueue(session, [job], now=now, max_attempts=opening.JOB_ATTEMPTS)


def lead_report(
    session: Session,
    workspace_id: str,
    *,
    since: datetime | None,
    until: datetime | None,
    now: datetime,
) -> LeadKpis:
    """The lead KPIs of a period as the API is asked for them: times without an offset are
    the workspace's (`workspace_instant`); `since` defaults to 30 days before `until`, or
    before now."""
    end = (
        None
        if until is None
        else workspaces.workspace_instant(session, workspace_id, until, parameter="until")
    )
    start = (
        workspaces.workspace_instant(session, workspace_id, since, parameter="since")
        if since is not None
        else (end or now) - REPORT_DAYS
    )
    if end is not None and start > end:
        raise InvalidInput(
            "since is after until",
            details=[{"loc": ["query", "since"], "msg": "after until", "type": "period"}],
        )
    return lead_kpis(session, workspace_id, since=start, until=end)


def lead_kpis(
    session: Session, workspace_id: str, *, since: datetime, until: datetime | None
) -> LeadKpis:
    """MQLs, handoffs and their outcome, MQL→SQL conversion and lead time, for a period."""
    mql = lifecycle.count_changes_to(session, workspace_id, Stage.MQL, since=since, until=until)
    period = [Handoff.workspace_id == workspace_id, Handoff.opened_at >= since]
    if until is not None:
        period.append(Handoff.opened_at < until)
    columns = (Handoff.state, Handoff.opened_at, Handoff.decided_at, Handoff.escalations)
    handoffs = session.execute(sa.select(*columns).where(*period)).all()
    states = [row.state for row in handoffs]
    lead_times = [
        (row.decided_at - row.opened_at).total_seconds() / 3600
        for row in handoffs
        if row.state == HandoffState.ACCEPTED.value
    ]
    decided = [
        row
        for row in handoffs
        if row.state in (HandoffState.ACCEPTED.value, HandoffState.REJECTED.value)
    ]
    accepted = states.count(HandoffState.ACCEPTED.value)
    return LeadKpis(
        since=since,
        until=until,
        mql=mql,
        handed_off=len(handoffs),
        accepted=accepted,
        rejected=states.count(HandoffState.REJECTED.value),
        pending=states.count(HandoffState.PENDING.value),
        escalated=sum(1 for row in handoffs if row.escalations > 0),
        mql_to_sql_rate=round(accepted / len(handoffs), 4) if handoffs else None,
        lead_time_hours_median=round(statistics.median(lead_times), 2) if lead_times else None,
        lead_time_hours_mean=round(statistics.fmean(lead_times), 2) if lead_times else None,
        within_sla_rate=round(sum(1 for row in decided if row.escalations == 0) / len(decided), 4)
        if decided
        else None,
    )


def _get(session: Session, workspace_id: str, handoff_id: int) -> Handoff:
    handoff = session.get(Handoff, handoff_id)
    if handoff is None or handoff.workspace_id != workspace_id:
        raise NotFound(f"no handoff {handoff_id}")
    return handoff


def _out(session: Session, workspace_id: str, handoffs: list[Handoff]) -> list[HandoffOut]:
    """The handoffs with their steps (one query for them all, whether one or a page)."""
    emails = {user.id: user.email for user in workspaces.list_users(session, workspace_id)}
    found: dict[int, list[StepOut]] = {handoff.id: [] for handoff in handoffs}
    if handoffs:
        rows = session.scalars(
            sa.select(HandoffStep)
            .where(HandoffStep.handoff_id.in_(list(found)))
            .order_by(HandoffStep.id)
        )
        for step in rows:
            found[step.handoff_id].append(StepOut.model_validate(step, from_attributes=True))
    return [
        HandoffOut.model_validate(
            {
                **{column: getattr(handoff, column) for column in _COLUMNS},
                "owner_email": emails.get(handoff.owner_user_id) if handoff.owner_user_id else None,
                "steps": found[handoff.id],
            }
        )
        for handoff in handoffs
    ]


_COLUMNS = (
    "id",
    "contact_id",
    "state",
    "owner_user_id",
    "assigned_by",
    "opened_at",
    "due_at",
    "escalations",
    "decided_at",
    "reason",
    "engagement_reset",
)
