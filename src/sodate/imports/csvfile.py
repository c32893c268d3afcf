"""Reading CSV files: the encoding, the header, and records with their line and byte offset.

Files are read as bytes and split on b"\\n" before decoding: in UTF-8 and in CP932 a newline
byte is always a newline (no multi-byte character contains 0x0A), so every record ends at a
known byte offset and an import can resume there. Bytes that do not decode are kept as lone
surrogates (`surrogateescape`), so the row that holds them is reported rather than the file
refused.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import re
import zlib
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import BinaryIO, NamedTuple

from sodate.errors import InvalidInput, UnsupportedMediaType

SCAN_BLOCK = 1 << 20
UTF8_BOM = codecs.BOM_UTF8
UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
UNDECODED = re.compile("[\udc80-\udcff]")
DELIMITERS = (",", "\t")


class Encoding(StrEnum):
    AUTO = "auto"
    UTF8 = "utf-8"
    CP932 = "cp932"


class FileFormatError(Exception):
    """The file cannot be imported at all (as opposed to some of its rows)."""


@dataclass(frozen=True)
class Layout:
    """What the start of a file says: how to decode it, split it, and its header."""

    encoding: str
    delimiter: str
    header: list[str]
    data_start: int
    """Byte offset of the first record after the header."""
    data_line: int
    """Line number of that record (1-based)."""


class Record(NamedTuple):
    """One record of a file; a tuple, because an import makes millions of them."""

    line: int
    """The line the record starts on (1-based, as an editor shows it)."""
    end: int
    """Byte offset just after the record."""
    next_line: int
    """The line the next record starts on."""
    fields: list[str] | None
    """None when the CSV syntax itself is broken; `problem` says how."""
    problem: str = ""


def read_layout(stream: BinaryIO, requested: Encoding = Encoding.AUTO) -> Layout:
    """Detect the encoding (unless given), the delimiter and the header of a file."""
    stream.seek(0)
    start = stream.read(4)
    if start.startswith(UTF16_BOMS):
        raise FileFormatError(
            "UTF-16 files are not supported: save the file as CSV (UTF-8 or Shift_JIS)"
        )
    has_bom = start.startswith(UTF8_BOM)
    offset = len(UTF8_BOM) if has_bom else 0
    if requested is not Encoding.AUTO:
        encoding = requested.value
    elif has_bom:
        encoding = Encoding.UTF8.value
    else:
        encoding = _detect(stream, offset)
    stream.seek(offset)
    line = 1
    while (first := stream.readline()) and not first.strip():  # blank lines before the header
        offset += len(first)
        line += 1
    if not first:
        raise FileFormatError("the file is empty: its first line should be a header")
    text = first.decode(encoding, "surrogateescape")
    delimiter = max(DELIMITERS, key=text.count)
    records = iter_records(stream, encoding, delimiter, start=offset, line=line)
    header_record = next(records)
    header_text = "".join(header_record.fields or ())
    if header_record.fields is None or UNDECODED.search(header_text) or "\x00" in header_text:
        raise FileFormatError(f"the header line cannot be read as {encoding}")
    header = [name.strip() for name in header_record.fields]
    return Layout(
        encoding=encoding,
        delimiter=delimiter,
        header=header,
        data_start=header_record.end,
        data_line=header_record.next_line,
    )


def _detect(stream: BinaryIO, offset: int) -> str:
    """UTF-8 unless the file reads better as CP932 (Shift_JIS as Japanese Excel writes it).

    The whole file is scanned, in blocks (constant memory): a CP932 file often starts with
    lines of ASCII, so a prefix proves nothing. UTF-8 is a strict format: CP932 text read as
    UTF-8 gives almost nothing but bad bytes, so a file with more well-formed non-ASCII
    characters than bad bytes is UTF-8 with a few damaged cells (reported row by row).
    """
    decoder = codecs.getincrementaldecoder(Encoding.UTF8.value)("surrogateescape")
    stream.seek(offset)
    good = bad = 0
    while True:
        block = stream.read(SCAN_BLOCK)
        text = decoder.decode(block, final=not block)
        undecodable = len(UNDECODED.findall(text))
        bad += undecodable
        good += len(text) - len(text.encode("ascii", "ignore")) - undecodable
        if not block:
            break
    return Encoding.UTF8.value if good > bad or bad == 0 else Encoding.CP932.value


MAX_RECORD_LINES = 100
"""The most lines one record may span: a value in quotes may hold line breaks (an address, a
note), but one that runs on longer is taken for a quote left open by mistake."""


def iter_records(
    stream: BinaryIO, encoding: str, delimiter: str, *, start: int, line: int
) -> Iterator[Record]:
    """The records from byte offset `start`, which begins line `line`.

    A record whose CSV is broken is given with its problem and no fields, and reading goes on
    at the line after the one it starts on: a quote left open (`"27インチ`) would otherwise
    take in every line after it as part of one value, and those rows would be lost unseen.
    """
    resume: tuple[int, int] | None = (start, line)
    while resume is not None:
        resume = yield from _records_until_broken(stream, encoding, delimiter, *resume)


def _records_until_broken(
    stream: BinaryIO, encoding: str, delimiter: str, start: int, line: int
) -> Generator[Record, None, tuple[int, int] | None]:
    """Records from `start` up to the first broken one (included); then where to go on."""
    stream.seek(start)
    consumed = start
    ends: list[int] = []
    """The byte offset after each line of the record being read."""

    def decoded() -> Iterator[str]:
        nonlocal consumed
        for raw in stream:
            consumed += len(raw)
            ends.append(consumed)
            yield raw.decode(encoding, "surrogateescape")

    # Strict: a quote still open at the end of the file is an error, not a value.
    reader = csv.reader(decoded(), delimiter=delimiter, strict=True)
    while True:
        first_line = line
        ends.clear()
        try:
            fields = next(reader)
        except StopIteration:
            return None
        except csv.Error as exc:
            problem = _broken(str(exc))
        else:
            line += len(ends)
            if len(ends) <= MAX_RECORD_LINES:
                yield Record(first_line, consumed, line, fields)
                continue
            problem = (
                f"bad CSV: a value in quotes runs over more than {MAX_RECORD_LINES} lines"
                ' (is a closing " missing?)'
            )
        after_first = ends[0] if ends else consumed
        yield Record(first_line, after_first, first_line + 1, None, problem)
        return after_first, first_line + 1


def _broken(reason: str) -> str:
    if reason == "unexpected end of data":
        return 'bad CSV: a value in quotes is not closed (a " opens it on this line)'
    if reason.startswith("field larger than field limit"):
        return 'bad CSV: a value is longer than 128 KB (is a closing " missing?)'
    if reason.endswith("expected after '\"'"):
        return 'bad CSV: text follows a closing " (a " inside a value is written "")'
    return f"bad CSV: {reason}"


def uploaded_csv(
    body: bytes, *, content_type: str | None, content_encoding: str | None, limit: int
) -> bytes:
    """A CSV file sent as a request body, uncompressed when it came gzip-compressed (within
    `limit` bytes); a form upload or another compression is refused with what to send."""
    if content_type and content_type.split(";")[0].strip().lower().startswith("multipart/"):
        raise UnsupportedMediaType(
            "send the CSV file itself as the request body (Content-Type: text/csv), not as a"
            " form upload: curl -H 'Content-Type: text/csv' --data-binary @file.csv …"
        )
    encoding = (content_encoding or "").strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding != "gzip":
        raise UnsupportedMediaType(
            f"unsupported Content-Encoding {content_encoding!r}: send gzip or none"
        )
    # Every member (`cat a.gz b.gz` is one file), within the limit; a stream cut short is an
    # error, not a shorter file.
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(body)) as stream:
            data = stream.read(limit + 1)
    except (OSError, EOFError, zlib.error) as exc:
        raise InvalidInput(f"the body is not valid gzip: {exc}") from None
    if len(data) > limit:
        raise InvalidInput(f"the uncompressed file exceeds {limit} bytes")
    return data


FORMULA_QUOTE = "'"
_NUMBER_LIKE = re.compile(r"[+-][0-9 ().,/-]*")


def quoted_for_spreadsheets(cell: str) -> bool:
    """Whether an export puts `FORMULA_QUOTE` before the cell, so that a spreadsheet shows it
    as text rather than running it: it starts with `=`, `@`, a tab or a carriage return, or
    with `+` or `-` and is not a number or phone number; or it is such a cell quoted already,
    so that an import, which takes one quote off such cells, gives back exactly the cell."""
    if not cell:
        return False
    first = cell[0]
    if first in "=@\t\r":
        return True
    if first in "+-":
        return not _NUMBER_LIKE.fullmatch(cell)
    return first == FORMULA_QUOTE and quoted_for_spreadsheets(cell[1:])


def undecoded(text: str) -> bool:
    """Whether a field read by `iter_records` holds bytes that did not decode."""
    return UNDECODED.search(text) is not None


class BlockStream(io.RawIOBase):
    """A file stored in numbered blocks of equal size, read from any offset.

    `fetch(seq)` returns block `seq`, or None past the end; only one block is held at a time.
    """

    def __init__(self, fetch: Callable[[int], bytes | None], block_size: int) -> None:
        self._fetch = fetch
        self._block_size = block_size
        self._seq = -1
        self._block = b""
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence != io.SEEK_SET:
            raise io.UnsupportedOperation("only absolute seeks")
        self._pos = offset
        return offset

    def tell(self) -> int:
        return self._pos

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        seq, within = divmod(self._pos, self._block_size)
        if seq != self._seq:
            self._block = self._fetch(seq) or b""
            self._seq = seq
        chunk = self._block[within : within + len(buffer)]
        buffer[: len(chunk)] = chunk
        self._pos += len(chunk)
        return len(chunk)
