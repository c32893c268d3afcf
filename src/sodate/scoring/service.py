"""Scoring operations. Functions take the session, flush and never commit."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from sodate.conditions.schemas import Condition, dump_condition
from sodate.db.locks import lock_workspace
from sodate.db.paging import fetch_page
from sodate.errors import NotFound
from sodate.scoring.decay import reached
from sodate.scoring.live import LiveModel, live_models, rounded
from sodate.scoring.models import ScoreCause, ScoringModel
from sodate.scoring.recompute import recompute_model, sync_levels
from sodate.scoring.schemas import (
    CrossingOut,
    CrossingPage,
    HistoryPage,
    HistoryPoint,
    ModelScore,
    ScoreReason,
    ScoreSummary,
    ScoringModelIn,
    ScoringModelOut,
    ScoringModelSaved,
)
from sodate.scoring.tables import CROSSINGS, HISTORY, RESETS, RULES, SCORES
from sodate.workspaces import service as workspaces


def put_model(
    session: Session, workspace_id: str, key: str, data: ScoringModelIn, *, now: datetime
) -> tuple[ScoringModelSaved, bool]:
    """Create or replace a model, then score every contact with it; return it and whether it
    was created.

    Crossings that decay made since the contacts were last looked at are recorded first (cause
    `time`). Changing thresholds records no crossing by itself: levels are then re-read against
    the new thresholds with the old scores, so only scores the new rules change cross them. The
    epoch stays, so contacts whose score the new rules leave alone get no history row."""
    lock_workspace(session, workspace_id, wait=True)
    model = _find(session, workspace_id, key)
    created = model is None
    if model is None:
        model = ScoringModel(workspace_id=workspace_id, key=key, created_at=now, epoch=now)
        session.add(model)
    else:
        stored = ScoringModelIn.model_validate(model.definition)
        before = LiveModel.of(model.id, key, model.epoch, stored)
        sync_levels(session, workspace_id, before, now=now, cause=ScoreCause.TIME)
        relevel = LiveModel.of(model.id, key, model.epoch, data)
        sync_levels(session, workspace_id, relevel, now=now, cause=ScoreCause.MODEL, record=False)
    model.name = data.name or key
    model.description = data.description
    model.definition = _definition(data)
    model.half_life_days = data.decay.half_life_days if data.decay else None
    model.updated_at = now
    model.computed_at = now
    session.flush()
    live = LiveModel.of(model.id, key, model.epoch, data)
    reached, fell = recompute_model(
        session,
        workspace_id,
        live,
        now=now,
        zone=workspaces.workspace_zone(session, workspace_id),
        cause=ScoreCause.MODEL,
    )
    return ScoringModelSaved(model=_out(session, model), reached=reached, fell=fell), created


def _definition(data: ScoringModelIn) -> dict[str, Any]:
    return data.model_dump(
        mode="json", by_alias=True, exclude_none=True, exclude={"key", "name", "description"}
    )


def list_models(session: Session, workspace_id: str) -> list[ScoringModelOut]:
    rows = session.scalars(
        sa.select(ScoringModel)
        .where(ScoringModel.workspace_id == workspace_id)
        .order_by(ScoringModel.key)
    ).all()
    return [_out(session, row) for row in rows]


def get_model(session: Session, workspace_id: str, key: str) -> ScoringModelOut:
    return _out(session, _get(session, workspace_id, key))


def model_keys(session: Session, workspace_id: str) -> set[str]:
    return set(
        session.scalars(
            sa.select(ScoringModel.key).where(ScoringModel.workspace_id == workspace_id)
        )
    )


def model_thresholds(session: Session, workspace_id: str, key: str) -> dict[str, float] | None:
    """The model's thresholds by name; None if there is no such model."""
    definition = session.scalar(
        sa.select(ScoringModel.definition).where(
            ScoringModel.workspace_id == workspace_id, ScoringModel.key == key
        )
    )
    return None if definition is None else dict(definition.get("thresholds") or {})


def model_id(session: Session, workspace_id: str, key: str) -> int | None:
    return session.scalar(
        sa.select(ScoringModel.id).where(
            ScoringModel.workspace_id == workspace_id, ScoringModel.key == key
        )
    )


