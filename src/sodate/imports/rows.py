"""From a CSV record to a contact upsert or an event, or to the reasons it is rejected.

Every problem of a row is reported (line, column, value, reason), and a row with any problem
is rejected whole: half a row is never imported.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any, NamedTuple

from pydantic import ValidationError

from sodate.contacts.identifiers import (
    is_placeholder,
    normalize_email,
    normalize_phone,
    width_folded,
)
from sodate.contacts.prepared import PreparedContact, prepare_contact
from sodate.contacts.schemas import ContactUpsert
from sodate.events.schemas import plausible_event_time
from sodate.imports.csvfile import (
    FORMULA_QUOTE,
    Record,
    quoted_for_spreadsheets,
    undecoded,
)
from sodate.imports.mapping import (
    EMPTY_MARKERS,
    IDENTIFIERS,
    Field,
    Target,
    ValueType,
    coerce,
    parse_datetime,
)
from sodate.imports.models import ImportKind

MAX_ID = 200
MAX_PHONE = 40
MAX_COMPANY_NAME = 300
MAX_EVENT_NAME = 200
MAX_SHOWN = 200


class RowError(NamedTuple):
    line: int
    column: str | None
    value: str | None
    reason: str


class ImportedContact(NamedTuple):
    """The contact a valid row names: what a ContactUpsert would hold, checked cell by cell.

    Rows are tuples because they are parsed in another process: tuples cross it (pickled)
    several times cheaper than dataclasses.
    """

    email: str | None
    phone: str | None
    user_id: str | None
    external_ids: dict[str, str]
    traits: dict[str, Any]
    company_key: str | None


class ParsedRow(NamedTuple):
    """A valid row: the contact it names (and, for events, the event it records)."""

    line: int
    contact: ImportedContact
    company_name: str | None
    event: str | None
    timestamp: datetime | None
    properties: dict[str, Any]
    prepared: PreparedContact
    """The identity claim and new profile of the row's contact (`prepare_contact`): worked
    out here, in the parsing process, not by the writer."""


@dataclass
class _Values:
    email: str | None = None
    phone: str | None = None
    user_id: str | None = None
    external_ids: dict[str, str] = field(default_factory=dict)
    company: str | None = None
    company_key: str | None = None
    event: str | None = None
    timestamp: datetime | None = None
    named: dict[str, Any] = field(default_factory=dict)


_NAMED_VALUES = (Target.TRAIT, Target.PROPERTY)

Take = Callable[[_Values, Field, str], str | None]
"""Stores a cell's value; returns the reason it cannot be used, if any."""


