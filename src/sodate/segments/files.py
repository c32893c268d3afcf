"""Segments applied from a file (`sodate segments apply FILE`): every segment of the file
checked and saved together, in the order their references need."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from sodate.conditions.reads import reads
from sodate.conditions.schemas import Condition, ConditionError, parse_condition
from sodate.documents import check_documents
from sodate.errors import InvalidInput, SodateError
from sodate.segments import service
from sodate.segments.references import reference_errors
from sodate.segments.schemas import SegmentApplied, SegmentDocument


def apply_documents(
    session: Session, workspace_id: str, documents: Any, *, now: datetime
) -> list[SegmentApplied]:
    """Create or replace the segments of a file (one document, a list, or `{"segments": [...]}`),
    in the order their references need; every error of every segment is named at once, those
    of its form and those of what it reads, and nothing is saved unless all are valid (the
    caller's transaction)."""
    checked = check_documents(documents, SegmentDocument, plural="segments")
    in_file = set(checked.valid) | _keys(checked.invalid.values())
    ordered, refused = _file_order(checked.valid, in_file - set(checked.valid))
    errors = [
        *checked.errors,
        *(
            {"loc": [key, "condition"], "msg": reason, "type": "segment"}
            for key, reason in refused.items()
        ),
    ]
    # The conditions that will not be saved are checked for what they read here, so that
    # fixing the errors above does not reveal more. A segment of the file counts as existing:
    # its own errors are named with it.
    unsaved = [*_valid_conditions(checked.invalid), *_conditions(checked.valid, refused)]
    for name, condition in unsaved:
        errors += [
            {**detail, "loc": [name, *detail["loc"]]}
            for detail in reference_errors(session, workspace_id, None, condition, in_file)
        ]
    applied = []
    for key in ordered:
        try:
            # Each in a savepoint: a refused segment leaves nothing, and the rest are checked.
            with session.begin_nested():
                saved, created = service.put_segment(
                    session, workspace_id, key, checked.valid[key], now=now
                )
        except SodateError as exc:  # invalid, or a conflict (a kind changed in place)
            errors += [
                {**detail, "loc": [key, *detail.get("loc", [])]} for detail in exc.details
            ] or [{"loc": [key], "msg": exc.message, "type": "segment"}]
            continue
        applied.append(
            SegmentApplied(
                key=key,
                created=created,
                entered=saved.entered,
                exited=saved.exited,
                member_count=saved.segment.member_count,
            )
        )
    if errors:
        # Not "nothing was saved": the caller says so (`sodate.cli._apply_file`).
        raise InvalidInput("some segments of the file are not valid", details=errors)
    return applied


def _keys(documents: Iterable[Any]) -> set[str]:
    """The keys documents name, valid or not."""
    return {
        document["key"]
        for document in documents
        if isinstance(document, dict) and isinstance(document.get("key"), str)
    }


def _valid_conditions(invalid: dict[int, Any]) -> list[tuple[int, Condition]]:
    """The conditions that are valid in documents that are not, by the documents' indexes (as
    their other errors)."""
    found = []
    for index, document in invalid.items():
        written = document.get("condition") if isinstance(document, dict) else None
        if written is None:
            continue
        try:
            found.append((index, parse_condition(written)))
        except ConditionError:
            continue  # named with the document's errors; what it reads is unknown
    return found


def _conditions(
    segments: dict[str, SegmentDocument], keys: Iterable[str]
) -> list[tuple[str, Condition]]:
    """The conditions of the segments `keys`, by key."""
    return [(key, condition) for key in keys if (condition := segments[key].condition) is not None]


def _file_order(
    segments: dict[str, SegmentDocument], invalid: set[str]
) -> tuple[list[str], dict[str, str]]:
    """Keys so that a segment comes after the segments of the file it reads; and, by key, why
    the others cannot be saved: they read each other in a cycle, or read one that does, or
    read a key of the file's `invalid` documents."""
    ordered: list[str] = []
    placed: set[str] = set()
    refused: dict[str, str] = {}

    def place(key: str, path: tuple[str, ...]) -> None:
        if key in path:
            cycle = (*path[path.index(key) :], key)
            for member in cycle[:-1]:
                refused.setdefault(
                    member, f"segments read each other in a cycle: {' → '.join(cycle)}"
                )
            return
        if key in placed or key in refused or key not in segments:
            return
        condition = segments[key].condition
        for name in sorted(reads(condition).segments if condition else ()):
            place(name, (*path, key))
            if (name in refused or name in invalid) and key not in refused:
                refused[key] = f"reads {name!r}, which cannot be saved"
        if key not in refused:
            placed.add(key)
            ordered.append(key)

    for key in segments:
        place(key, ())
    return ordered, refused
