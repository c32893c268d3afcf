"""Exporting a workspace's contacts as CSV or JSON Lines, streamed page by page.

CSV has one column per trait and external id type found in the workspace, so the export
reads the contacts twice: once for the columns, once for the rows, in one read transaction
(a snapshot on SQLite; REPEATABLE READ on PostgreSQL), so both passes see the same contacts.
Text is UTF-8; the byte order mark (on by default for CSV) makes Excel read it as such.

A process streams at most `EXPORTS_AT_ONCE` exports over HTTP at once (`open_export`).
"""

from __future__ import annotations

import csv
import io
import json
import threading
import weakref
from collections.abc import Callable, Iterator
from enum import StrEnum
from typing import Any

from sqlalchemy.orm import Session

from sodate.contacts import service as contacts
from sodate.contacts.identifiers import EXTERNAL_PREFIX
from sodate.contacts.schemas import ContactOut
from sodate.db.engine import Database
from sodate.errors import SodateError
from sodate.imports.csvfile import FORMULA_QUOTE, quoted_for_spreadsheets

PAGE = 1000
BOM = "\ufeff"
FIXED_COLUMNS = (
    "id",
    "email",
    "phone",
    "user_id",
    "display_name",
    "company",
    "company_key",
    "sources",
    "created_at",
    "updated_at",
    "first_seen_at",
    "last_seen_at",
)
SOURCES_SEPARATOR = "|"
# The address and number have their own columns, normalized; the traits repeat them as given.
TRAITS_IN_COLUMNS = frozenset({"email", "phone"})


class ExportFormat(StrEnum):
    CSV = "csv"
    JSONL = "jsonl"


MEDIA_TYPES = {ExportFormat.CSV: "text/csv", ExportFormat.JSONL: "application/x-ndjson"}

EXPORTS_AT_ONCE = 4
"""Exports a process streams at once. Each holds a pooled connection and one snapshot for as
long as its client reads, a minute for 1M contacts and longer on a slow link: more at once
would take the connections other requests need, and on SQLite every open snapshot keeps the
write-ahead log from starting over."""
EXPORTS_BUSY_RETRY_SECONDS = 30


class ExportsBusy(SodateError):
    status_code = 429
    code = "too_many_exports"
    retry_after_seconds = EXPORTS_BUSY_RETRY_SECONDS


class ExportSlots:
    """At most `size` exports streaming at once in this process."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._free = threading.BoundedSemaphore(size)

    def take(self) -> Callable[[], None]:
        """A slot, or ExportsBusy; the function returned gives it back (once, however often
        it is called)."""
        if not self._free.acquire(blocking=False):
            raise ExportsBusy(
                f"{self._size} exports are already streaming; try again when one is done"
            )
        taken = threading.Lock()

        def give_back() -> None:
            if taken.acquire(blocking=False):  # only the first call finds it free
                self._free.release()

        return give_back


EXPORT_SLOTS = ExportSlots(EXPORTS_AT_ONCE)


def open_export(
    db: Database,
    workspace_id: str,
    *,
    fmt: ExportFormat,
    bom: bool,
    slots: ExportSlots | None = None,
) -> Iterator[bytes]:
    """The export as UTF-8 bytes, to stream; ExportsBusy at once if `slots` (this process's
    `EXPORT_SLOTS` by default) has none free.

    Its slot is given back when the stream ends, is closed, or is dropped unread (a client
    gone before the first byte)."""
    give_back = (slots or EXPORT_SLOTS).take()
    stream = _stream(db, workspace_id, fmt, bom, give_back)
    weakref.finalize(stream, give_back)
    return stream


def _stream(
    db: Database, workspace_id: str, fmt: ExportFormat, bom: bool, give_back: Callable[[], None]
) -> Iterator[bytes]:
    try:
        with db.read() as session:
            for text, _count in export_contacts(session, workspace_id, fmt=fmt, bom=bom):
                yield text.encode()
    finally:
        give_back()


def export_contacts(
    session: Session, workspace_id: str, *, fmt: ExportFormat, bom: bool = False
) -> Iterator[tuple[str, int]]:
    """The export as pieces of text, each with the number of contacts it holds."""
    if session.get_bind().dialect.name == "postgresql":
        session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
    if bom:
        yield BOM, 0
    if fmt is ExportFormat.JSONL:
        for page in _pages(session, workspace_id):
            yield "".join(contact.model_dump_json() + "\n" for contact in page), len(page)
        return
    externals, traits = _columns(session, workspace_id)
    header = [
        *FIXED_COLUMNS,
        *(EXTERNAL_PREFIX + kind for kind in externals),
        *(_trait_column(key) for key in traits),
    ]
    yield _csv_text([header]), 0
    for page in _pages(session, workspace_id):
        yield _csv_text([_csv_row(c, externals, traits) for c in page]), len(page)


def _pages(session: Session, workspace_id: str) -> Iterator[list[ContactOut]]:
    after: int | None = None
    while True:
        page = contacts.list_contacts(
            session, workspace_id, contacts.ContactFilter(), limit=PAGE, after=after
        )
        if page.items:
            yield page.items
        if page.next_cursor is None:
            return
        after = page.items[-1].id


def _columns(session: Session, workspace_id: str) -> tuple[list[str], list[str]]:
    externals: set[str] = set()
    traits: set[str] = set()
    for page in _pages(session, workspace_id):
        for contact in page:
            traits.update(contact.traits)
            externals.update(
                identity.kind.removeprefix(EXTERNAL_PREFIX)
                for identity in contact.identities
                if identity.kind.startswith(EXTERNAL_PREFIX)
            )
    return sorted(externals), sorted(traits - TRAITS_IN_COLUMNS)


def _trait_column(key: str) -> str:
    """A trait's column: its name, unless that would read as another field on import."""
    if key in FIXED_COLUMNS or ":" in key or quoted_for_spreadsheets(key):
        # Also a safe header where a bare `@type` would not be; a name with `:` in it ends
        # with its type, so that `visit:date` is not read as a date trait `visit`.
        return f"trait:{key}:text" if ":" in key else f"trait:{key}"
    return key


def _csv_row(contact: ContactOut, externals: list[str], traits: list[str]) -> list[str]:
    ids = {
        identity.kind.removeprefix(EXTERNAL_PREFIX): identity.value
        for identity in contact.identities
        if identity.kind.startswith(EXTERNAL_PREFIX)
    }
    company = contact.company
    return [
        str(contact.id),
        contact.email or "",
        contact.phone or "",
        contact.user_id or "",
        contact.name or "",
        (company.name or "") if company else "",
        company.group_key if company else "",
        SOURCES_SEPARATOR.join(contact.sources),
        contact.created_at.isoformat(),
        contact.updated_at.isoformat(),
        contact.first_seen_at.isoformat() if contact.first_seen_at else "",
        contact.last_seen_at.isoformat() if contact.last_seen_at else "",
        *(ids.get(kind, "") for kind in externals),
        *(_cell(contact.traits.get(key)) for key in traits),
    ]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _csv_text(rows: list[list[str]]) -> str:
    """Rows of contacts: traits come from anyone with a site's write key, and `=HYPERLINK(…)`
    or `+cmd|…` would run when the export is opened in a spreadsheet, so such cells are
    quoted (`csvfile.quoted_for_spreadsheets`; imports take the quote off again)."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(
        [FORMULA_QUOTE + cell if quoted_for_spreadsheets(cell) else cell for cell in row]
        for row in rows
    )
    return buffer.getvalue()
