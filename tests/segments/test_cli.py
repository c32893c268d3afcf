"""`sodate segments apply|list|add|remove`, through the real entry point."""

from __future__ import annotations

import json
from pathlib import Path

from tests.imports.helpers import write_csv
from tests.test_cli import Run, _error_line

SEGMENTS_YAML = """\
segments:
  - key: pro-managers          # reads `pro`, which comes later in the file
    name: 部長クラスの有料ユーザー
    condition:
      all:
        - segment: pro
        - {attr: job_title, op: contains, value: 部長}
  - key: pro
    name: 有料プラン
    condition: {attr: plan, op: in, value: [pro, enterprise]}
  - key: booth-2026
    name: 展示会2026 来場者
    kind: static
"""


def test_apply_creates_then_replaces_in_the_order_references_need(run: Run, tmp_path: Path) -> None:
    assert run("workspace", "create", "Acme")[0] == 0
    path = tmp_path / "segments.yaml"
    path.write_text(SEGMENTS_YAML, encoding="utf-8")
    code, out, _ = run("segments", "apply", str(path), "--json")
    assert code == 0, out
    applied = json.loads(out)
    assert [(a["key"], a["created"]) for a in applied] == [
        ("pro", True),
        ("pro-managers", True),
        ("booth-2026", True),
    ]
    code, out, _ = run("segments", "apply", str(path))
    assert code == 0
    assert "replaced" in out
    assert "created" not in out
    code, out, _ = run("segments", "list", "--json")
    assert [s["key"] for s in json.loads(out)] == ["booth-2026", "pro", "pro-managers"]


def test_an_invalid_file_names_every_error_and_saves_nothing(run: Run, tmp_path: Path) -> None:
    run("workspace", "create", "Acme")
    path = tmp_path / "segments.json"
    documents = [
        {"key": "ok", "name": "fine", "condition": {"attr": "plan", "op": "exists"}},
        {"key": "bad", "name": "x", "condition": {"attr": "plan", "op": "gt", "value": "a"}},
        {"key": "-no", "name": "x", "kind": "static"},
    ]
    path.write_text(json.dumps(documents), encoding="utf-8")
    code, _, err = run("segments", "apply", str(path))
    assert code == 1
    assert "1.condition.attr.value: gt needs a number" in err.replace("\n", " ") or (
        "1.condition.value: gt needs a number" in err
    )
    assert "2.key:" in err
    assert "nothing was saved" in err
    code, out, _ = run("segments", "list", "--json")
    assert json.loads(out) == []

    # A reference to a segment that does not exist, anywhere: refused, nothing saved.
    path.write_text(
        json.dumps([documents[0], {"key": "r", "name": "r", "condition": {"segment": "nope"}}]),
        encoding="utf-8",
    )
    code, _, err = run("segments", "apply", str(path))
    assert code == 1
    assert "r.condition.segment: no segment 'nope'" in err
    assert json.loads(run("segments", "list", "--json")[1]) == []


def test_every_segment_of_a_file_is_checked_and_cycles_within_it_are_named(
    run: Run, tmp_path: Path
) -> None:
    run("workspace", "create", "Acme")
    path = tmp_path / "segments.json"
    path.write_text(json.dumps([{"key": "s", "name": "S", "kind": "static"}]), encoding="utf-8")
    assert run("segments", "apply", str(path))[0] == 0
    documents = [
        {"key": "s", "name": "S", "condition": {"attr": "plan", "op": "exists"}},  # was static
        {"key": "d1", "name": "D1", "condition": {"segment": "nosuch"}},
        {
            "key": "e1",
            "name": "E1",
            "condition": {"score": {"model": "no", "op": "gte", "value": 1}},
        },
        {"key": "ok", "name": "fine", "condition": {"attr": "plan", "op": "exists"}},
        {"key": "a1", "name": "A1", "condition": {"segment": "b1"}},
        {"key": "b1", "name": "B1", "condition": {"all": [{"segment": "a1"}, {"segment": "ok"}]}},
        {"key": "c1", "name": "C1", "condition": {"segment": "a1"}},
    ]
    path.write_text(json.dumps(documents), encoding="utf-8")
    code, _, err = run("segments", "apply", str(path))
    assert code == 1
    text = " ".join(err.split())
    assert "d1.condition.segment: no segment 'nosuch'" in text
    assert "e1.condition.score.model:" in text
    assert "a1.condition: segments read each other in a cycle: a1 → b1 → a1" in text
    assert "b1.condition: segments read each other in a cycle: a1 → b1 → a1" in text
    assert "c1.condition: reads 'a1', which cannot be saved" in text
    assert "s: segment 's' is static" in text
    assert "nothing was saved" in text
    assert [s["key"] for s in json.loads(run("segments", "list", "--json")[1])] == ["s"]


