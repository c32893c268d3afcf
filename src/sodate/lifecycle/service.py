"""Lifecycle operations. Functions take the session, flush and never commit."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.orm import Session

from sodate.conditions.reads import Reads, reads
from sodate.conditions.references import unknown_references
from sodate.conditions.schemas import error_details
from sodate.db.locks import lock_workspace
from sodate.db.paging import fetch_page
from sodate.errors import InvalidInput
from sodate.lifecycle import progress
from sodate.lifecycle.models import LifecycleRules, Stage
from sodate.lifecycle.progress import CHANGES, STAGES, Actor, Move
from sodate.lifecycle.schemas import (
    ContactStageOut,
    LifecycleRulesIn,
    LifecycleRulesOut,
    RulesApplied,
    StageChangeOut,
    StageChangePage,
    StageCount,
)
from sodate.scoring import service as scoring
from sodate.segments import service as segments
from sodate.workspaces.service import workspace_zone


def get_rules(session: Session, workspace_id: str) -> LifecycleRulesOut:
    row = session.get(LifecycleRules, workspace_id)
    if row is None:
        return LifecycleRulesOut()
    return LifecycleRulesOut.of(LifecycleRulesIn.model_validate(row.definition), row.updated_at)


def put_rules(
    session: Session, workspace_id: str, data: LifecycleRulesIn, *, now: datetime
) -> RulesApplied:
    """Save the rules, then apply them to every contact; return who moved where."""
    _check_references(session, workspace_id, data)
    lock_workspace(session, workspace_id, wait=True)
    row = session.get(LifecycleRules, workspace_id)
    definition = LifecycleRulesOut.of(data, now).document()
    if row is None:
        session.add(
            LifecycleRules(workspace_id=workspace_id, definition=definition, updated_at=now)
        )
    else:
        row.definition, row.updated_at = definition, now
    session.flush()
    moved = advance(session, workspace_id, data, now=now)
    return RulesApplied(rules=get_rules(session, workspace_id), moved=moved)


def apply_document(
    session: Session, workspace_id: str, document: Any, *, now: datetime
) -> list[RulesApplied]:
    """`sodate lifecycle apply`: the rules of a file, every error named by its path."""
    try:
        data = LifecycleRulesIn.model_validate(document)
    except ValidationError as exc:
        raise InvalidInput(
            "the lifecycle rules are not valid",
            details=error_details(exc),
        ) from None
    return [put_rules(session, workspace_id, data, now=now)]


def advance(
    session: Session, workspace_id: str, rules: LifecycleRulesIn, *, now: datetime
) -> dict[str, int]:
    """Apply every rule to the whole workspace, set-based: inactivity first, then the rules and
    the MQL threshold; count the contacts moved per stage reached."""
    zone = workspace_zone(session, workspace_id)
    moved: Counter[str] = Counter()
    if rules.dormant is not None:
        moved[Stage.DORMANT] += len(
            progress.retire(session, workspace_id, rules.dormant, Stage.DORMANT, now=now)
        )
    if rules.churned is not None:
        moved[Stage.CHURNED] += len(
            progress.retire(session, workspace_id, rules.churned, Stage.CHURNED, now=now)
        )
    contacts: set[int] = set()
    for stage, condition in rules.ordered_rules():
        ids = progress.promote_by_rules(
            session, workspace_id, [(stage, condition)], now=now, zone=zone
        )
        moved[stage] += len(ids)
        contacts |= set(ids)
    if rules.mql is not None:
        ids = progress.promote_by_threshold(session, workspace_id, rules.mql, now=now)
        moved[Stage.MQL] += len(ids)
        contacts |= set(ids)
    segments.recheck_stage_readers(session, workspace_id, contacts, now=now)
    return {str(stage): count for stage, count in moved.items() if count}


def sweep(session: Session, workspace_id: str, *, now: datetime) -> int:
    """What time alone changes: inactivity, rules that read the clock (or segments or scores,
    which time moves), and thresholds that decay or a model save crossed."""
    rules = progress.saved_rules(session, workspace_id)
    if rules is None:
        return 0
    timed = {
        stage: condition
        for stage, condition in rules.rules.items()
        if (found := reads(condition)).clock or found.segments or found.scores
    }
    moved = advance(session, workspace_id, rules.model_copy(update={"rules": timed}), now=now)
    return sum(moved.values())


def lift_to_mql(session: Session, workspace_id: str, *, now: datetime) -> int:
    """After a scoring model save: the contacts whose threshold it made them reach."""
    rules = progress.saved_rules(session, workspace_id)
    if rules is None or rules.mql is None:
        return 0
    moved = progress.promote_by_threshold(session, workspace_id, rules.mql, now=now)
    segments.recheck_stage_readers(session, workspace_id, set(moved), now=now)
    return len(moved)


def recheck_consent_rules(
    session: Session, workspace_id: str, contacts: set[int], *, now: datetime
) -> None:
    """Contacts whose consent changed: the rules that read consent, or segments (which may
    read it), are checked for them; the segments reading stages then for those moved."""
    rules = progress.saved_rules(session, workspace_id)
    if rules is None or not contacts:
        return
    reading = [
        (stage, condition)
        for stage, condition in rules.ordered_rules()
        if (found := reads(condition)).consent or found.segments
    ]
    if not reading:
        return
    moved = progress.promote_by_rules(
        session,
        workspace_id,
        reading,
        now=now,
        zone=workspace_zone(session, workspace_id),
        candidates={stage: contacts for stage, _condition in reading},
    )
    segments.recheck_stage_readers(session, workspace_id, set(moved), now=now)


def workspaces_with_rules(session: Session) -> list[str]:
    return list(session.scalars(sa.select(LifecycleRules.workspace_id)))


def set_stage(
    session: Session,
    workspace_id: str,
    contact_id: int,
    stage: Stage,
    *,
    actor: Actor,
    now: datetime,
) -> ContactStageOut:
    """Move a contact to any stage by hand (a person or an API call); recorded like a rule's."""
    lock_workspace(session, workspace_id, wait=True)
    was = progress.placements(session, workspace_id, [contact_id]).get(contact_id)
    to = progress.moved_to(was, stage, now=now)
    if was is not None and was.stage == stage:
        to = was
    moved = progress.apply_moves(
        session, workspace_id, [Move(contact_id, was, to)], actor=actor, now=now
    )
    segments.recheck_stage_readers(session, workspace_id, set(moved), now=now)
    found = contact_stage(session, workspace_id, contact_id)
    assert found is not None
    return found


