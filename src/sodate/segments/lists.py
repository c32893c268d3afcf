"""Static lists from CSV files: each row names one existing contact; the good rows are
applied, the bad ones reported with their line, column and reason (as `loc` and `msg`).

Files are read as imports read them (`sodate.imports.csvfile`): UTF-8 with or without a byte
order mark, or CP932; comma- or tab-separated; a header on the first line; blank lines
skipped. Identifying columns are recognized by the names imports give identifiers by default
(`email`, `メールアドレス`, `電話番号`, `会員ID`, …) plus `id`, compared the same way, so a
business-card file that imported contacts adds them to a list as it is, and so does an export.
A row is read from its first non-empty identifying cell, in the order id, email, phone,
user_id (columns of one kind in header order); its value is normalized as identity resolution
does, and it must lead to a contact that exists: nothing is created.
"""

from __future__ import annotations

import heapq
import itertools
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import BinaryIO, NamedTuple

from sqlalchemy.orm import Session

from sodate.contacts import service as contacts
from sodate.contacts.identifiers import (
    IdentityKind,
    is_placeholder,
    normalize_email,
    normalize_phone,
    width_folded,
)
from sodate.db.locks import lock_workspace
from sodate.errors import InvalidInput
from sodate.imports.csvfile import (
    Encoding,
    FileFormatError,
    Record,
    iter_records,
    read_layout,
    undecoded,
)
from sodate.imports.mapping import COMMON_DEFAULTS, EMPTY_MARKERS, header_key
from sodate.imports.rows import MAX_ID
from sodate.segments import service
from sodate.segments.schemas import FileRowError, MembersFromFile

MAX_ERRORS = 1000
"""Rejected rows listed in a result; `error_count` counts them all."""
MAX_CONTACT_ID = 2**62
# `change_members` binds all its contacts in one IN list: as many as the JSON route takes.
MEMBERS_PER_CALL = 10_000


class IdColumn(StrEnum):
    """The kinds of identifying column, in the order a row's cells are tried."""

    ID = "id"
    EMAIL = "email"
    PHONE = "phone"
    USER_ID = "user_id"


TRY_ORDER = {kind: position for position, kind in enumerate(IdColumn)}
LOOKUP_KIND = {
    IdColumn.ID: contacts.CONTACT_ID,
    IdColumn.EMAIL: IdentityKind.EMAIL.value,
    IdColumn.PHONE: IdentityKind.PHONE.value,
    IdColumn.USER_ID: IdentityKind.USER_ID.value,
}
NOUN = {
    IdColumn.ID: "id",
    IdColumn.EMAIL: "email address",
    IdColumn.PHONE: "phone number",
    IdColumn.USER_ID: "user id",
}
HEADER_KINDS = {
    **{key: IdColumn(spec) for key, spec in COMMON_DEFAULTS.items()},
    header_key("id"): IdColumn.ID,
    header_key("contact_id"): IdColumn.ID,
}
EXPECTED = "id, email, phone or user_id (or メールアドレス, 電話番号, 会員ID …)"


class NamedRow(NamedTuple):
    """A good row: the normalized value of its identifying cell; a tuple, as files are long."""

    line: int
    column: str
    kind: IdColumn
    value: str


class RejectedRow(NamedTuple):
    line: int
    column: str | None
    """The header of the column at fault; None when the row as a whole is."""
    reason: str
    type: str

    def out(self) -> FileRowError:
        where: list[str | int] = ["line", self.line]
        return FileRowError(
            loc=where if self.column is None else [*where, self.column],
            msg=self.reason,
            type=self.type,
        )


@dataclass
class ListFile:
    """A file read: the rows that name someone, and the first of those that cannot."""

    encoding: str
    rows: int = 0
    named: list[NamedRow] = field(default_factory=list)
    errors: list[RejectedRow] = field(default_factory=list)
    error_count: int = 0

    def reject(self, line: int, column: str | None, reason: str, error_type: str) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(RejectedRow(line, column, reason, error_type))


def read_list_file(stream: BinaryIO, encoding: Encoding = Encoding.AUTO) -> ListFile:
    """Read every row of a file; InvalidInput when the file is unreadable or its header has no
    identifying column (then nothing can be applied)."""
    try:
        layout = read_layout(stream, encoding)
    except FileFormatError as exc:
        raise InvalidInput(
            str(exc), details=[{"loc": ["file"], "msg": str(exc), "type": "file"}]
        ) from None
    columns = sorted(
        (
            (kind, index)
            for index, name in enumerate(layout.header)
            if (kind := HEADER_KINDS.get(header_key(name))) is not None
        ),
        key=lambda column: (TRY_ORDER[column[0]], column[1]),
    )
    if not columns:
        message = (
            f"no column names the contacts: the header needs a column {EXPECTED}; "
            f"its columns are: {', '.join(layout.header)}"
        )
        raise InvalidInput(
            message, details=[{"loc": ["file", "header"], "msg": message, "type": "header"}]
        )
    parsed = ListFile(encoding=layout.encoding)
    for record in iter_records(
        stream, layout.encoding, layout.delimiter, start=layout.data_start, line=layout.data_line
    ):
        if record.fields is not None and not "".join(record.fields).strip():
            continue  # a blank line carries no data
        parsed.rows += 1
        _read_row(record, layout.header, columns, parsed)
    return parsed


