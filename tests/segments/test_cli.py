"""`sodate segments apply FILE` and `sodate segments list`, through the real entry point."""

from __future__ import annotations

import json
from pathlib import Path

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
