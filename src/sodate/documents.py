"""Definition files (segments, scoring models, …): reading YAML or JSON, and validating every
document of a file before anything is saved (DESIGN §4: files hold one document or a list)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from sodate.conditions.schemas import ConditionError, error_details
from sodate.errors import InvalidInput

Document = TypeVar("Document", bound=BaseModel)


@dataclass
class CheckedDocuments(Generic[Document]):
    """The documents of a file as validated: the valid ones by key, and every error."""

    valid: dict[str, Document]
    errors: list[dict[str, Any]]
    """`loc` starts with the document's index."""
    invalid: dict[int, Any]
    """The documents that are not valid, by index, as written."""


def check_documents(
    documents: Any, schema: type[Document], *, plural: str
) -> CheckedDocuments[Document]:
    """Validate every document of a file: one document, a list, or `{plural: [...]}`."""
    if isinstance(documents, dict) and isinstance(documents.get(plural), list):
        documents = documents[plural]
    if not isinstance(documents, list):
        documents = [documents]
    checked: CheckedDocuments[Document] = CheckedDocuments({}, [], {})
    keys: set[str] = set()
    for index, document in enumerate(documents):
        key = _validate(schema, index, document, checked)
        if key is None:
            continue
        if key in keys:
            checked.errors.append(
                {"loc": [index, "key"], "msg": "key repeated", "type": "duplicate"}
            )
        keys.add(key)
    return checked


def _validate(
    schema: type[Document], index: int, document: Any, checked: CheckedDocuments[Document]
) -> str | None:
    """Validate one document into `checked`; its key, as far as it has one (a document that is
    not valid may still repeat another's key)."""
    try:
        item = schema.model_validate(document)
    except ValidationError as exc:
        checked.errors += error_details(exc, at=[index])
    except ConditionError as exc:
        checked.errors += [
            {**detail, "loc": [index, *detail.get("loc", [])]} for detail in exc.details
        ]
    else:
        key: str = getattr(item, "key")  # noqa: B009 (every document schema has a key)
        checked.valid[key] = item
        return key
    checked.invalid[index] = document
    written = document.get("key") if isinstance(document, dict) else None
    return written if isinstance(written, str) else None


def parse_documents(documents: Any, schema: type[Document], *, plural: str) -> dict[str, Document]:
    """The valid documents of a file by key (`check_documents`); InvalidInput naming every
    error of every document if any."""
    checked = check_documents(documents, schema, plural=plural)
    if checked.errors:
        raise InvalidInput(f"the {plural} are not valid", details=checked.errors)
    return checked.valid


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