def contact_stage(session: Session, workspace_id: str, contact_id: int) -> ContactStageOut | None:
    row = session.execute(
        sa.select(STAGES).where(
            STAGES.c.workspace_id == workspace_id, STAGES.c.contact_id == contact_id
        )
    ).first()
    return None if row is None else ContactStageOut.model_validate(row, from_attributes=True)


def stages_of(session: Session, workspace_id: str, contact_ids: Sequence[int]) -> dict[int, str]:
    """The stage of each contact that has one."""
    return {
        contact: placement.stage.value
        for contact, placement in progress.placements(session, workspace_id, contact_ids).items()
    }


def stage_counts(session: Session, workspace_id: str) -> list[StageCount]:
    rows = session.execute(
        sa.select(STAGES.c.stage, sa.func.count())
        .where(STAGES.c.workspace_id == workspace_id)
        .group_by(STAGES.c.stage)
    ).all()
    counts = {stage: count for stage, count in rows}
    return [StageCount(stage=stage, contacts=counts.get(stage.value, 0)) for stage in Stage]


def list_changes(
    session: Session,
    workspace_id: str,
    *,
    contact_id: int | None = None,
    limit: int,
    after: int | None,
) -> StageChangePage:
    """Stage changes oldest first: one contact's, or the workspace's."""
    statement = sa.select(CHANGES).where(CHANGES.c.workspace_id == workspace_id)
    if contact_id is not None:
        statement = statement.where(CHANGES.c.contact_id == contact_id)
    if after is not None:
        statement = statement.where(CHANGES.c.id > after)
    page, cursor = fetch_page(session, statement.order_by(CHANGES.c.id), limit=limit, rows=True)
    return StageChangePage(
        items=[StageChangeOut.model_validate(row, from_attributes=True) for row in page],
        next_cursor=cursor,
    )


