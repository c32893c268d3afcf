"""The event batch that flows through the processing pipeline, and the events' own steps.

A batch holds one workspace's messages in arrival order. Each step reads what earlier steps
found (the contact of each event, merges, changed profiles) and adds its own facts; steps of
later capabilities (scores, segments, journey triggers) plug in after these, in
`sodate.pipeline`.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy.orm import Session

from sodate.conditions.reads import Changes
from sodate.contacts import service as contacts
from sodate.contacts.identifiers import (
    IdentityKey,
    IdentityKind,
    external_kind,
    normalize_email,
    normalize_phone,
    usable_id,
)
from sodate.contacts.resolution import IdentityClaim, PlannedMerge
from sodate.db.bulk import DriverValues
from sodate.events import latest, service
from sodate.events.schemas import VIEW_TYPES, MessageType, view_properties

TRACKING_SOURCE = "tracking"
EVENT_NAMES = {MessageType.PAGE: "Page Viewed", MessageType.SCREEN: "Screen Viewed"}
# Looked up once: the pipeline touches these for every event, and enum lookups are slow.
_TYPE_OF = {kind.value: kind for kind in MessageType}
_TRACK, _IDENTIFY, _GROUP = MessageType.TRACK, MessageType.IDENTIFY, MessageType.GROUP


JsonObject = dict[str, Any] | str
"""A JSON object, or its text: messages from the inbox carry their properties and context as
text (`sodate.events.tracking`), which is stored as it is and parsed only where read."""


class BatchEvent:
    """One accepted message on its way through the pipeline.

    A class with slots rather than a dataclass: `properties` and `context` are read from their
    JSON texts when first asked for, and each text is made only when the event is stored.
    """

    __slots__ = (
        "_context",
        "_context_text",
        "_properties",
        "_properties_text",
        "activity",
        "anonymous_id",
        "clear_traits",
        "contact_id",
        "event_id",
        "group_id",
        "keyed",
        "message_id",
        "name",
        "previous_id",
        "received_at",
        "timestamp",
        "traits",
        "type",
        "user_id",
    )

    def __init__(
        self,
        *,
        message_id: str,
        type: MessageType,
        name: str | None,
        user_id: str | None,
        anonymous_id: str | None,
        properties: JsonObject,
        traits: dict[str, Any],
        context: JsonObject,
        timestamp: datetime,
        received_at: datetime,
        group_id: str | None = None,
        previous_id: str | None = None,
        clear_traits: tuple[str, ...] = (),
        activity: bool = True,
        keyed: bool = True,
        contact_id: int = 0,
    ) -> None:
        self.message_id = message_id
        self.type = type
        self.name = name
        self.user_id = user_id
        self.anonymous_id = anonymous_id
        self._properties = properties
        self._properties_text: str | None = None
        self.traits = traits
        self._context = context
        self._context_text: str | None = None
        self.timestamp = timestamp
        self.received_at = received_at
        self.group_id = group_id
        self.previous_id = previous_id
        self.clear_traits = clear_traits
        self.activity = activity
        """False for profile edits (API, import), which do not make a contact "seen"."""
        self.keyed = keyed
        """False when Sodate made the message id up (profile edits): nobody can send it again,
        so it is never looked up, and its event stays out of the index of message keys."""
        self.contact_id = contact_id
        """Set by identity resolution; set beforehand when the contact is already known."""
        self.event_id = 0
        """Set when the event is stored."""

    @property
    def properties(self) -> dict[str, Any]:
        value = self._properties
        if isinstance(value, str):
            self._properties_text, value = value, orjson.loads(value)
            self._properties = value
        return value

    @property
    def context(self) -> dict[str, Any]:
        value = self._context
        if isinstance(value, str):
            self._context_text, value = value, orjson.loads(value)
            self._context = value
        return value

    @property
    def properties_text(self) -> str:
        if self._properties_text is None:
            self._properties_text = _text(self._properties)
        return self._properties_text

    @property
    def context_text(self) -> str:
        if self._context_text is None:
            self._context_text = _text(self._context)
        return self._context_text

    @property
    def external_ids(self) -> list[Any]:
        """`context.externalIds`, without parsing a context that has none."""
        if isinstance(self._context, str) and '"externalIds"' not in self._context:
            return []
        return self.context.get("externalIds") or []

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> BatchEvent:
        """The event of an accepted message, as `sodate.events.tracking` normalized it."""
        kind = _TYPE_OF[document["type"]]
        properties: JsonObject = document.get("properties") or {}
        traits = document.get("traits") or {}
        if kind is _IDENTIFY or kind is _GROUP:
            properties = traits
        elif kind in VIEW_TYPES and isinstance(properties, dict):
            # Accepted by a Sodate before views' names were put in their properties on receipt.
            properties = view_properties(properties, document.get("name"), document.get("category"))
        return cls(
            message_id=document["messageId"],
            type=kind,
            name=document.get("event") if kind is _TRACK else EVENT_NAMES.get(kind),
            user_id=document.get("userId"),
            anonymous_id=document.get("anonymousId"),
            properties=properties,
            traits=traits,
            context=document.get("context") or {},
            timestamp=datetime.fromisoformat(document["timestamp"]),
            received_at=datetime.fromisoformat(document["receivedAt"]),
            group_id=document.get("groupId"),
            previous_id=document.get("previousId"),
        )


def _text(value: JsonObject) -> str:
    return value if isinstance(value, str) else DriverValues.json(value)


@dataclass
class EventBatch:
    workspace_id: str
    events: list[BatchEvent]
    now: datetime
    source: str = TRACKING_SOURCE
    created_contacts: set[int] = field(default_factory=set)
    merges: list[PlannedMerge] = field(default_factory=list)
    changed_profiles: set[int] = field(default_factory=set)
    changed_scores: set[int] = field(default_factory=set)
    """Contacts whose score in some model changed (the segments that read scores re-check)."""
    changed_stages: set[int] = field(default_factory=set)
    """Contacts whose lifecycle stage changed (the segments that read stages re-check)."""
    profiles_applied: bool = False
    """The caller applied the events' profile changes before the batch (API upserts and
    imports): `update_profiles` has nothing left to do, and does not load the contacts."""

    @property
    def contact_ids(self) -> set[int]:
        return {event.contact_id for event in self.events}

    def changes(self) -> Changes:
        """Which contacts this batch changed, as the conditions of live segments and stage
        rules read changes."""
        names: dict[str, set[int]] = defaultdict(set)
        seen: set[int] = set()
        for event in self.events:
            if event.name:
                names[event.name].add(event.contact_id)
            if event.activity:
                seen.add(event.contact_id)
        return Changes(
            always=self.created_contacts | {merge.survivor for merge in self.merges},
            profiles=self.changed_profiles,
            seen=seen,
            scores=self.changed_scores,
            events=names,
        )


def resolve_contacts(session: Session, batch: EventBatch) -> None:
    unresolved = [event for event in batch.events if not event.contact_id]
    resolution = contacts.resolve_identities(
        session,
        batch.workspace_id,
        [_claim(event) for event in unresolved],
        now=batch.now,
        source=batch.source,
    )
    for event, contact_id in zip(unresolved, resolution.contact_ids, strict=True):
        event.contact_id = contact_id
    batch.created_contacts |= resolution.created
    batch.merges.extend(resolution.merges)


def _claim(event: BatchEvent) -> IdentityClaim:
    keys: list[IdentityKey] = []
    if event.user_id:
        keys.append(IdentityKey(IdentityKind.USER_ID, event.user_id))
    for external in event.external_ids:
        value = usable_id(str(external.get("id", "")))
        if value and isinstance(external.get("type"), str):
            keys.append(IdentityKey(external_kind(external["type"]), value))
    if event.type is _IDENTIFY:
        traits = event.traits
        if email := normalize_email(traits.get("email")):
            keys.append(IdentityKey(IdentityKind.EMAIL, email))
        if phone := normalize_phone(traits.get("phone")):
            keys.append(IdentityKey(IdentityKind.PHONE, phone))
    if event.anonymous_id:
        keys.append(IdentityKey(IdentityKind.ANONYMOUS_ID, event.anonymous_id))
    aliases: tuple[IdentityKey, ...] = ()
    if event.type == MessageType.ALIAS and (previous := usable_id(event.previous_id)):
        aliases = (
            IdentityKey(IdentityKind.USER_ID, previous),
            IdentityKey(IdentityKind.ANONYMOUS_ID, previous),
        )
    return IdentityClaim(keys=tuple(keys), aliases=aliases)


def store_events(session: Session, batch: EventBatch) -> None:
    ids = service.insert_events(
        session,
        batch.workspace_id,
        [
            service.EventRow(
                contact_id=event.contact_id,
                message_id=event.message_id,
                type=event.type.value,
                name=event.name,
                properties=event.properties_text,
                context=event.context_text,
                timestamp=event.timestamp,
                received_at=event.received_at,
                keyed=event.keyed,
            )
            for event in batch.events
        ],
    )
    for event, event_id in zip(batch.events, ids, strict=True):
        event.event_id = event_id


def update_profiles(session: Session, batch: EventBatch) -> None:
    if batch.profiles_applied:
        return
    upserted = contacts.upsert_companies(
        session,
        batch.workspace_id,
        [
            contacts.CompanyChange(
                group_key=event.group_id,
                traits=event.traits if event.type is _GROUP else {},
            )
            for event in batch.events
            if event.group_id
        ],
        now=batch.now,
    )
    changes = [
        contacts.ProfileChange(
            contact_id=event.contact_id,
            seen_at=event.timestamp if event.activity else None,
            traits=event.traits if event.type is _IDENTIFY else {},
            user_id=event.user_id,
            company_id=upserted.ids.get(event.group_id) if event.group_id else None,
            source=batch.source,
            clear=event.clear_traits,
        )
        for event in batch.events
    ]
    batch.changed_profiles |= contacts.apply_profile_changes(
        session, batch.workspace_id, changes, now=batch.now
    )
    if upserted.changed:  # every contact of a company reads its traits as `company.*`
        batch.changed_profiles |= contacts.contacts_of_companies(
            session, batch.workspace_id, upserted.changed
        )


def count_events(session: Session, batch: EventBatch) -> None:
    if batch.events:
        service.count_stored_events(
            session,
            batch.workspace_id,
            min(event.event_id for event in batch.events),
            max(event.event_id for event in batch.events),
        )
        latest.keep_latest_times(
            session,
            batch.workspace_id,
            ((event.contact_id, event.name, event.timestamp) for event in batch.events),
        )
