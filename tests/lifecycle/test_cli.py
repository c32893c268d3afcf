"""`sodate lifecycle apply FILE` and `sodate lifecycle stages`, through the real entry point."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from sodate.lifecycle.schemas import LifecycleRulesIn
from tests.test_cli import Run

RULES_YAML = """\
rules:
  subscriber: {attr: email, op: exists}
  lead: {attr: plan, op: eq, value: 有料}
dormant: {after_days: 90}
"""


def test_apply_moves_contacts_and_stages_counts_them(run: Run, tmp_path: Path) -> None:
    assert run("workspace", "create", "Acme")[0] == 0
    contacts = tmp_path / "contacts.csv"
    contacts.write_text(
        "email,name,plan\nsato@example.jp,佐藤,有料\nsuzuki@example.jp,鈴木,無料\n",
        encoding="utf-8",
    )
    assert run("import", "contacts", str(contacts))[0] == 0
    path = tmp_path / "lifecycle.yaml"
    path.write_text(RULES_YAML, encoding="utf-8")
    code, out, _ = run("lifecycle", "apply", str(path), "--json")
    assert code == 0, out
    assert json.loads(out)[0]["moved"] == {"lead": 1, "subscriber": 1}
    code, out, _ = run("lifecycle", "stages", "--json")
    assert code == 0, out
    counts = {item["stage"]: item["contacts"] for item in json.loads(out)}
    assert (counts["lead"], counts["subscriber"], counts["customer"]) == (1, 1, 0)
    code, out, _ = run("lifecycle", "stages")
    assert "subscriber" in out


def test_an_invalid_file_names_every_error_and_saves_nothing(run: Run, tmp_path: Path) -> None:
    run("workspace", "create", "Acme")
    path = tmp_path / "lifecycle.json"
    document = {"rules": {"lead": {"attr": "email", "op": "bogus"}}, "dormant": {"after_days": 0}}
    path.write_text(json.dumps(document), encoding="utf-8")
    code, _, err = run("lifecycle", "apply", str(path))
    assert code == 1
    assert "rules.lead" in err
    assert "dormant.after_days" in err
    assert "nothing was saved" in err


def test_the_readme_rules_are_valid() -> None:
    root = Path(__file__).resolve().parents[2]
    for readme, heading in (
        (root / "README.md", "## Lifecycle stages"),
        (root / "src/sodate/lifecycle/README.md", "## The rules"),
    ):
        section = readme.read_text(encoding="utf-8").split(heading, 1)[1]
        document = yaml.safe_load(section.split("```yaml\n", 1)[1].split("```", 1)[0])
        rules = LifecycleRulesIn.model_validate(document)
        assert rules.mql is not None or rules.dormant is not None, readme