class RowParser:
    """Turns records of one file into parsed rows, with the file's mapping and time zone.

    Each column's handler is chosen once, here: the per-cell work is the least it can be.
    """

    def __init__(
        self,
        kind: ImportKind,
        header: Sequence[str],
        fields: Sequence[Field],
        *,
        encoding: str,
        zone: tzinfo,
        workspace_id: str,
        source: str,
        fixed_event: str | None = None,
        submitted_at: datetime | None = None,
    ) -> None:
        self.header = list(header)
        self.submitted_at = submitted_at
        """When the import was submitted: event rows dated much later are refused."""
        handlers: dict[Target, Take] = {
            Target.TRAIT: self._take_named,
            Target.PROPERTY: self._take_named,
            Target.EMAIL: _take_email,
            Target.PHONE: _take_phone,
            Target.USER_ID: _take_id,
            Target.EXTERNAL: _take_id,
            Target.TIMESTAMP: self._take_timestamp,
            Target.COMPANY: _take_name,
            Target.COMPANY_KEY: _take_name,
            Target.EVENT: _take_name,
        }
        # Most cells are text traits or properties, kept as written: they need no other step.
        self.columns = [
            (
                index,
                header[index],
                column,
                _take_text
                if column.target in _NAMED_VALUES and column.type is ValueType.TEXT
                else handlers[column.target],
            )
            for index, column in enumerate(fields)
            if column.target is not Target.IGNORE
        ]
        self.events = kind is ImportKind.EVENTS
        self.names_fit = _names_fit(fields, events=self.events)
        self.encoding = encoding
        self.zone = zone
        self.fixed_event = fixed_event
        self.workspace_id = workspace_id
        self.source = source
        """The import's workspace and source, which rows' contacts are prepared for."""

    def parse(self, record: Record) -> ParsedRow | list[RowError]:
        line = record.line
        if record.fields is None:
            return [RowError(line, None, None, record.problem)]
        cells = record.fields
        if len(cells) != len(self.header) and not (
            len(cells) > len(self.header) and not "".join(cells[len(self.header) :]).strip()
        ):
            reason = f"{len(cells)} values, but the header has {len(self.header)} columns"
            return [RowError(line, None, None, reason)]
        joined = "".join(cells)
        suspect = undecoded(joined) or "\x00" in joined
        values = _Values()
        errors: list[RowError] = []
        for index, name, column, take in self.columns:
            raw = cells[index].strip()
            if raw in EMPTY_MARKERS:
                continue
            if raw[:1] == FORMULA_QUOTE and quoted_for_spreadsheets(raw[1:]):
                raw = raw[1:]  # as an export quoted it for spreadsheets
            problem = (suspect and self._check_text(raw)) or take(values, column, raw)
            if problem:
                errors.append(RowError(line, name, shown(raw, self.encoding), problem))
        if errors:
            return errors
        return self._build(line, values)

    def _check_text(self, raw: str) -> str | None:
        if undecoded(raw):
            return f"holds bytes that are not valid {self.encoding}"
        if "\x00" in raw:
            return "holds a NUL character"
        return None

    def _take_named(self, values: _Values, column: Field, raw: str) -> str | None:
        try:
            values.named[column.name] = coerce(raw, column.type, self.zone)
        except ValueError as exc:
            return str(exc)
        return None

    def _take_timestamp(self, values: _Values, column: Field, raw: str) -> str | None:
        try:
            timestamp = parse_datetime(width_folded(raw), self.zone)
        except ValueError as exc:
            return str(exc)
        if not plausible_event_time(timestamp, self.submitted_at):
            return "not a time from 1970-01-02 to a day after the import (check the year)"
        values.timestamp = timestamp
        return None

    def _build(self, line: int, values: _Values) -> ParsedRow | list[RowError]:
        if not (values.email or values.phone or values.user_id or values.external_ids):
            names = [name for _, name, column, _ in self.columns if column.target in IDENTIFIERS]
            reason = "no identifier: every identifier column is empty"
            return [RowError(line, ", ".join(names)[:MAX_SHOWN], None, reason)]
        event = values.event or self.fixed_event
        if self.events and not event:
            return [RowError(line, self._name_of(Target.EVENT), None, "no event name")]
        contact = ImportedContact(
            email=values.email,
            phone=values.phone,
            user_id=values.user_id,
            external_ids=values.external_ids,
            traits={} if self.events else values.named,
            company_key=values.company_key or _company_key(values.company),
        )
        # Validating with ContactUpsert would cost more than the rest of the row, and the cells'
        # own checks already keep a row within its limits, but for names that case folding
        # lengthened (known once per file) and very long addresses: those the schema decides.
        if not self.names_fit or (contact.email is not None and len(contact.email) > MAX_ID):
            try:
                ContactUpsert(**contact._asdict())
            except ValidationError as exc:
                first = exc.errors()[0]
                column = ".".join(str(part) for part in first["loc"]) or None
                return [RowError(line, column, None, first["msg"][:MAX_SHOWN])]
        return ParsedRow(
            line=line,
            contact=contact,
            company_name=values.company,
            event=event,
            timestamp=values.timestamp,
            properties=values.named if self.events else {},
            prepared=prepare_contact(contact, workspace_id=self.workspace_id, source=self.source),
        )

    def _name_of(self, target: Target) -> str | None:
        return next((name for _, name, column, _ in self.columns if column.target is target), None)


def _names_fit(fields: Sequence[Field], *, events: bool) -> bool:
    """Whether the file's trait names and external id types are keys ContactUpsert takes."""
    try:
        ContactUpsert(
            user_id="-",
            external_ids={f.name: "-" for f in fields if f.target is Target.EXTERNAL},
            traits={} if events else {f.name: "-" for f in fields if f.target is Target.TRAIT},
        )
    except ValidationError:
        return False
    return True


def _take_text(values: _Values, column: Field, raw: str) -> str | None:
    values.named[column.name] = raw
    return None


def _take_email(values: _Values, column: Field, raw: str) -> str | None:
    text = width_folded(raw)
    if normalize_email(text) is None:
        return "not an email address"
    values.email = text
    return None


def _take_phone(values: _Values, column: Field, raw: str) -> str | None:
    text = width_folded(raw)
    normalized = normalize_phone(text)
    if normalized is None:
        return "not a valid phone number"
    values.phone = text if len(text) <= MAX_PHONE else normalized
    return None


def _take_id(values: _Values, column: Field, raw: str) -> str | None:
    if len(raw) > MAX_ID:
        return f"longer than {MAX_ID} characters"
    if is_placeholder(raw):
        return "a placeholder, not an id"
    if column.target is Target.USER_ID:
        values.user_id = raw
    else:
        values.external_ids[column.name] = raw
    return None


NAME_LIMITS = {Target.COMPANY: MAX_COMPANY_NAME, Target.EVENT: MAX_EVENT_NAME}


def _take_name(values: _Values, column: Field, raw: str) -> str | None:
    limit = NAME_LIMITS.get(column.target, MAX_ID)
    if len(raw) > limit:
        return f"longer than {limit} characters"
    if column.target is Target.COMPANY:
        values.company = raw
    elif column.target is Target.COMPANY_KEY:
        values.company_key = raw
    else:
        values.event = raw
    return None


def _company_key(name: str | None) -> str | None:
    """The group key of a company known by name only: the name, width and spaces evened out."""
    if name is None:
        return None
    return " ".join(width_folded(name).split())[:MAX_ID] or None


def shown(value: str, encoding: str) -> str:
    """A cell's text as an error report can store it: undecodable bytes and NULs escaped."""
    text = value
    if undecoded(text):
        text = text.encode(encoding, "surrogateescape").decode(encoding, "backslashreplace")
    return text.replace("\x00", "\\x00")[:MAX_SHOWN]