def latest_change_id(session: Session, workspace_id: str) -> int:
    """The id of the workspace's last stage change (0: none yet)."""
    found = session.scalar(
        sa.select(sa.func.max(CHANGES.c.id)).where(CHANGES.c.workspace_id == workspace_id)
    )
    return int(found or 0)


def changes_after(
    session: Session, workspace_id: str, after: int, *, limit: int
) -> list[StageChangeOut]:
    """Stage changes after the change `after`, oldest first.

    Every change is written under the workspace's processing lock, so a reader holding that
    lock sees ids in commit order: reading on from the last id seen misses nothing."""
    rows = session.execute(
        sa.select(CHANGES)
        .where(CHANGES.c.workspace_id == workspace_id, CHANGES.c.id > after)
        .order_by(CHANGES.c.id)
        .limit(limit)
    )
    return [StageChangeOut.model_validate(row, from_attributes=True) for row in rows]


def count_changes_to(
    session: Session, workspace_id: str, stage: Stage, *, since: datetime, until: datetime | None
) -> int:
    """How many moves to `stage` happened in [since, until) (None: up to now)."""
    where = [
        CHANGES.c.workspace_id == workspace_id,
        CHANGES.c.to_stage == stage.value,
        CHANGES.c.at >= since,
    ]
    if until is not None:
        where.append(CHANGES.c.at < until)
    return int(session.execute(sa.select(sa.func.count()).where(*where)).scalar_one())


def rules_reading_segment(session: Session, workspace_id: str, key: str) -> list[str]:
    """The stages whose rules read the segment."""
    return _rules_reading(session, workspace_id, lambda found: key in found.segments)


def rules_reading_model(session: Session, workspace_id: str, key: str) -> list[str]:
    """The stages whose rules compare scores of the model."""
    return _rules_reading(session, workspace_id, lambda found: key in found.scores)


def _rules_reading(
    session: Session, workspace_id: str, reads_it: Callable[[Reads], bool]
) -> list[str]:
    rules = progress.saved_rules(session, workspace_id)
    if rules is None:
        return []
    return sorted(stage.value for stage, rule in rules.rules.items() if reads_it(reads(rule)))


def threshold_in_use(session: Session, workspace_id: str) -> tuple[str, str] | None:
    """The scoring model and threshold that make contacts MQL, if any."""
    rules = progress.saved_rules(session, workspace_id)
    if rules is None or rules.mql is None:
        return None
    return rules.mql.model, rules.mql.threshold


def _check_references(session: Session, workspace_id: str, data: LifecycleRulesIn) -> None:
    """The scoring model, its threshold and every segment and model the rules name exist."""
    errors: list[dict[str, Any]] = []
    if data.mql is not None:
        thresholds = scoring.model_thresholds(session, workspace_id, data.mql.model)
        if thresholds is None:
            errors.append(_error(["mql", "model"], f"no scoring model {data.mql.model!r}"))
        elif data.mql.threshold not in thresholds:
            errors.append(
                _error(
                    ["mql", "threshold"],
                    f"scoring model {data.mql.model!r} has no threshold {data.mql.threshold!r}",
                )
            )
    errors += unknown_references(
        ((["rules", stage.value], condition) for stage, condition in data.rules.items()),
        segments=segments.existing_segment_keys(session, workspace_id),
        models=scoring.model_keys(session, workspace_id),
    )
    if errors:
        raise InvalidInput("the lifecycle rules name what does not exist", details=errors)


def _error(loc: list[Any], message: str) -> dict[str, Any]:
    return {"loc": loc, "msg": message, "type": "reference"}
