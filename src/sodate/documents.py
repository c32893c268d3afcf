"""Definition files (segments, scoring models, …): reading YAML or JSON, and validating every
document of a file before anything is saved (DESIGN §4: files hold one document or a list)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from sodate.conditions.schemas import ConditionError, error_path
from sodate.errors import InvalidInput

Document = TypeVar("Document", bound=BaseModel)


def parse_documents(documents: Any, schema: type[Document], *, plural: str) -> dict[str, Document]:
    """The valid documents of a file by key: one document, a list, or `{plural: [...]}`.

    Every error of every document is named (`loc` starts with its index); InvalidInput if any.
    """
    if isinstance(documents, dict) and isinstance(documents.get(plural), list):
        documents = documents[plural]
    if not isinstance(documents, list):
        documents = [documents]
    parsed: dict[str, Document] = {}
    errors: list[dict[str, Any]] = []
    for index, document in enumerate(documents):
        try:
            item = schema.model_validate(document)
        except ValidationError as exc:
            errors += [
                {"loc": [index, *error_path(e["loc"])], "msg": e["msg"], "type": e["type"]}
                for e in exc.errors(include_url=False)
            ]
            continue
        except ConditionError as exc:
            errors += [{**detail, "loc": [index, *detail.get("loc", [])]} for detail in exc.details]
            continue
        key: str = getattr(item, "key")  # noqa: B009 (every document schema has a key)
        if key in parsed:
            errors.append({"loc": [index, "key"], "msg": "key repeated", "type": "duplicate"})
        parsed[key] = item
    if errors:
        raise InvalidInput(f"the {plural} are not valid", details=errors)
    return parsed


def read_document_file(file: Path) -> Any:
    """The YAML or JSON document of a file (JSON by the `.json` suffix), or ValueError with
    one line that says what is wrong and where."""
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read {file}: {exc}") from None
    try:
        if file.suffix.lower() == ".json":
            return json.loads(text)
        return yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        kind = "JSON" if file.suffix.lower() == ".json" else "YAML"
        raise ValueError(f"{file.name} is not valid {kind}: {_one_line(exc)}") from None


def _one_line(exc: Exception) -> str:
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        return f"{exc.problem} (line {mark.line + 1}, column {mark.column + 1})"
    return " ".join(str(exc).split())