def latest_crossings(model_id: int, threshold: str) -> sa.Select[Any]:
    """Each contact's latest crossing of the model's threshold: `contact_id`, `reached`, `at`.

    A SELECT to build on; the latest is found per contact, so a query restricted to a few
    contacts reads only their crossings."""
    later = CROSSINGS.alias("later")
    return sa.select(CROSSINGS.c.contact_id, CROSSINGS.c.reached, CROSSINGS.c.at).where(
        CROSSINGS.c.model_id == model_id,
        CROSSINGS.c.threshold == threshold,
        ~sa.exists().where(
            later.c.contact_id == CROSSINGS.c.contact_id,
            later.c.model_id == model_id,
            later.c.threshold == threshold,
            later.c.id > CROSSINGS.c.id,
        ),
    )


def reset_engagement(
    session: Session, workspace_id: str, key: str, contact_id: int, *, now: datetime
) -> None:
    """Set the contact's engagement in the model back to 0: what it did up to now gives no
    more points (fit is unchanged). Recorded in its history, and as crossings, cause `reset`."""
    model = next((m for m in live_models(session, workspace_id) if m.key == key), None)
    if model is None:
        raise NotFound(f"no scoring model {key!r}")
    lock_workspace(session, workspace_id, wait=True)
    session.execute(
        sa.delete(RESETS).where(RESETS.c.model_id == model.id, RESETS.c.contact_id == contact_id)
    )
    session.execute(sa.insert(RESETS).values(model_id=model.id, contact_id=contact_id, at=now))
    recompute_model(
        session,
        workspace_id,
        model,
        now=now,
        zone=workspaces.workspace_zone(session, workspace_id),
        cause=ScoreCause.RESET,
        contacts=[contact_id],
    )


def delete_model(session: Session, workspace_id: str, key: str) -> None:
    session.delete(_get(session, workspace_id, key))
    session.flush()


def contact_scores(
    session: Session, workspace_id: str, contact_id: int, *, now: datetime
) -> dict[str, ModelScore]:
    """The contact's score in every model, with the points each rule gives now."""
    models = {model.id: model for model in live_models(session, workspace_id)}
    scores = {
        model_id: (fit, base)
        for model_id, fit, base in session.execute(
            sa.select(SCORES.c.model_id, SCORES.c.fit, SCORES.c.engagement_base).where(
                SCORES.c.workspace_id == workspace_id, SCORES.c.contact_id == contact_id
            )
        )
    }
    reasons: dict[int, list[ScoreReason]] = defaultdict(list)
    for model_id, rule, points, base in session.execute(
        sa.select(RULES.c.model_id, RULES.c.rule, RULES.c.points, RULES.c.base).where(
            RULES.c.workspace_id == workspace_id, RULES.c.contact_id == contact_id
        )
    ):
        model = models[model_id]
        now_points = points if rule.startswith("fit.") else model.engagement_at(base, now)
        reasons[model_id].append(
            ScoreReason(
                rule=rule,
                description=_describe(model, rule),
                points=rounded(now_points),
                awarded=rounded(points),
            )
        )
    shown: dict[str, ModelScore] = {}
    for model_id, model in sorted(models.items(), key=lambda item: item[1].key):
        fit, base = scores.get(model_id, (0.0, 0.0))
        engagement = model.engagement_at(base, now)
        total = fit + engagement
        shown[model.key] = ModelScore(
            fit=rounded(fit),
            engagement=rounded(engagement),
            total=rounded(total),
            thresholds_reached=[name for value, name in model.thresholds if reached(total, value)],
            reasons=sorted(reasons[model_id], key=lambda reason: _rule_order(reason.rule)),
        )
    return shown


def score_summaries(
    session: Session, workspace_id: str, contact_ids: Sequence[int], *, now: datetime
) -> dict[int, dict[str, ScoreSummary]]:
    """Fit, engagement and total per model of each contact, for the contact representation."""
    if not contact_ids:
        return {}
    models = {model.id: model for model in live_models(session, workspace_id)}
    if not models:
        return {}
    found: dict[int, dict[str, ScoreSummary]] = defaultdict(dict)
    for start in range(0, len(contact_ids), 500):
        rows = session.execute(
            sa.select(
                SCORES.c.contact_id, SCORES.c.model_id, SCORES.c.fit, SCORES.c.engagement_base
            ).where(
                SCORES.c.workspace_id == workspace_id,
                SCORES.c.contact_id.in_(contact_ids[start : start + 500]),
            )
        )
        for contact_id, model_id, fit, base in rows:
            model = models[model_id]
            engagement = model.engagement_at(base, now)
            found[contact_id][model.key] = ScoreSummary(
                fit=rounded(fit), engagement=rounded(engagement), total=rounded(fit + engagement)
            )
    return found


