"""Parsing a file in a second process: the same chunks, in order, as parsing it in one."""

from __future__ import annotations

import functools
import multiprocessing
import pickle
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sodate.imports.csvfile import iter_records, read_layout
from sodate.imports.mapping import resolve_mapping
from sodate.imports.models import ImportKind
from sodate.imports.reading import ParsedChunk, parse_chunk, parsed_chunks
from sodate.imports.rows import RowParser
from tests.imports.helpers import write_csv

HEADER = ["メールアドレス", "氏名", "年齢"]


def _file(path: Path) -> Path:
    rows: list[list[str]] = [HEADER]
    for n in range(60):
        if n % 7 == 3:
            rows.append(["", "", ""])  # a blank line: read, not counted
        elif n % 11 == 5:
            rows.append([f"user{n} at example.jp", "名無し", "x"])  # two bad cells
        else:
            rows.append([f"user{n}@example.jp", f"山田 {n}", str(20 + n)])
    return write_csv(path, rows, encoding="cp932")


AGES = {"年齢": "age:int"}


def _make_parser(
    path: Path, kind: ImportKind = ImportKind.CONTACTS, mapping: dict[str, str] = AGES
) -> functools.partial[RowParser]:
    with path.open("rb") as stream:
        layout = read_layout(stream)
    fields = resolve_mapping(kind, layout.header, mapping)
    return functools.partial(
        RowParser,
        kind,
        layout.header,
        fields,
        encoding=layout.encoding,
        zone=ZoneInfo("Asia/Tokyo"),
        workspace_id="w8k2m4q7",
        source="import",
    )


def _in_one_process(
    path: Path, limit: int, make_parser: Callable[[], RowParser] | None = None
) -> list[ParsedChunk]:
    with path.open("rb") as stream:
        layout = read_layout(stream)
        records = iter_records(
            stream, layout.encoding, layout.delimiter, start=layout.data_start, line=2
        )
        parser = (make_parser or _make_parser(path))()
        chunks = [parse_chunk(parser, records, limit)]
        while chunks[-1].read == limit:
            chunks.append(parse_chunk(parser, records, limit))
    return chunks


def test_chunks_parsed_by_the_second_process_are_those_of_one(tmp_path: Path) -> None:
    path = _file(tmp_path / "contacts.csv")
    with path.open("rb") as stream:
        layout = read_layout(stream)
    chunks = []
    for chunk in parsed_chunks(path, layout, _make_parser(path), limit=4):
        chunks.append(chunk)
        if len(chunks) == 1:
            time.sleep(3)  # the second process is ready by now: it parses the rest
    expected = _in_one_process(path, 4)
    assert chunks == expected
    # Equal tuples are equal whatever their class: the rows must cross as the named tuples
    # the writer reads by attribute, which they are rebuilt as (`ParsedChunk`).
    assert [_shape(chunk.rows) for chunk in chunks] == [_shape(c.rows) for c in expected]
    assert sum(chunk.total for chunk in chunks) == 60 - 9
    assert sum(chunk.rejected for chunk in chunks) == 4  # rows 5, 16, 27, 49
    assert chunks[-1].read < 4


def _shape(value: Any) -> Any:
    """The classes a value is made of, all the way down."""
    if isinstance(value, tuple | list):
        return (type(value), tuple(_shape(item) for item in value))
    if isinstance(value, dict):
        return (dict, tuple((key, _shape(item)) for key, item in value.items()))
    return type(value)


def test_an_events_chunk_crosses_processes_whole(tmp_path: Path) -> None:
    header = ["email", "event", "timestamp", "user_id", "external:line", "amount"]
    path = write_csv(
        tmp_path / "events.csv",
        [
            header,
            ["taro@example.jp", "Order Completed", "2026-03-01 10:00", "u-1", "U123", "1200"],
            ["", "Store Visit", "2026/3/2", "", "U456", ""],
        ],
    )
    [chunk] = _in_one_process(
        path, 10, _make_parser(path, ImportKind.EVENTS, {"amount": "amount:int"})
    )
    assert len(chunk.rows) == 2
    crossed = pickle.loads(pickle.dumps(chunk))  # noqa: S301 (bytes it made itself)
    assert crossed == chunk
    assert _shape(crossed.rows) == _shape(chunk.rows)
    assert crossed.rows[0].prepared.claim.keys[0] == ("user_id", "u-1")


def test_a_file_of_one_chunk_is_parsed_here(tmp_path: Path) -> None:
    path = _file(tmp_path / "contacts.csv")
    with path.open("rb") as stream:
        layout = read_layout(stream)
    chunks = list(parsed_chunks(path, layout, _make_parser(path), limit=100))
    assert chunks == _in_one_process(path, 100)
    assert len(chunks) == 1


def test_stopping_early_stops_the_second_process(tmp_path: Path) -> None:
    path = _file(tmp_path / "contacts.csv")
    with path.open("rb") as stream:
        layout = read_layout(stream)
    chunks = parsed_chunks(path, layout, _make_parser(path), limit=2)
    first = next(chunks)
    time.sleep(3)
    assert next(chunks).end != first.end
    chunks.close()
    assert not [p for p in multiprocessing.active_children() if p.name == "sodate-import-parser"]
