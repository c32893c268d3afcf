"""Loading the contacts' own fields and what they are in, for many contacts at once.

What the in-memory evaluator reads besides events (`sodate.conditions.state`): the contacts
with their companies, and their segment memberships, scores, lifecycle stages and consents,
each read in parts of `_CHUNK` contacts.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from sodate.conditions.memory import ScoreState
from sodate.conditions.sql import (
    CONTACT_CONSENTS,
    CONTACT_SCORES,
    CONTACT_STAGES,
    MEMBERS,
    SCORING_MODELS,
    SEGMENTS,
)
from sodate.db.bulk import driver_values, fetch_in
from sodate.db.plans import workspace_check
from sodate.scoring.decay import SECONDS_A_DAY

_CHUNK = 500


def load_contacts(
    session: Session, workspace_id: str, contact_ids: Sequence[int]
) -> dict[int, dict[str, Any]]:
    """The contacts' own fields and their companies', by live contact."""
    values = driver_values(session)
    # `|| ''`: see `sodate.db.plans`.
    rows = fetch_in(
        session,
        "SELECT c.id, c.created_at, c.traits, c.email, c.phone, c.user_id, c.first_seen_at,"
        " c.last_seen_at, o.id, o.name, o.traits"
        " FROM contacts c LEFT JOIN companies o ON o.id = c.company_id"
        " WHERE c.workspace_id || '' = ? AND c.merged_into_id IS NULL AND c.id IN",
        sorted(contact_ids),
        (workspace_id,),
    )
    time, document = values.stored_time, values.stored_json
    return {
        contact: {
            "created_at": time(created_at),
            "traits": document(traits),
            "email": email,
            "phone": phone,
            "user_id": user_id,
            "first_seen_at": time(first_seen_at),
            "last_seen_at": time(last_seen_at),
            "company_name": company_name,
            "company_traits": document(company_traits) if company is not None else None,
        }
        for (
            contact,
            created_at,
            traits,
            email,
            phone,
            user_id,
            first_seen_at,
            last_seen_at,
            company,
            company_name,
            company_traits,
        ) in rows
    }


def load_memberships(
    session: Session, workspace_id: str, contact_ids: Sequence[int], keys: set[str]
) -> dict[int, set[str]]:
    found: dict[int, set[str]] = defaultdict(set)
    if not keys:
        return found
    for chunk in chunks(contact_ids):
        rows = session.execute(
            sa.select(MEMBERS.c.contact_id, SEGMENTS.c.key)
            .join(SEGMENTS, SEGMENTS.c.id == MEMBERS.c.segment_id)
            .where(
                SEGMENTS.c.workspace_id == workspace_id,
                SEGMENTS.c.key.in_(sorted(keys)),
                MEMBERS.c.contact_id.in_(chunk),
            )
        )
        for contact_id, key in rows:
            found[contact_id].add(key)
    return found


def load_scores(
    session: Session, workspace_id: str, contact_ids: Sequence[int], models: set[str]
) -> dict[int, dict[str, ScoreState]]:
    found: dict[int, dict[str, ScoreState]] = defaultdict(dict)
    if not models:
        return found
    for chunk in chunks(contact_ids):
        rows = session.execute(
            sa.select(
                CONTACT_SCORES.c.contact_id,
                SCORING_MODELS.c.key,
                CONTACT_SCORES.c.fit,
                CONTACT_SCORES.c.engagement_base,
                SCORING_MODELS.c.epoch,
                SCORING_MODELS.c.half_life_days,
            )
            .join(SCORING_MODELS, SCORING_MODELS.c.id == CONTACT_SCORES.c.model_id)
            .where(
                SCORING_MODELS.c.workspace_id == workspace_id,
                SCORING_MODELS.c.key.in_(sorted(models)),
                CONTACT_SCORES.c.contact_id.in_(chunk),
            )
        )
        for contact_id, key, fit, base, epoch, half_life_days in rows:
            half_life = half_life_days * SECONDS_A_DAY if half_life_days is not None else None
            found[contact_id][key] = ScoreState(fit, base, epoch, half_life)
    return found


def load_stages(session: Session, workspace_id: str, contact_ids: Sequence[int]) -> dict[int, str]:
    found: dict[int, str] = {}
    for chunk in chunks(contact_ids):
        rows = session.execute(
            sa.select(CONTACT_STAGES.c.contact_id, CONTACT_STAGES.c.stage).where(
                CONTACT_STAGES.c.workspace_id == workspace_id,
                CONTACT_STAGES.c.contact_id.in_(chunk),
            )
        )
        found.update((contact_id, stage) for contact_id, stage in rows)
    return found


def load_consents(
    session: Session, workspace_id: str, contact_ids: Sequence[int]
) -> dict[int, frozenset[tuple[str, str]]]:
    """The (channel, purpose) pairs each contact has given consent to and not withdrawn."""
    found: dict[int, set[tuple[str, str]]] = defaultdict(set)
    for chunk in chunks(contact_ids):
        rows = session.execute(
            sa.select(
                CONTACT_CONSENTS.c.contact_id,
                CONTACT_CONSENTS.c.channel,
                CONTACT_CONSENTS.c.purpose,
            ).where(
                workspace_check(CONTACT_CONSENTS.c.workspace_id, workspace_id),
                CONTACT_CONSENTS.c.contact_id.in_(chunk),
                CONTACT_CONSENTS.c.granted,
            )
        )
        for contact_id, channel, purpose in rows:
            found[contact_id].add((channel, purpose))
    return {contact: frozenset(pairs) for contact, pairs in found.items()}


def chunks(ids: Sequence[int]) -> Iterable[Sequence[int]]:
    for start in range(0, len(ids), _CHUNK):
        yield ids[start : start + _CHUNK]
