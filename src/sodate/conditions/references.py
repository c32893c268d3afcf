"""The saved definitions a condition names (segments, scoring models), checked against those
that exist: every definition that holds conditions refuses to save one that names what does
not exist, since an unknown name would make the condition silently false (DESIGN §4.3)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from collections.abc import Set as AbstractSet
from typing import Any

from sodate.conditions.reads import nodes
from sodate.conditions.schemas import Condition, ScoreCondition, SegmentCondition


def unknown_references(
    conditions: Iterable[tuple[Sequence[int | str], Condition]],
    *,
    segments: AbstractSet[str],
    models: AbstractSet[str],
) -> list[dict[str, Any]]:
    """An error for each segment or scoring model that a condition (given with the path to
    it) names and that is not among `segments` or `models`."""
    errors: list[dict[str, Any]] = []
    for at, condition in conditions:
        for path, node in nodes(condition):
            loc = [*at, *path]
            if isinstance(node, SegmentCondition) and node.segment not in segments:
                errors.append(
                    {
                        "loc": [*loc, "segment"],
                        "msg": f"no segment {node.segment!r}",
                        "type": "segment",
                    }
                )
            if isinstance(node, ScoreCondition) and node.score.model not in models:
                errors.append(
                    {
                        "loc": [*loc, "score", "model"],
                        "msg": f"no scoring model {node.score.model!r}",
                        "type": "model",
                    }
                )
    return errors
