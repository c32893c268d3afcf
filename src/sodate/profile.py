"""What a contact's representation shows from the capabilities built on contacts.

Contacts know nothing of stages, scores, segments or consents (those capabilities build on
contacts), so the routes that show contacts complete them here: each capability's service
says what it holds for a set of contacts, in one query whatever their number.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.orm import Session

from sodate.consents import service as consents
from sodate.contacts.schemas import ContactOut
from sodate.lifecycle import service as lifecycle
from sodate.scoring import service as scoring
from sodate.segments import service as segments


def complete(
    session: Session, workspace_id: str, contacts: Sequence[ContactOut], *, now: datetime
) -> list[ContactOut]:
    """The contacts with their stage, scores per model, the keys of their segments and their
    consents now."""
    ids = [contact.id for contact in contacts]
    stages = lifecycle.stages_of(session, workspace_id, ids)
    scores = scoring.score_summaries(session, workspace_id, ids, now=now)
    keys = segments.segment_keys(session, workspace_id, ids)
    held = consents.consents_of(session, workspace_id, ids)
    return [
        contact.model_copy(
            update={
                "stage": stages.get(contact.id),
                "scores": {
                    model: score.model_dump() for model, score in scores.get(contact.id, {}).items()
                },
                "segments": keys.get(contact.id, []),
                "consents": held.get(contact.id, {}),
            }
        )
        for contact in contacts
    ]


def complete_one(
    session: Session, workspace_id: str, contact: ContactOut, *, now: datetime
) -> ContactOut:
    return complete(session, workspace_id, [contact], now=now)[0]
