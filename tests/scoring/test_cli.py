"""`sodate scoring apply FILE` and `sodate scoring list`, through the real entry point."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from sodate.scoring.schemas import ScoringModelDocument
from tests.test_cli import Run

MODELS_YAML = """\
models:
  - key: default
    name: 既定のリードスコア
    fit:
      - {when: {attr: job_title, op: contains, value: 部長}, points: 10}
      - {when: {attr: company.employees, op: gte, value: 1000}, points: 10}
    engagement:
      - {event: Inquiry Submitted, points: 10}
      - {event: Seminar Attended, points: 8}
      - {event: Document Requested, points: 3}
      - {event: Email Opened, points: 1, max_per_day: 1}
    decay: {half_life_days: 30}
    thresholds: {mql: 60}
"""


def test_apply_creates_then_replaces_and_list_shows_the_models(run: Run, tmp_path: Path) -> None:
    assert run("workspace", "create", "Acme")[0] == 0
    path = tmp_path / "scoring.yaml"
    path.write_text(MODELS_YAML, encoding="utf-8")
    code, out, _ = run("scoring", "apply", str(path), "--json")
    assert code == 0, out
    assert [(a["key"], a["created"]) for a in json.loads(out)] == [("default", True)]
    code, out, _ = run("scoring", "apply", str(path))
    assert code == 0
    assert "replaced" in out
    code, out, _ = run("scoring", "list", "--json")
    (model,) = json.loads(out)
    assert (model["name"], len(model["engagement"]), model["thresholds"]) == (
        "既定のリードスコア",
        4,
        {"mql": 60},
    )


def test_an_invalid_file_names_every_error_and_saves_nothing(run: Run, tmp_path: Path) -> None:
    run("workspace", "create", "Acme")
    path = tmp_path / "scoring.json"
    documents = [
        {"key": "ok", "engagement": [{"event": "Login", "points": 1}]},
        {"key": "bad", "engagement": [{"event": "Login", "points": 0}]},
        {"key": "worse", "fit": [{"when": {"segment": "pro"}, "points": 5}]},
    ]
    path.write_text(json.dumps(documents), encoding="utf-8")
    code, _, err = run("scoring", "apply", str(path))
    assert code == 1
    assert "1.engagement.0.points" in err
    assert "2.fit.0.when" in err
    assert "nothing was saved" in err
    code, out, _ = run("scoring", "list", "--json")
    assert json.loads(out) == []


def test_the_readme_model_is_valid() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Lead scoring", 1)[1]
    document = yaml.safe_load(section.split("```yaml\n", 1)[1].split("```", 1)[0])
    model = ScoringModelDocument.model_validate(document)
    assert (model.key, len(model.fit), len(model.engagement)) == ("default", 3, 4)
