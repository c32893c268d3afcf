"""Parsing a file's records chunk by chunk, in a second process while the caller writes.

Parsing (decoding, splitting, checking every cell) is a large part of an import's work, and
writing is bound to one process (SQLite has one writer). So a local import starts a process
that parses the file, at most AHEAD chunks ahead of the writer. Each chunk carries where it
ends in the file, so the writer commits the import's position with the chunk's rows exactly
as before, and an interrupted import resumes there.
"""

from __future__ import annotations

import functools
import itertools
import multiprocessing
import queue
import traceback
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from sodate.contacts.identifiers import IdentityKey
from sodate.contacts.prepared import PreparedContact
from sodate.contacts.profiles import PreparedProfile
from sodate.contacts.resolution import IdentityClaim
from sodate.imports.csvfile import Layout, Record, iter_records
from sodate.imports.rows import ImportedContact, ParsedRow, RowError, RowParser
from sodate.runtime import collection_deferred, tune_garbage_collection

AHEAD = 2
"""Parsed chunks waiting for the writer: enough to keep it busy, few enough for memory."""
POLL_SECONDS = 1.0


@dataclass
class ParsedChunk:
    """The next records of a file, parsed: what writing them needs, and no session."""

    rows: list[ParsedRow]
    errors: list[RowError]
    total: int
    """Rows of data: records that are not blank lines."""
    rejected: int
    read: int
    """Records read, blank lines too: fewer than the limit at the end of the file."""
    end: tuple[int, int] | None
    """The byte offset and line after the last record read; None when none was."""

    def __reduce__(self) -> tuple[Any, ...]:
        # How a chunk crosses from the parsing process: its rows as plain tuples. Pickle
        # reduces every named tuple by a call to Python (some 0.8 µs each, seven a row) and
        # rebuilds it by another; plain tuples are C's work alone. In a script, 5,000 rows:
        # pickling 9.8 -> 4.7 µs a row (flattening included), unpickling 5.2 -> 5.0.
        rows = [_row_fields(row) for row in self.rows]
        return (_chunk, (rows, self.errors, self.total, self.rejected, self.read, self.end))


def _row_fields(row: ParsedRow) -> tuple[Any, ...]:
    prepared, claim = row.prepared, row.prepared.claim
    return (
        row.line,
        tuple(row.contact),
        row.company_name,
        row.event,
        row.timestamp,
        row.properties,
        tuple(map(tuple, claim.keys)),
        tuple(map(tuple, claim.aliases)),
        claim.key_hashes,
        tuple(prepared.profile),
        prepared.event_traits,
    )


_named = tuple.__new__
"""A named tuple of its fields without a call to Python: its `_make` less the length check,
which `_row_fields` makes needless."""


def _chunk(
    rows: list[tuple[Any, ...]],
    errors: list[RowError],
    total: int,
    rejected: int,
    read: int,
    end: tuple[int, int] | None,
) -> ParsedChunk:
    return ParsedChunk([_parsed_row(fields) for fields in rows], errors, total, rejected, read, end)


def _parsed_row(fields: tuple[Any, ...]) -> ParsedRow:
    line, contact, company, event, timestamp, properties, keys, aliases, hashes, profile, text = (
        fields
    )
    claim = _named(
        IdentityClaim,
        (
            tuple([_named(IdentityKey, key) for key in keys]),
            tuple([_named(IdentityKey, key) for key in aliases]),
            hashes,
        ),
    )
    prepared = _named(PreparedContact, (claim, _named(PreparedProfile, profile), text))
    return _named(
        ParsedRow,
        (line, _named(ImportedContact, contact), company, event, timestamp, properties, prepared),
    )


class ParserStopped(RuntimeError):
    """The parsing process failed or died; the import stops where the writer is."""


