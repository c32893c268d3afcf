"""Reading CSV files: encodings, delimiters, line numbers and offsets, stored blocks."""

from __future__ import annotations

import io

import pytest

from sodate.imports.csvfile import (
    MAX_RECORD_LINES,
    BlockStream,
    Encoding,
    FileFormatError,
    iter_records,
    read_layout,
    undecoded,
)
from tests.imports.helpers import csv_bytes

ROWS = [["氏名", "会社名", "メールアドレス"], ["山田 太郎", "株式会社サンプル", "taro@example.jp"]]


@pytest.mark.parametrize(
    ("data", "encoding"),
    [
        (csv_bytes(ROWS), "utf-8"),
        (csv_bytes(ROWS, bom=True), "utf-8"),
        (csv_bytes(ROWS, "cp932"), "cp932"),
        (csv_bytes([["email"], ["a@example.jp"]]), "utf-8"),
    ],
    ids=["utf-8", "utf-8 with BOM", "cp932", "ascii"],
)
def test_encoding_is_detected(data: bytes, encoding: str) -> None:
    layout = read_layout(io.BytesIO(data))
    assert layout.encoding == encoding
    assert layout.header[0] in ("氏名", "email")
    records = list(
        iter_records(
            io.BytesIO(data), encoding, ",", start=layout.data_start, line=layout.data_line
        )
    )
    assert [record.line for record in records] == [2]
    assert records[0].fields is not None
    assert records[0].fields[0] in ("山田 太郎", "a@example.jp")


def test_a_cp932_file_that_starts_in_ascii_is_still_cp932() -> None:
    rows = [["email", "name"]] + [[f"p{i}@example.jp", "x"] for i in range(5000)]
    data = csv_bytes([*rows, ["last@example.jp", "髙橋 ①"]], "cp932")
    layout = read_layout(io.BytesIO(data))
    assert layout.encoding == "cp932"
    last = list(iter_records(io.BytesIO(data), "cp932", ",", start=0, line=1))[-1]
    assert last.fields == ["last@example.jp", "髙橋 ①"]


def test_mostly_utf8_with_one_bad_byte_stays_utf8_and_the_row_shows_it() -> None:
    data = csv_bytes(ROWS) + "佐藤 花子,株式会社テスト,".encode() + b"bad\xff@example.jp\r\n"
    layout = read_layout(io.BytesIO(data))
    assert layout.encoding == "utf-8"
    records = list(iter_records(io.BytesIO(data), "utf-8", ",", start=layout.data_start, line=2))
    assert records[1].fields is not None
    assert undecoded(records[1].fields[2])
    assert not undecoded(records[0].fields[2] if records[0].fields else "")


def test_encoding_can_be_forced() -> None:
    data = csv_bytes(ROWS, "cp932")
    assert read_layout(io.BytesIO(data), Encoding.CP932).encoding == "cp932"
    # Forced to UTF-8, the Shift_JIS header does not decode: the file is refused, not garbled.
    with pytest.raises(FileFormatError, match="header"):
        read_layout(io.BytesIO(data), Encoding.UTF8)


def test_tab_separated_files() -> None:
    data = "email\t氏名\r\na@example.jp\t山田\r\n".encode()
    layout = read_layout(io.BytesIO(data))
    assert (layout.delimiter, layout.header) == ("\t", ["email", "氏名"])


@pytest.mark.parametrize(
    ("data", "message"),
    [(b"", "empty"), (b"\r\n\r\n", "empty"), ("email\n".encode("utf-16"), "UTF-16")],
)
def test_files_that_cannot_be_read(data: bytes, message: str) -> None:
    with pytest.raises(FileFormatError, match=message):
        read_layout(io.BytesIO(data))


def test_records_know_their_line_and_where_the_next_one_starts() -> None:
    data = b'a,b\n1,"two\nlines"\n3,4\n5,"unterminated\n'
    layout = read_layout(io.BytesIO(data))
    records = list(
        iter_records(io.BytesIO(data), "utf-8", ",", start=layout.data_start, line=layout.data_line)
    )
    assert [(r.line, r.fields) for r in records[:2]] == [(2, ["1", "two\nlines"]), (4, ["3", "4"])]
    assert records[2].line == 5
    # Resuming at a record's end gives the records after it, with the right line numbers.
    resumed = list(
        iter_records(
            io.BytesIO(data), "utf-8", ",", start=records[0].end, line=records[0].next_line
        )
    )
    assert [(r.line, r.fields) for r in resumed[:1]] == [(4, ["3", "4"])]


