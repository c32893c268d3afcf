"""`sodate import contacts|events` and `sodate export contacts`, through the real entry point."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sodate.imports import service
from sodate.runtime import Runtime
from sodate.workspaces import service as workspaces
from tests.imports.helpers import write_csv
from tests.test_cli import Run, _error_line

ROWS = [
    ["メールアドレス", "氏名", "会社名", "来場日"],
    ["taro@example.jp", "山田 太郎", "株式会社サンプル", "2026/3/1"],
    ["not-an-email", "佐藤 花子", "", "2026/3/2"],
    ["jiro@example.jp", "山田 次郎", "株式会社サンプル", "2026/3/40"],
]


def test_import_reports_rejected_rows_and_exits_zero(run: Run, tmp_path: Path) -> None:
    assert run("workspace", "create", "展示会チーム")[0] == 0
    path = write_csv(tmp_path / "名刺.csv", ROWS, "cp932")
    code, out, _ = run(
        "import", "contacts", str(path), "--source", "展示会2026", "--map", "来場日=visited:date"
    )
    assert code == 0
    assert "cp932" in out
    assert "2 of 3 rows were rejected (see below); the other 1 were imported." in out
    assert "not an email address" in out
    assert "not a date" in out

    code, out, _ = run("import", "contacts", str(path), "--map", "来場日=visited:date", "--json")
    assert code == 0
    report = json.loads(out)
    assert (report["import"]["created"], report["import"]["updated"]) == (0, 1)
    assert [(e["line"], e["column"]) for e in report["errors"]] == [
        (3, "メールアドレス"),
        (4, "来場日"),
    ]


def test_import_events(run: Run, tmp_path: Path) -> None:
    run("workspace", "create", "Acme")
    path = write_csv(
        tmp_path / "purchases.csv",
        [["email", "購入日", "金額"], ["a@example.jp", "2026/3/1", "500"]],
    )
    args = ("import", "events", str(path), "--event", "Store Purchase", "--map", "金額=amount:int")
    code, out, _ = run(*args, "--json")
    assert code == 0
    assert json.loads(out)["import"]["created"] == 1
    code, out, _ = run(*args, "--json")
    assert json.loads(out)["import"]["skipped"] == 1


def test_unreadable_files_are_one_line_and_exit_one(run: Run, tmp_path: Path) -> None:
    run("workspace", "create", "Acme")
    code, _, err = run("import", "contacts", str(tmp_path / "missing.csv"))
    assert code == 1
    assert "cannot read" in _error_line(err)
    code, _, err = run(
        "import", "contacts", str(write_csv(tmp_path / "x.csv", [["氏名"], ["山田"]]))
    )
    assert code == 1
    assert "no column identifies the contact" in _error_line(err)
    code, _, err = run("import", "contacts", str(tmp_path / "x.csv"), "--map", "nonsense")
    assert code == 1
    assert "header=field" in _error_line(err)


def test_an_interrupted_import_is_marked_failed(
    run: Run, tmp_path: Path, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    run("workspace", "create", "Acme")

    def interrupted(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(service, "write_chunk", interrupted)
    code, _, err = run("import", "contacts", str(write_csv(tmp_path / "in.csv", ROWS)))
    assert code == 1
    assert _error_line(err) == "error: RuntimeError: disk full"
    with runtime.db.read() as session:
        workspace = workspaces.resolve_workspace(session, None)
        [record] = service.list_imports(session, workspace.id, limit=10, before=None).items
    assert (record.status, record.failure) == ("failed", "stopped: RuntimeError: disk full")


def test_export_to_a_file_and_to_stdout(run: Run, tmp_path: Path) -> None:
    run("workspace", "create", "Acme")
    run("import", "contacts", str(write_csv(tmp_path / "in.csv", ROWS[:2])))
    target = tmp_path / "contacts.csv"
    code, _, err = run("export", "contacts", "--output", str(target))
    assert code == 0
    assert "1 contacts exported" in err
    text = target.read_bytes().decode("utf-8")
    assert text.startswith("\ufeffid,email,")
    assert "山田 太郎" in text
    code, out, _ = run("export", "contacts", "--format", "jsonl")
    assert code == 0
    assert json.loads(out)["name"] == "山田 太郎"