def score_history(
    session: Session,
    workspace_id: str,
    contact_id: int,
    key: str,
    *,
    limit: int,
    after: int | None,
) -> HistoryPage:
    """The contact's score in one model after each change, oldest first."""
    model = _get(session, workspace_id, key)
    statement = (
        sa.select(HISTORY)
        .where(HISTORY.c.contact_id == contact_id, HISTORY.c.model_id == model.id)
        .order_by(HISTORY.c.id)
    )
    if after is not None:
        statement = statement.where(HISTORY.c.id > after)
    page, cursor = fetch_page(session, statement, limit=limit, rows=True)
    return HistoryPage(
        items=[
            HistoryPoint(
                id=row.id,
                at=row.at,
                fit=rounded(row.fit),
                engagement=rounded(row.engagement),
                total=rounded(row.fit + row.engagement),
                cause=row.cause,
            )
            for row in page
        ],
        next_cursor=cursor,
    )


def list_crossings(
    session: Session, workspace_id: str, key: str, *, limit: int, after: int | None
) -> CrossingPage:
    """Thresholds reached and left, oldest first: the facts journeys trigger on."""
    model = _get(session, workspace_id, key)
    statement = (
        sa.select(CROSSINGS).where(CROSSINGS.c.model_id == model.id).order_by(CROSSINGS.c.id)
    )
    if after is not None:
        statement = statement.where(CROSSINGS.c.id > after)
    page, cursor = fetch_page(session, statement, limit=limit, rows=True)
    return CrossingPage(
        items=[
            CrossingOut(
                id=row.id,
                model=key,
                contact_id=row.contact_id,
                threshold=row.threshold,
                value=row.value,
                reached=row.reached,
                total=rounded(row.total),
                cause=row.cause,
                at=row.at,
            )
            for row in page
        ],
        next_cursor=cursor,
    )


def _describe(model: LiveModel, rule: str) -> str:
    kind, _, index = rule.partition(".")
    if kind == "fit":
        fit = model.fit[int(index)]
        return f"{fit.points:+d} while {_condition_text(fit.condition)}"
    engagement = model.engagement[int(index)]
    where = f" where {len(engagement.where)} filter(s) hold" if engagement.where else ""
    return f"{engagement.points:+d} for each {engagement.event}{where}"


def _condition_text(condition: Condition) -> str:
    return json.dumps(dump_condition(condition), ensure_ascii=False)


def _rule_order(rule: str) -> tuple[int, int]:
    kind, _, index = rule.partition(".")
    return (0 if kind == "fit" else 1, int(index))


def _find(session: Session, workspace_id: str, key: str) -> ScoringModel | None:
    return session.scalar(
        sa.select(ScoringModel).where(
            ScoringModel.workspace_id == workspace_id, ScoringModel.key == key
        )
    )


def _get(session: Session, workspace_id: str, key: str) -> ScoringModel:
    model = _find(session, workspace_id, key)
    if model is None:
        raise NotFound(f"no scoring model {key!r}")
    return model


def _out(session: Session, model: ScoringModel) -> ScoringModelOut:
    definition = model.definition
    count = session.execute(
        sa.select(sa.func.count()).where(
            SCORES.c.model_id == model.id,
            sa.or_(SCORES.c.fit != 0.0, SCORES.c.engagement_base != 0.0),
        )
    ).scalar_one()
    return ScoringModelOut(
        key=model.key,
        name=model.name,
        description=model.description,
        fit=definition.get("fit", []),
        engagement=definition.get("engagement", []),
        decay=definition.get("decay"),
        thresholds=definition.get("thresholds", {}),
        scored_contacts=count,
        created_at=model.created_at,
        updated_at=model.updated_at,
        computed_at=model.computed_at,
    )
