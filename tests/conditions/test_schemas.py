"""Validation of the condition language: every error named, with the path to its node."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sodate import conditions
from sodate.conditions.schemas import (
    MAX_DEPTH,
    AttrCondition,
    ConditionError,
    LifecycleCondition,
    bounded,
    check_depth,
    dump_condition,
    parse_condition,
)

DESIGN_EXAMPLE = {
    "all": [
        {"attr": "job_title", "op": "in", "value": ["部長", "本部長"]},
        {"attr": "company.employees", "op": "gte", "value": 1000},
        {
            "event": {
                "name": "Page Viewed",
                "where": [{"prop": "path", "op": "starts_with", "value": "/pricing"}],
                "count": {"op": "gte", "value": 3},
                "within": "30d",
            }
        },
        {"not": {"event": {"name": "Order Completed", "within": "90d"}}},
        {"any": [{"attr": "birthday", "op": "anniversary"}, {"attr": "plan", "op": "exists"}]},
        {"score": {"model": "default", "op": "gte", "value": 60}},
        {"lifecycle": {"in": ["lead", "mql"]}},
        {"segment": "customers"},
    ]
}


def _errors(document: Any) -> list[tuple[list[Any], str]]:
    with pytest.raises(ConditionError) as caught:
        parse_condition(document)
    return [(detail["loc"], detail["msg"]) for detail in caught.value.details]


def test_the_design_example_parses_and_dumps_back() -> None:
    condition = parse_condition(DESIGN_EXAMPLE)
    assert parse_condition(dump_condition(condition)) == condition
    assert dump_condition(condition)["all"][3] == {
        "not": {"event": {"name": "Order Completed", "within": "90d"}}
    }


def test_a_condition_is_shown_as_written_defaults_included_when_given() -> None:
    written = {"event": {"name": "Page Viewed", "count": {"op": "gte", "value": 2}}}
    assert dump_condition(parse_condition(written)) == written
    assert dump_condition(parse_condition({"event": {"name": "X"}})) == {"event": {"name": "X"}}


def test_every_error_is_named_with_its_path() -> None:
    errors = _errors(
        {
            "all": [
                {"attr": "email", "op": "gt", "value": 3},
                {"attr": "age", "op": "between", "value": [30, 20]},
                {"unknown": 1},
                {"not": {"attr": "address..city", "op": "eq", "value": "東京"}},
                {"event": {"name": "", "within": "-3d", "count": {"value": -1}}},
                {"attr": "created_at", "op": "before", "value": "yesterday"},
                {"attr": "plan", "op": "exists", "value": "pro"},
                {"attr": "plan", "op": "eq"},
            ]
        }
    )
    paths = [path for path, _ in errors]
    assert paths == [
        ["all", 0, "op"],
        ["all", 1, "value"],
        ["all", 2],
        ["all", 3, "not", "attr"],
        ["all", 4, "event", "name"],
        ["all", 4, "event", "count", "value"],
        ["all", 4, "event", "within"],
        ["all", 5, "value"],
        ["all", 6, "value"],
        ["all", 7, "value"],
    ]
    messages = dict((str(path), message) for path, message in errors)
    assert "email holds text" in messages["['all', 0, 'op']"]
    assert "exactly one of all, any, not, attr, event" in messages["['all', 2]"]
    assert "not a date" in messages["['all', 5, 'value']"]


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ({"attr": "plan", "op": "resembles", "value": 1}, "Input should be"),
        ({"attr": "plan", "op": "gt", "value": "10"}, "gt needs a number"),
        ({"attr": "plan", "op": "gt", "value": True}, "gt needs a number"),
        ({"attr": "plan", "op": "in", "value": []}, "list of 1 to"),
        ({"attr": "plan", "op": "eq", "value": {"a": 1}}, "text, a number or true/false"),
        ({"attr": "plan", "op": "starts_with", "value": ""}, "non-empty text"),
        ({"attr": "plan", "op": "within_last", "value": "0d"}, "not a duration"),
        ({"attr": "birthday", "op": "anniversary", "value": "3 days"}, "day offset"),
        ({"attr": 'say"hi', "op": "exists"}, "may not contain"),
        ({"attr": "last_seen_at", "op": "contains", "value": "x"}, "holds time"),
        ({"attr": "email", "op": "eq", "value": 5}, "is text"),
        ({"attr": "plan", "op": "eq", "value": 2**70}, "64 bits"),
        ({"attr": "plan", "op": "between", "value": ["2026-05-01", "2026-04-01"]}, "earlier"),
        ({"attr": "plan", "op": "eq", "value": "x", "extra": 1}, "Extra inputs"),
        ({"all": []}, "at least 1 item"),
        ({"all": [], "any": []}, "exactly one of"),
        ("plan = pro", "exactly one of"),
        ({"score": {"model": "default", "op": "eq", "value": 60}}, "compared with one of"),
        ({"score": {"model": "default", "op": "gte", "value": "60"}}, "gte needs a number"),
        ({"score": {"model": "default", "op": "between", "value": [60, 20]}}, "low <= high"),
        ({"score": {"model": "default", "op": "gte", "value": 1, "part": "x"}}, "Input should be"),
        # Instants outside the calendar (now + 99999999d) stopped the event processor.
        ({"event": {"name": "X", "within": "99999999d"}}, "too long: at most 36500d"),
        ({"event": {"name": "X", "within": "9999999999d"}}, "too long"),  # beyond timedelta
        ({"attr": "d", "op": "after", "value": "-9999999999d"}, "too far from now"),
        ({"attr": "last_seen_at", "op": "within_last", "value": "36501d"}, "too long"),
        ({"attr": "created_at", "op": "before", "value": "+2912273d"}, "too far from now"),
        ({"attr": "d", "op": "after", "value": "-999999d"}, "too far from now"),
        ({"attr": "d", "op": "after", "value": "0001-01-01"}, "a year from 1000 to 9000"),
        ({"attr": "d", "op": "between", "value": ["2026-01-01", "9999-12-31T23:00"]}, "1000 to"),
    ],
)
def test_invalid_conditions_are_refused(document: Any, expected: str) -> None:
    assert any(expected in message for _, message in _errors(document))


def test_a_lifecycle_condition_names_stages() -> None:
    condition = parse_condition({"not": {"lifecycle": {"in": ["lead", "mql"]}}})
    assert dump_condition(condition) == {"not": {"lifecycle": {"in": ["lead", "mql"]}}}
    inner = parse_condition({"lifecycle": {"in": ["customer"]}})
    assert isinstance(inner, LifecycleCondition)
    assert inner.lifecycle.in_ == ["customer"]


def test_an_unknown_stage_is_named_with_the_stages_there_are() -> None:
    errors = _errors({"all": [{"not": {"lifecycle": {"in": ["lead", "prospect", 3]}}}]})
    assert [path for path, _ in errors] == [
        ["all", 0, "not", "lifecycle", "in", 1],
        ["all", 0, "not", "lifecycle", "in", 2],
    ]
    for _, message in errors:
        assert message.endswith(
            "use one of subscriber, lead, mql, sql, opportunity, customer, dormant, churned"
        )


@pytest.mark.parametrize(
    ("document", "path", "expected"),
    [
        ({"lifecycle": {"in": []}}, ["lifecycle", "in"], "at least 1 item"),
        ({"lifecycle": {"in": ["mql", "lead", "mql"]}}, ["lifecycle", "in"], "mql is listed twice"),
        ({"lifecycle": {"in": "lead"}}, ["lifecycle", "in"], "valid list"),
        ({"lifecycle": {"in": ["Lead"]}}, ["lifecycle", "in", 0], "not a lifecycle stage"),
        ({"lifecycle": {"in": ["lead"], "since": "30d"}}, ["lifecycle", "since"], "Extra inputs"),
        ({"lifecycle": {"eq": "lead"}}, ["lifecycle", "eq"], "Extra inputs"),
        ({"lifecycle": {"eq": "lead"}}, ["lifecycle", "in"], "Field required"),
        ({"lifecycle": ["lead"]}, ["lifecycle"], "valid dictionary"),
    ],
)
def test_invalid_lifecycle_conditions_are_refused(
    document: Any, path: list[Any], expected: str
) -> None:
    assert any(loc == path and expected in message for loc, message in _errors(document))


def test_nesting_is_bounded_and_the_error_names_where() -> None:
    document: dict[str, Any] = {"attr": "plan", "op": "exists"}
    for _ in range(MAX_DEPTH - 2):
        document = {"not": document}
    parse_condition(document)  # the values of the innermost object are the 12th level
    document = {"not": document}
    assert _errors(document) == [(["not"] * 11 + ["attr"], "too deeply nested: at most 12 levels")]

    # The first value too deep, in document order, wherever it is: here in the second child.
    deep: dict[str, Any] = {"attr": "plan", "op": "exists"}
    for _ in range(12):
        deep = {"all": [deep]}
    with pytest.raises(ConditionError) as caught:
        parse_condition({"any": [{"attr": "y", "op": "exists"}, deep]})
    path = ["any", 1, *["all", 0] * 10, "all"]
    assert caught.value.details == [
        {"loc": path, "msg": "too deeply nested: at most 12 levels", "type": "depth"}
    ]
    assert caught.value.message.endswith("at " + ".".join(str(part) for part in path))
    with pytest.raises(ConditionError) as caught:
        check_depth({"all": [deep]}, at=["condition"])
    assert caught.value.details[0]["loc"][:4] == ["condition", "all", 0, "all"]


def test_a_document_holding_a_condition_names_the_path_of_one_too_deep() -> None:
    deep: dict[str, Any] = {"attr": "plan", "op": "exists"}
    for _ in range(12):
        deep = {"not": deep}
    with pytest.raises(ValueError, match=r"at when\.not\.not"):
        bounded({"when": deep, "points": 1}, "when")


@pytest.mark.parametrize(
    ("value", "path"),
    [
        (1e308, ["score", "value"]),
        (-1e308, ["score", "value"]),
        (2e306, ["score", "value"]),
        ([0, 1e308], ["score", "value"]),
        ([-1e307, 0], ["score", "value"]),
    ],
)
def test_a_score_is_compared_with_bounded_numbers(value: Any, path: list[Any]) -> None:
    # 1e308 passed as finite, and comparing a score with it as shown overflowed (HTTP 500).
    op = "between" if isinstance(value, list) else "gte"
    document = {"score": {"model": "default", "op": op, "value": value}}
    assert _errors(document) == [(path, "a score is compared with numbers from -1e306 to 1e306")]


def test_a_float_written_as_its_digits_is_taken_as_that_float() -> None:
    # PostgreSQL's jsonb gives a saved 1e308 back as 1 and 308 zeros: beyond 64 bits, which
    # refused the segment's own condition as it was recomputed.
    for value, expected in ((10**308, 1e308), (-(10**20), -1e20)):
        condition = parse_condition({"attr": "n", "op": "gte", "value": value})
        assert isinstance(condition, AttrCondition)
        assert (condition.value, type(condition.value)) == (expected, float)
    condition = parse_condition({"attr": "n", "op": "in", "value": [10**20, 2**63 - 1]})
    assert isinstance(condition, AttrCondition)
    assert condition.value == [1e20, 2**63 - 1]
    # An integer no float spells is still refused: it would not compare as written.
    for value in (2**63, 10**20 + 1, 10**400):
        assert _errors({"attr": "n", "op": "eq", "value": value}) == [
            (["value"], "integers must fit in 64 bits")
        ]


@pytest.mark.parametrize("op", ["gt", "gte", "lt", "lte"])
def test_scores_compare_up_to_the_bound(op: str) -> None:
    # Any bound saved before bounds were checked still loads, 2^63 - 1 and 1e306 among them.
    for value in (1e306, -1e306, 10**12, 2**63 - 1, 0.005):
        parse_condition({"score": {"model": "default", "op": op, "value": value}})
    parse_condition({"score": {"model": "m", "op": "between", "value": [-1e306, 1e306]}})


def test_paths_name_fields_traits_and_company() -> None:
    def source(attr: str) -> str:
        condition = parse_condition({"attr": attr, "op": "exists"})
        assert isinstance(condition, AttrCondition)
        return f"{condition.path.source.value}:{'.'.join(condition.path.path)}"

    assert source("email") == "contact:email"
    assert source("last_seen_at") == "contact:last_seen_at"
    assert source("役職") == "traits:役職"
    assert source("address.city") == "traits:address.city"
    assert source("company.name") == "company:name"
    assert source("company.employees") == "company_traits:employees"
    assert source("company") == "traits:company"


def test_the_readme_example_is_a_valid_condition() -> None:
    readme = Path(conditions.__file__).with_name("README.md").read_text(encoding="utf-8")
    block = readme.split("```json", 1)[1].split("```", 1)[0]
    parse_condition(json.loads(block))


@pytest.mark.parametrize("name", ["$x", "a$b", 'a"b', "a\\b", "a\x00b", "a\nb"])
def test_a_path_name_a_json_path_cannot_address_is_named_as_such(name: str) -> None:
    message = 'names in a path may not contain $, ", \\ or control characters'
    assert _errors({"attr": name, "op": "eq", "value": 1}) == [(["attr"], message)]
    event = {"event": {"name": "E", "where": [{"prop": f"p.{name}", "op": "eq", "value": 1}]}}
    assert _errors(event) == [(["event", "where", 0, "prop"], message)]
