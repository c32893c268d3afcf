"""What a segment's condition may name: segments and scoring models that exist, and no
segment that leads back to the segment itself."""

from __future__ import annotations

from collections.abc import Set
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from sodate.conditions.reads import nodes
from sodate.conditions.references import unknown_references
from sodate.conditions.schemas import (
    Condition,
    SegmentCondition,
    parse_condition,
)
from sodate.errors import InvalidInput
from sodate.scoring import service as scoring
from sodate.segments.membership import SEGMENTS


def check_references(
    session: Session, workspace_id: str, key: str | None, condition: Condition
) -> None:
    """Every segment and scoring model the condition names exists, and no segment leads back
    to `key`: InvalidInput naming every one that does not."""
    errors = reference_errors(session, workspace_id, key, condition)
    if errors:
        raise InvalidInput(
            "the condition names segments or scoring models it cannot use", details=errors
        )


def reference_errors(
    session: Session,
    workspace_id: str,
    key: str | None,
    condition: Condition,
    also: Set[str] = frozenset(),
) -> list[dict[str, Any]]:
    """The scoring models and segments the condition names that do not exist (segments named
    in `also` do, and `key` itself), and those that would lead back to `key`."""
    named = _named_segments(condition)
    # Every stored segment's condition, read only when this one names segments: the cycles
    # are found in them.
    stored = (
        {
            row.key: row.condition
            for row in session.execute(
                sa.select(SEGMENTS.c.key, SEGMENTS.c.condition).where(
                    SEGMENTS.c.workspace_id == workspace_id
                )
            )
        }
        if named
        else {}
    )
    errors = unknown_references(
        [(["condition"], condition)],
        segments={*stored, *also, *([] if key is None else [key])},
        models=scoring.model_keys(session, workspace_id),
    )
    if key is not None and named:
        graph = {
            other: {
                n.segment
                for _, n in nodes(parse_condition(document))
                if isinstance(n, SegmentCondition)
            }
            for other, document in stored.items()
            if document is not None and other != key
        }
        graph[key] = {name for _, name in named}
        for path, name in named:
            if cycle := _cycle(graph, name, key):
                errors.append(
                    {
                        "loc": ["condition", *path, "segment"],
                        "msg": "segments would read each other in a cycle: " + " → ".join(cycle),
                        "type": "cycle",
                    }
                )
    return errors


def _named_segments(condition: Condition) -> list[tuple[list[int | str], str]]:
    return [
        (path, node.segment)
        for path, node in nodes(condition)
        if isinstance(node, SegmentCondition)
    ]


def _cycle(graph: dict[str, set[str]], start: str, target: str) -> list[str] | None:
    """A path from `start` back to `target` through the segments each one reads, if any."""
    stack: list[list[str]] = [[target, start]]
    seen: set[str] = set()
    while stack:
        path = stack.pop()
        if path[-1] == target:
            return path
        if path[-1] in seen:
            continue
        seen.add(path[-1])
        stack.extend([*path, following] for following in sorted(graph.get(path[-1], ())))
    return None
