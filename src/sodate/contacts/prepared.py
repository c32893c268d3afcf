"""What an upsert makes of a row without the database: its identify event's traits, its
identity claim, and the profile its contact is created with if it is new.

Apart from `sodate.contacts.writes` (which runs the pipeline), so that an import's parsing
process can prepare rows (`prepare_contact`) without importing the pipeline.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple, Protocol

from sodate.contacts.identifiers import (
    IdentityKey,
    IdentityKind,
    external_kind,
    normalize_email,
    normalize_phone,
    usable_id,
)
from sodate.contacts.models import identity_key
from sodate.contacts.profiles import PreparedProfile, prepare_profile
from sodate.contacts.resolution import IdentityClaim
from sodate.db.bulk import DriverValues


class ContactData(Protocol):
    """What an upsert says of a contact: a validated ContactUpsert, or an import's checked row."""

    @property
    def email(self) -> str | None: ...
    @property
    def phone(self) -> str | None: ...
    @property
    def user_id(self) -> str | None: ...
    @property
    def external_ids(self) -> Mapping[str, str]: ...
    @property
    def traits(self) -> Mapping[str, Any]: ...
    @property
    def company_key(self) -> str | None: ...


def row_claim(
    row: ContactData, traits: Mapping[str, Any], *, workspace_id: str | None = None
) -> IdentityClaim:
    """The identifiers the pipeline reads from the row's identify event, strongest first;
    with their keys' hashes when the claim's workspace is given."""
    keys: list[IdentityKey] = []
    if row.user_id:
        keys.append(IdentityKey(IdentityKind.USER_ID, row.user_id))
    for id_type, external_id in row.external_ids.items():
        if value := usable_id(str(external_id)):
            keys.append(IdentityKey(external_kind(id_type), value))
    if email := normalize_email(traits.get("email")):
        keys.append(IdentityKey(IdentityKind.EMAIL, email))
    if phone := normalize_phone(traits.get("phone")):
        keys.append(IdentityKey(IdentityKind.PHONE, phone))
    if workspace_id is None:
        return IdentityClaim(tuple(keys))
    hashes = tuple([identity_key(workspace_id, key.kind, key.value) for key in keys])
    return IdentityClaim(tuple(keys), (), hashes)


def identify_traits(row: ContactData) -> dict[str, Any]:
    """The traits of a row's identify event: its traits, with its email and phone."""
    traits = dict(row.traits)
    if row.email is not None:
        traits["email"] = row.email
    if row.phone is not None:
        traits["phone"] = row.phone
    return traits


class PreparedContact(NamedTuple):
    """What an upsert with a source makes of a row without the database (`prepare_contact`)."""

    claim: IdentityClaim
    profile: PreparedProfile
    """The profile the row's contact is created with, when this row alone creates it."""
    event_traits: str
    """The row's identify event's traits as its stored JSON text. Usually the new profile's
    traits too, and then the same string: it is serialized, pickled and unpickled once."""


def prepare_contact(row: ContactData, *, workspace_id: str, source: str) -> PreparedContact:
    """The row's identity claim (with its keys' hashes in the workspace) and new profile, as an
    upsert with this source works them out; worked out ahead of the upsert (`upsert_contacts`'
    `prepared`), in an import's parsing process, while the writer writes."""
    traits = identify_traits(row)
    event_traits = DriverValues.json(traits)
    profile = prepare_profile(traits, user_id=row.user_id, source=source, text=event_traits)
    return PreparedContact(row_claim(row, traits, workspace_id=workspace_id), profile, event_traits)
