"""Profile updates for many contacts at once: traits, first and last seen.

Trait rule: a new non-empty value replaces the old one; an empty value (null, "", "  ") changes
nothing, so an SDK that sends a partial profile never erases what is known. Clearing a trait
is an explicit act through the REST API.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy.orm import Session

from sodate.contacts.identifiers import normalize_email, normalize_phone, width_folded
from sodate.contacts.profile_rows import (
    UPDATE_PROFILE,
    UPDATE_SEEN,
    Known,
    Profile,
    load_identity_fields,
    load_profiles,
    move_seen,
)
from sodate.db.bulk import DriverValues, driver_values, execute_many

SEARCHED_TRAITS = ("name", "firstName", "lastName", "firstNameKana", "lastNameKana", "title")


@dataclass(slots=True)
class ProfileChange:
    """What one message or import row says about one contact."""

    contact_id: int
    seen_at: datetime | None = None
    traits: Mapping[str, Any] = field(default_factory=dict)
    user_id: str | None = None
    company_id: int | None = None
    source: str | None = None
    clear: Sequence[str] = ()
    prepared: PreparedProfile | None = None
    """`prepare_profile` of this change's traits, user id and source, worked out ahead (an
    import's parsing process does it while the writer writes): the profile of a contact
    created by this change alone. It must be of this change; nothing checks its traits."""


def filled(value: Any) -> bool:
    """Whether a value says something: not null, nor blank text, nor an empty list or object."""
    if isinstance(value, str):
        return value.strip() != ""
    return value is not None and value != [] and value != {}


def display_name(traits: Mapping[str, Any]) -> str | None:
    """`name`, else the given and family names; family name first when they are Japanese."""
    name = traits.get("name")
    if isinstance(name, str) and (name := name.strip()):
        return name
    parts = [
        part
        for value in (traits.get("firstName"), traits.get("lastName"))
        if isinstance(value, str) and (part := value.strip())
    ]
    if len(parts) == 2 and _CJK.search(parts[0] + parts[1]):
        parts.reverse()
    return " ".join(parts) or None


_CJK = re.compile("[\u3040-\u9fff\uff66-\uff9f]")


def search_key(text: str) -> str:
    """Text as contact search compares it: full-width folded (NFKC), case folded, and without
    spaces, so `山田　太郎`, `山田 太郎` and `山田太郎` are one, as are `ＨＡＮＡＫＯ` and
    `hanako`."""
    return "".join(width_folded(text).casefold().split())


def search_text(
    traits: Mapping[str, Any], *, email: str | None, phone: str | None, user_id: str | None
) -> str:
    """The fields a contact is found by (`search_key` each), a space between two: a search,
    which has no spaces, never matches across two fields."""
    parts = [email, phone, user_id, display_name(traits)]
    parts.extend([value for key in SEARCHED_TRAITS if isinstance(value := traits.get(key), str)])
    return " ".join(dict.fromkeys(key for part in parts if part and (key := search_key(part))))


def apply_profile_changes(
    session: Session, workspace_id: str, changes: Sequence[ProfileChange], *, now: datetime
) -> set[int]:
    """Apply changes in order; return the contacts whose profile fields changed.

    Most messages only say a contact was seen. Those contacts are not loaded: their first and
    last seen move in one narrow update each. Only contacts that some change could alter are
    loaded whole, changed in order, and written back.
    """
    if not changes:
        return set()
    known = load_identity_fields(session, workspace_id, {change.contact_id for change in changes})
    profiled = {
        change.contact_id
        for change in changes
        if change.contact_id in known and _may_change_profile(change, known[change.contact_id])
    }
    seen: dict[int, tuple[datetime, datetime]] = {}
    for change in changes:
        at = change.seen_at
        if at is None or change.contact_id in profiled or change.contact_id not in known:
            continue
        first, last = seen.get(change.contact_id, (at, at))
        seen[change.contact_id] = (min(first, at), max(last, at))
    move_seen(session, workspace_id, seen)
    return _apply_profiles(
        session,
        workspace_id,
        [change for change in changes if change.contact_id in profiled],
        known,
        now=now,
    )


def _may_change_profile(change: ProfileChange, known: Known) -> bool:
    return bool(
        change.traits
        or change.clear
        or change.company_id
        or (change.user_id and change.user_id != known.user_id)
        or (change.source and change.source not in known.sources)
    )


def _apply_profiles(
    session: Session,
    workspace_id: str,
    changes: Sequence[ProfileChange],
    known: Mapping[int, Known],
    *,
    now: datetime,
) -> set[int]:
    if not changes:
        return set()
    # A contact that holds nothing but its user id and sources (one just created) is not
    # loaded: the first load said as much.
    profiles: dict[int, Profile] = {}
    for contact_id in {change.contact_id for change in changes}:
        stored = known[contact_id]
        if stored.blank:
            profiles[contact_id] = Profile({}, stored.user_id, None, None, None, stored.sources)
    profiles.update(
        load_profiles(session, workspace_id, {c.contact_id for c in changes}.difference(profiles))
    )
    changed: set[int] = set()
    for change in changes:
        profile = profiles.get(change.contact_id)
        if profile is not None and _apply(profile, change):
            changed.add(change.contact_id)
    values = driver_values(session)

    def time(value: datetime | None) -> Any:
        return None if value is None else values.time(value)

    # A contact whose changes changed nothing but its first or last seen gets the narrow update.
    execute_many(
        session,
        UPDATE_SEEN,
        [
            (time(profile.first_seen_at), time(profile.last_seen_at), contact_id, workspace_id)
            for contact_id, profile in profiles.items()
            if contact_id not in changed and profile.seen_moved
        ],
    )
    stamp = values.time(now)
    execute_many(
        session,
        UPDATE_PROFILE,
        [
            (*_profile_columns(profile, values), stamp, contact_id, workspace_id)
            for contact_id, profile in profiles.items()
            if contact_id in changed
        ],
    )
    return changed


NEW_CONTACT_COLUMNS = (
    "id",
    "workspace_id",
    "traits",
    "user_id",
    "email",
    "phone",
    "company_id",
    "sources",
    "first_seen_at",
    "last_seen_at",
    "search_text",
    "created_at",
    "updated_at",
)


def new_contact_row(
    contact_id: int,
    workspace_id: str,
    changes: Sequence[ProfileChange],
    *,
    source: str,
    values: DriverValues,
    stamp: Any,
) -> tuple[Any, ...]:
    """The row (NEW_CONTACT_COLUMNS) of a contact created for these changes.

    It holds what the changes, in order, make of a contact that holds only the source: the
    profile it would have after `apply_profile_changes`, written in one insert instead of an
    empty row filled afterwards (SQLite pays most of a row's cost again to grow it in place).
    A contact created by one change that carries its profile prepared (`prepare_profile`,
    with this source) takes that profile as it is.
    """
    if len(changes) == 1 and (ready := changes[0].prepared) is not None:
        change = changes[0]
        if (
            ready.source == change.source == source
            and ready.user_id == (change.user_id or None)
            and change.seen_at is None
            and not change.clear
        ):
            return (
                contact_id,
                workspace_id,
                ready.traits,
                ready.user_id,
                ready.email,
                ready.phone,
                change.company_id or None,
                ready.sources,
                None,
                None,
                ready.search_text,
                stamp,
                stamp,
            )
    profile = Profile({}, None, None, None, None, [source])
    for change in changes:
        _apply(profile, change)
    return (contact_id, workspace_id, *_profile_columns(profile, values), stamp, stamp)


class PreparedProfile(NamedTuple):
    """The profile columns of a contact created by one change with a source and no time seen:
    `new_contact_row`'s columns from traits to search_text, except the company and the times."""

    traits: str
    user_id: str | None
    email: str | None
    phone: str | None
    sources: str
    search_text: str
    source: str
    """The source it was prepared with: a batch of another source works the profile out."""


def prepare_profile(
    traits: Mapping[str, Any], *, user_id: str | None, source: str, text: str | None = None
) -> PreparedProfile:
    """What `new_contact_row` makes of a `ProfileChange` with these traits, user id and
    source, and nothing else, when the batch that creates the contact has this source. It
    needs no database, so it can be worked out before the write, and in another process.

    `text`, the traits' JSON if the caller has it, is taken as the profile's when the profile
    keeps every trait as given (none empty): then it is one string, not two equal ones."""
    profile = Profile({}, None, None, None, None, [source])
    _apply(profile, ProfileChange(0, traits=traits, user_id=user_id, source=source))
    if text is None or profile.traits != traits:
        text = DriverValues.json(profile.traits)
    return PreparedProfile(
        traits=text,
        user_id=profile.user_id,
        email=profile.email,
        phone=profile.phone,
        sources=DriverValues.json(profile.sources),
        search_text=_search_text_of(profile),
        source=source,
    )


def _profile_columns(profile: Profile, values: DriverValues) -> tuple[Any, ...]:
    """traits, user_id, email, phone, company_id, sources, first_seen_at, last_seen_at and
    search_text, as the driver writes them."""
    first, last = profile.first_seen_at, profile.last_seen_at
    return (
        values.json(profile.traits),
        profile.user_id,
        profile.email,
        profile.phone,
        profile.company_id,
        values.json(profile.sources),
        None if first is None else values.time(first),
        None if last is None else values.time(last),
        _search_text_of(profile),
    )


def _search_text_of(profile: Profile) -> str:
    return search_text(
        profile.traits, email=profile.email, phone=profile.phone, user_id=profile.user_id
    )


def _apply(profile: Profile, change: ProfileChange) -> bool:
    before = (profile.traits, profile.user_id, profile.company_id, profile.sources)
    traits = dict(profile.traits)
    for key, value in change.traits.items():
        if filled(value):
            traits[key] = value
    for key in change.clear:
        traits.pop(key, None)
    profile.traits = traits
    if "email" in change.traits or "email" in change.clear:
        profile.email = normalize_email(traits.get("email")) or (
            None if "email" in change.clear else profile.email
        )
    if "phone" in change.traits or "phone" in change.clear:
        profile.phone = normalize_phone(traits.get("phone")) or (
            None if "phone" in change.clear else profile.phone
        )
    if change.user_id:
        profile.user_id = change.user_id
    if change.company_id:
        profile.company_id = change.company_id
    if change.source and change.source not in profile.sources:
        profile.sources = [*profile.sources, change.source]
    if change.seen_at is not None:
        first, last = profile.first_seen_at, profile.last_seen_at
        profile.first_seen_at = change.seen_at if first is None else min(first, change.seen_at)
        profile.last_seen_at = change.seen_at if last is None else max(last, change.seen_at)
        if (first, last) != (profile.first_seen_at, profile.last_seen_at):
            profile.seen_moved = True
    return before != (profile.traits, profile.user_id, profile.company_id, profile.sources)
