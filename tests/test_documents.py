"""Definition files: every error of every document is named, by the document's index."""

from __future__ import annotations

import pytest

from sodate.documents import check_documents, parse_documents
from sodate.errors import InvalidInput
from sodate.segments.schemas import SegmentDocument

FILE = {
    "segments": [
        {"key": "a", "name": "A", "condition": {"attr": "plan", "op": "exists"}},
        {"key": "b", "name": ""},
        {"key": "a", "name": "again", "kind": "static"},
        {"key": "b", "name": "B", "kind": "static"},
        "not a document",
    ]
}


def test_the_valid_documents_are_kept_and_the_others_named_with_their_errors() -> None:
    checked = check_documents(FILE, SegmentDocument, plural="segments")
    assert sorted(checked.valid) == ["a", "b"]
    assert checked.valid["a"].name == "again"  # the last of a repeated key
    assert checked.invalid == {1: {"key": "b", "name": ""}, 4: "not a document"}
    # A document that is not valid still has its key compared with the others'.
    assert [(error["loc"], error["type"]) for error in checked.errors] == [
        ([1, "name"], "string_too_short"),
        ([2, "key"], "duplicate"),
        ([3, "key"], "duplicate"),
        ([4], "model_type"),
    ]
    with pytest.raises(InvalidInput) as caught:
        parse_documents(FILE, SegmentDocument, plural="segments")
    assert caught.value.details == checked.errors
    assert caught.value.message == "the segments are not valid"