def _records(data: bytes) -> list[tuple[int, list[str] | None, str]]:
    layout = read_layout(io.BytesIO(data))
    return [
        (record.line, record.fields, record.problem)
        for record in iter_records(
            io.BytesIO(data), "utf-8", ",", start=layout.data_start, line=layout.data_line
        )
    ]


def test_a_quote_left_open_loses_no_line_after_it() -> None:
    data = 'メール,メモ\nq1@example.jp,"27インチ\nq2@example.jp,普通\nq3@example.jp,普通\n'.encode()
    assert _records(data) == [
        (2, None, 'bad CSV: a value in quotes is not closed (a " opens it on this line)'),
        (3, ["q2@example.jp", "普通"], ""),
        (4, ["q3@example.jp", "普通"], ""),
    ]


def test_a_quote_closed_by_a_later_stray_quote_loses_no_line_either() -> None:
    data = b'email,note\na@x.jp,"open\nb@x.jp,fine\nc@x.jp,"oops\nd@x.jp,fine\n'
    assert _records(data) == [
        (2, None, 'bad CSV: text follows a closing " (a " inside a value is written "")'),
        (3, ["b@x.jp", "fine"], ""),
        (4, None, 'bad CSV: a value in quotes is not closed (a " opens it on this line)'),
        (5, ["d@x.jp", "fine"], ""),
    ]


def test_a_value_in_quotes_may_span_lines_but_not_hundreds() -> None:
    note = "\n".join(f"line {n}" for n in range(MAX_RECORD_LINES))
    long_note = "\n".join(f"line {n}" for n in range(MAX_RECORD_LINES + 1))
    data = f'email,note\na@x.jp,"{note}"\nb@x.jp,"{long_note}"\nc@x.jp,ok\n'.encode()
    records = _records(data)
    assert records[0] == (2, ["a@x.jp", note], "")
    bad = 2 + MAX_RECORD_LINES
    assert records[1] == (
        bad,
        None,
        f"bad CSV: a value in quotes runs over more than {MAX_RECORD_LINES} lines"
        ' (is a closing " missing?)',
    )
    # Reading goes on at the next line: the lines of the long value come as records of their
    # own (reported, since they have one value), and the row after it is read.
    assert records[2] == (bad + 1, ["line 1"], "")
    assert records[-1] == (bad + MAX_RECORD_LINES + 1, ["c@x.jp", "ok"], "")


def test_blank_lines_before_the_header_are_skipped() -> None:
    data = "\ufeff\n\r\nemail,氏名\na@example.jp,山田\n".encode()
    layout = read_layout(io.BytesIO(data))
    assert (layout.header, layout.data_line) == (["email", "氏名"], 4)
    assert _records(data) == [(4, ["a@example.jp", "山田"], "")]


def test_block_stream_reads_across_blocks_from_any_offset() -> None:
    data = csv_bytes([["email", "名前"]] + [[f"p{i}@example.jp", "山田"] for i in range(300)])
    blocks = [data[i : i + 64] for i in range(0, len(data), 64)]
    fetched: list[int] = []

    def fetch(seq: int) -> bytes | None:
        fetched.append(seq)
        return blocks[seq] if seq < len(blocks) else None

    stream = io.BufferedReader(BlockStream(fetch, 64), buffer_size=100)
    records = list(iter_records(stream, "utf-8", ",", start=0, line=1))
    assert len(records) == 301
    assert records[-1].fields == ["p299@example.jp", "山田"]
    middle = records[150]
    stream = io.BufferedReader(BlockStream(fetch, 64))
    tail = list(iter_records(stream, "utf-8", ",", start=middle.end, line=middle.next_line))
    assert tail[0].fields == ["p150@example.jp", "山田"]
    assert tail[0].line == 152