def parse_chunk(parser: RowParser, records: Iterator[Record], limit: int) -> ParsedChunk:
    """Parse the next `limit` records (fewer at the end of the file)."""
    chunk = ParsedChunk([], [], 0, 0, 0, None)
    item: Record | None = None
    for item in itertools.islice(records, limit):
        chunk.read += 1
        if item.fields is not None and not "".join(item.fields).strip():
            continue  # a blank line carries no data
        chunk.total += 1
        result = parser.parse(item)
        if isinstance(result, list):
            chunk.errors.extend(result)
            chunk.rejected += 1
        else:
            chunk.rows.append(result)
    if item is not None:
        chunk.end = (item.end, item.next_line)
    return chunk


def parsed_chunks(
    path: Path, layout: Layout, make_parser: Callable[[], RowParser], *, limit: int
) -> Generator[ParsedChunk, None, None]:
    """The file's chunks of `limit` records from its first data record, parsed, in order.

    A second process takes a second or two to start (it imports the application): until it
    says it is ready, chunks are parsed here; then it goes on from where they ended. A file
    of one chunk needs no second process. Closing the iterator early stops it.
    """
    parser = make_parser()
    with path.open("rb") as stream:
        records = iter_records(
            stream,
            layout.encoding,
            layout.delimiter,
            start=layout.data_start,
            line=layout.data_line,
        )
        first_records = list(itertools.islice(records, limit))
        if len(first_records) < limit:
            yield parse_chunk(parser, iter(first_records), limit)
            return
        # Spawned, not forked: the caller may hold database connections and threads.
        context = multiprocessing.get_context("spawn")
        ready, starts = context.Event(), context.Queue(maxsize=1)
        chunks: multiprocessing.Queue[ParsedChunk | str] = context.Queue(maxsize=AHEAD)
        process = context.Process(
            target=_parse_rest,
            args=(str(path), layout, make_parser, limit, ready, starts, chunks),
            name="sodate-import-parser",
            daemon=True,
        )
        process.start()
        try:
            chunk = parse_chunk(parser, iter(first_records), limit)
            while True:
                yield chunk
                if chunk.read < limit or chunk.end is None:
                    return
                if ready.is_set():
                    break
                chunk = parse_chunk(parser, records, limit)
            starts.put(chunk.end)
            while True:
                chunk = _next(chunks, process)
                yield chunk
                if chunk.read < limit:
                    return
        finally:
            if process.is_alive():
                process.terminate()
            process.join()
            chunks.close()


def _next(chunks: multiprocessing.Queue[ParsedChunk | str], process: BaseProcess) -> ParsedChunk:
    while True:
        try:
            item = chunks.get(timeout=POLL_SECONDS)
        except queue.Empty:
            if process.is_alive():
                continue
            try:  # what it sent just before it ended
                item = chunks.get(timeout=POLL_SECONDS)
            except queue.Empty:
                raise ParserStopped(
                    f"the parsing process ended early (exit code {process.exitcode})"
                ) from None
        if isinstance(item, str):
            raise ParserStopped(item)
        return item


def _parse_rest(
    path: str,
    layout: Layout,
    make_parser: Callable[[], RowParser],
    limit: int,
    ready: Any,
    starts: Any,
    chunks: Any,
) -> None:
    """The second process: once told where, parse to the end of the file, chunk by chunk."""
    tune_garbage_collection()
    try:
        parser = make_parser()
        ready.set()
        position, line = _waiting(starts.get)
        with open(path, "rb") as stream:
            records = iter_records(
                stream, layout.encoding, layout.delimiter, start=position, line=line
            )
            while True:
                # The collector would walk the chunk's rows again and again while they are
                # made (3 µs a row at 200,000 rows, a tenth of parsing them).
                with collection_deferred():
                    chunk = parse_chunk(parser, records, limit)
                _waiting(functools.partial(chunks.put, chunk))
                if chunk.read < limit:
                    return
    except Exception as exc:  # the writer reports it, and marks the import failed
        traceback.print_exc()
        chunks.put(f"parsing stopped: {type(exc).__name__}: {exc}")


def _waiting(step: Callable[..., Any]) -> Any:
    """Run a blocking queue step; end this process if the writer ended without closing it."""
    parent = multiprocessing.parent_process()
    while True:
        try:
            return step(timeout=POLL_SECONDS)
        except (queue.Empty, queue.Full):
            if parent is not None and not parent.is_alive():
                raise SystemExit(1) from None