def _read_row(
    record: Record, header: list[str], columns: list[tuple[IdColumn, int]], parsed: ListFile
) -> None:
    line, cells = record.line, record.fields
    if cells is None:
        parsed.reject(line, None, record.problem, "csv")
        return
    # As imports do: a short row (or a long one) has lost its alignment with the header, and
    # its identifying cell may hold another column's value.
    if len(cells) != len(header) and not (
        len(cells) > len(header) and not "".join(cells[len(header) :]).strip()
    ):
        parsed.reject(
            line, None, f"{len(cells)} values, but the header has {len(header)} columns", "columns"
        )
        return
    for kind, index in columns:
        raw = cells[index].strip()
        if raw in EMPTY_MARKERS:
            continue
        value, problem = _normalized(kind, raw, parsed.encoding)
        if value is None:
            parsed.reject(line, header[index], problem, "value")
        else:
            parsed.named.append(NamedRow(line, header[index], kind, value))
        return
    names = ", ".join(header[index] for _, index in columns)
    parsed.reject(
        line, None, f"no identifier: every identifying column is empty ({names})", "empty"
    )


def _normalized(kind: IdColumn, raw: str, encoding: str) -> tuple[str | None, str]:
    """The cell's value as the contact's identity holds it, or None and the reason."""
    if undecoded(raw):
        return None, f"holds bytes that are not valid {encoding}"
    if "\x00" in raw:
        return None, "holds a NUL character"
    text = width_folded(raw)
    if kind is IdColumn.ID:
        if (
            text.isascii()
            and text.isdigit()
            and len(text) <= 20
            and 1 <= int(text) <= MAX_CONTACT_ID
        ):
            return str(int(text)), ""
        return None, "not a contact id (a whole number)"
    if kind is IdColumn.EMAIL:
        email = normalize_email(text)
        return (email, "") if email else (None, "not an email address")
    if kind is IdColumn.PHONE:
        phone = normalize_phone(text)
        return (phone, "") if phone else (None, "not a valid phone number")
    if len(raw) > MAX_ID:
        return None, f"longer than {MAX_ID} characters"
    if is_placeholder(raw):
        return None, "a placeholder, not an id"
    return raw, ""


def apply_rows(
    session: Session,
    workspace_id: str,
    key: str,
    parsed: ListFile,
    *,
    add: bool,
    now: datetime,
) -> MembersFromFile:
    """Add the contacts the file's good rows name to a static list (or remove them), through
    `change_members`, so entries and exits are recorded and the segments reading the list
    follow. Rows naming no contact of the workspace are reported; nothing else is refused."""
    # Resolved under the lock `change_members` takes: a merge in between would turn a
    # contact found here into a redirect, which `change_members` refuses.
    lock_workspace(session, workspace_id, wait=True)
    service.static_list(session, workspace_id, key)
    values: dict[IdColumn, list[str]] = defaultdict(list)
    for row in parsed.named:
        values[row.kind].append(row.value)
    found = {
        kind: contacts.live_contacts_by(session, workspace_id, LOOKUP_KIND[kind], kind_values)
        for kind, kind_values in values.items()
    }
    matched: list[int] = []
    unknown = ListFile(encoding=parsed.encoding)
    for row in parsed.named:
        contact = found[row.kind].get(row.value)
        if contact is None:
            unknown.reject(row.line, row.column, f"no contact has this {NOUN[row.kind]}", "contact")
        else:
            matched.append(contact)
    wanted = sorted(set(matched))
    changed = sum(
        service.change_members(
            session,
            workspace_id,
            key,
            wanted[start : start + MEMBERS_PER_CALL],
            add=add,
            now=now,
        )
        for start in range(0, len(wanted), MEMBERS_PER_CALL)
    )
    errors = heapq.merge(parsed.errors, unknown.errors, key=lambda error: error.line)
    return MembersFromFile(
        rows=parsed.rows,
        matched=len(matched),
        changed=changed,
        errors=[error.out() for error in itertools.islice(errors, MAX_ERRORS)],
        error_count=parsed.error_count + unknown.error_count,
    )