def test_errors_of_form_and_of_what_segments_read_are_named_together(
    run: Run, tmp_path: Path
) -> None:
    run("workspace", "create", "Acme")
    path = tmp_path / "segments.json"
    documents = [
        {"key": "ok1", "name": "ok1", "condition": {"attr": "email", "op": "exists"}},
        {"key": "broken2", "name": "壊れた2", "condition": {"segment": "nope"}},
        {
            "key": "broken3",
            "name": "壊れた3",
            "condition": {"score": {"model": "nomodel", "op": "gte", "value": 1}},
        },
        {"key": "ok1", "name": "dup", "condition": {"attr": "email", "op": "exists"}},
        # Not valid (no name), but its condition is: what it reads is checked, the segments
        # of the file counting as existing.
        {
            "key": "unnamed",
            "name": "",
            "condition": {"all": [{"segment": "nope2"}, {"segment": "ok1"}, {"segment": "bad"}]},
        },
        # A condition that is not valid cannot be checked; its readers cannot be saved.
        {"key": "bad", "name": "bad", "condition": {"attr": "plan", "op": "gt", "value": "a"}},
        {
            "key": "reader",
            "name": "reader",
            "condition": {
                "all": [
                    {"segment": "bad"},
                    {"score": {"model": "nomodel2", "op": "lt", "value": 5}},
                ]
            },
        },
        {"key": "broken2", "name": "no condition"},  # not valid, and repeats a key
    ]
    path.write_text(json.dumps(documents), encoding="utf-8")
    code, _, err = run("segments", "apply", str(path))
    assert code == 1
    lines = [line.strip() for line in err.splitlines() if line.strip()]
    assert lines[:-1] == [
        "3.key: key repeated",
        "4.name: String should have at least 1 character",
        "5.condition.value: gt needs a number",
        "7: Value error, a dynamic segment needs a condition",
        "7.key: key repeated",
        "reader.condition: reads 'bad', which cannot be saved",
        "4.condition.all.0.segment: no segment 'nope2'",
        "reader.condition.all.1.score.model: no scoring model 'nomodel2'",
        "broken2.condition.segment: no segment 'nope'",
        "broken3.condition.score.model: no scoring model 'nomodel'",
    ]
    # Said once, not "nothing was saved; nothing was saved".
    assert lines[-1] == (
        "error: segments.json: some segments of the file are not valid; nothing was saved"
    )
    assert json.loads(run("segments", "list", "--json")[1]) == []


def test_unreadable_or_malformed_files_are_one_line(run: Run, tmp_path: Path) -> None:
    run("workspace", "create", "Acme")
    code, _, err = run("segments", "apply", str(tmp_path / "missing.yaml"))
    assert code == 1
    assert "cannot read" in _error_line(err)
    broken = tmp_path / "broken.yaml"
    broken.write_text("key: [unclosed\n", encoding="utf-8")
    code, _, err = run("segments", "apply", str(broken))
    assert code == 1
    assert "is not valid YAML" in _error_line(err)


CARDS = [
    ["氏名", "会社名", "メールアドレス", "携帯電話"],
    ["山田　太郎", "株式会社サンプル", "taro@example.jp", ""],
    ["佐藤　花子", "株式会社テスト", "", "090-1234-5678"],
]


def test_add_and_remove_the_contacts_of_a_csv_file(run: Run, tmp_path: Path) -> None:
    assert run("workspace", "create", "展示会チーム")[0] == 0
    cards = write_csv(tmp_path / "名刺.csv", CARDS, "cp932")
    assert run("import", "contacts", str(cards), "--source", "展示会2026")[0] == 0
    lists = tmp_path / "segments.yaml"
    lists.write_text(SEGMENTS_YAML, encoding="utf-8")
    assert run("segments", "apply", str(lists))[0] == 0

    # The file that imported the cards adds their people to the list, as it is.
    code, out, _ = run("segments", "add", "booth-2026", str(cards), "--json")
    assert code == 0, out
    added = json.loads(out)
    assert (added["rows"], added["matched"], added["changed"], added["errors"]) == (2, 2, 2, [])

    # Rejected rows are listed, and the command still succeeds.
    leaving = write_csv(
        tmp_path / "leaving.csv",
        [["email"], ["TARO@example.jp"], ["nobody@example.jp"], ["not-an-email"]],
        bom=True,
    )
    code, out, _ = run("segments", "remove", "booth-2026", str(leaving))
    assert code == 0, out
    assert "3 rows, 1 matched, 1 removed, 2 rejected" in out
    assert "Rejected rows" in out
    assert "no contact has this email address" in out
    assert "not an email address" in out
    code, out, _ = run("segments", "remove", "booth-2026", str(leaving), "--json")
    assert code == 0, out
    assert [error["loc"] for error in json.loads(out)["errors"]] == [
        ["line", 3, "email"],
        ["line", 4, "email"],
    ]
    code, out, _ = run("segments", "list", "--json")
    assert {s["key"]: s["member_count"] for s in json.loads(out)}["booth-2026"] == 1


def test_add_refuses_unreadable_files_and_dynamic_segments(run: Run, tmp_path: Path) -> None:
    run("workspace", "create", "Acme")
    lists = tmp_path / "segments.yaml"
    lists.write_text(SEGMENTS_YAML, encoding="utf-8")
    assert run("segments", "apply", str(lists))[0] == 0
    cards = write_csv(tmp_path / "cards.csv", [["email"], ["a@example.jp"]])

    code, _, err = run("segments", "add", "pro", str(cards))
    assert code == 1
    assert "is dynamic" in _error_line(err)
    code, _, err = run("segments", "add", "nope", str(cards))
    assert code == 1
    assert "no segment 'nope'" in _error_line(err)
    code, _, err = run("segments", "add", "booth-2026", str(tmp_path / "missing.csv"))
    assert code == 1
    assert "cannot read" in _error_line(err)
    names = write_csv(tmp_path / "names.csv", [["氏名"], ["山田"]])
    code, _, err = run("segments", "remove", "booth-2026", str(names))
    assert code == 1
    assert "the header needs a column id, email, phone or user_id" in _error_line(err)
