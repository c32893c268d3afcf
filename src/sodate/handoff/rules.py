"""The handoff rules: who owns new MQLs, how they are told, the SLA and the CRM webhook.
Functions take the session, flush and never commit."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from sodate.conditions.reads import reads
from sodate.conditions.references import unknown_references
from sodate.db.locks import lock_workspace
from sodate.errors import InvalidInput
from sodate.handoff import opening
from sodate.handoff.models import HandoffRules
from sodate.handoff.schemas import HandoffRulesIn, HandoffRulesOut
from sodate.lifecycle import service as lifecycle
from sodate.scoring import service as scoring
from sodate.segments import service as segments
from sodate.workspaces import service as workspaces


def get_rules(session: Session, workspace_id: str) -> HandoffRulesOut:
    row = session.get(HandoffRules, workspace_id)
    if row is None:
        return HandoffRulesOut()
    return HandoffRulesOut.of(HandoffRulesIn.model_validate(row.definition), row.updated_at)


def put_rules(
    session: Session,
    workspace_id: str,
    data: HandoffRulesIn,
    *,
    can_email: bool,
    now: datetime,
) -> HandoffRulesOut:
    """Save the rules. Contacts that become MQL from now on are handed off by them."""
    _check(session, workspace_id, data, can_email=can_email)
    lock_workspace(session, workspace_id, wait=True)
    definition = data.model_dump(mode="json", exclude_none=True)
    definition["assign"] = HandoffRulesOut.of(data, now).assign
    row = session.get(HandoffRules, workspace_id)
    if row is None:
        session.add(
            HandoffRules(
                workspace_id=workspace_id,
                definition=definition,
                read_changes_to=lifecycle.latest_change_id(session, workspace_id),
                last_owners={},
                updated_at=now,
            )
        )
    else:
        row.definition, row.updated_at = definition, now
    session.flush()
    return get_rules(session, workspace_id)


def _check(session: Session, workspace_id: str, data: HandoffRulesIn, *, can_email: bool) -> None:
    users = {user.email.lower(): user for user in workspaces.list_users(session, workspace_id)}
    errors: list[dict[str, Any]] = []
    for index, rule in enumerate(data.assign):
        for place, email in enumerate(rule.owners):
            user = users.get(email.lower())
            if user is None or not user.is_active:
                errors.append(_error(["assign", index, "owners", place], f"no active user {email}"))
            elif not opening.can_own(user.role):
                errors.append(
                    _error(
                        ["assign", index, "owners", place],
                        f"{email} is {user.role}: only sales, admins and owners take leads",
                    )
                )
    for place, email in enumerate(data.escalate_to):
        user = users.get(email.lower())
        if user is None or not user.is_active:
            errors.append(_error(["escalate_to", place], f"no active user {email}"))
    errors += unknown_references(
        ((["assign", index, "when"], rule.when) for index, rule in enumerate(data.assign)),
        segments=segments.existing_segment_keys(session, workspace_id),
        models=scoring.model_keys(session, workspace_id),
    )
    if data.notify.email and not can_email:
        errors.append(
            _error(
                ["notify", "email"],
                "email needs an SMTP server: set SODATE_SMTP_URL, or set email to false",
            )
        )
    if errors:
        raise InvalidInput("the handoff rules are not valid", details=errors)


def _error(loc: list[Any], message: str) -> dict[str, Any]:
    return {"loc": loc, "msg": message, "type": "reference"}


def rules_reading_segment(session: Session, workspace_id: str, key: str) -> list[str]:
    """The assignment rules (`assign.N`) whose conditions read the segment. (None reads a
    scoring model: scores decay, and the rules may not read the clock.)"""
    rules = saved_rules(session, workspace_id)
    if rules is None:
        return []
    return [
        f"assign.{index}"
        for index, rule in enumerate(rules.assign)
        if key in reads(rule.when).segments
    ]


def saved_rules(session: Session, workspace_id: str) -> HandoffRulesIn | None:
    row = session.get(HandoffRules, workspace_id)
    return None if row is None else HandoffRulesIn.model_validate(row.definition)


def workspaces_with_rules(session: Session) -> list[str]:
    return list(session.scalars(sa.select(HandoffRules.workspace_id)))
