"""Importing contacts: encodings, validation with a per-row report, de-duplication, re-import."""

from __future__ import annotations

import weakref
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from sodate.contacts import writes
from sodate.contacts.schemas import ContactUpsert
from sodate.errors import InvalidInput
from sodate.imports import service
from sodate.runtime import Runtime, collection_deferred
from sodate.workspaces.schemas import Created
from tests.events.helpers import timeline
from tests.imports.helpers import contacts, errors_of, import_file, write_csv

EXHIBITION = "展示会2026"
HEADER = ["メールアドレス", "姓", "名", "会社名", "部署", "役職", "電話番号", "来場日"]
PEOPLE = [
    [
        "taro@example.jp",
        "山田",
        "太郎",
        "株式会社サンプル",
        "営業部",
        "部長",
        "090-1234-5678",
        "2026/3/1",
    ],
    ["ＨＡＮＡＫＯ@example.jp", "佐藤", "花子", "ｻﾝﾌﾟﾙ商事", "", "", "", "2026/3/2"],
    ["", "髙橋", "一", "テスト株式会社", "開発部", "", "０３－１２３４－５６７８", ""],
]


@pytest.mark.parametrize("encoding", ["utf-8", "cp932"])
def test_japanese_file_in_either_encoding(
    encoding: str,
    tmp_path: Path,
    runtime: Runtime,
    workspace: Created,
    client: TestClient,
    admin_headers: dict[str, str],
) -> None:
    path = write_csv(tmp_path / "名刺.csv", [HEADER, *PEOPLE], encoding)
    result = import_file(
        runtime,
        workspace.workspace.id,
        path,
        source=EXHIBITION,
        mapping={"来場日": "visited:date"},
    )
    assert result.encoding == encoding
    assert (result.total, result.created, result.updated, result.rejected) == (3, 3, 0, 0)
    taro = contacts(client, admin_headers, email="taro@example.jp")[0]
    assert taro["name"] == "山田 太郎"
    assert taro["phone"] == "+819012345678"
    assert taro["traits"]["department"] == "営業部"
    assert taro["traits"]["visited"] == "2026-03-01"
    assert taro["company"]["name"] == "株式会社サンプル"
    assert taro["sources"] == [EXHIBITION]
    hanako = contacts(client, admin_headers, email="hanako@example.jp")[0]
    assert hanako["company"]["name"] == "ｻﾝﾌﾟﾙ商事"  # the name as written; the key is evened out
    assert hanako["company"]["group_key"] == "サンプル商事"
    takahashi = contacts(client, admin_headers, phone="+81312345678")[0]
    assert takahashi["name"] == "髙橋 一"


def test_each_row_is_on_its_contacts_timeline_as_written(
    tmp_path: Path,
    runtime: Runtime,
    workspace: Created,
    client: TestClient,
    admin_headers: dict[str, str],
) -> None:
    # The parsing process serializes each row's traits for its identify event: the timeline
    # shows the row's checked values (the phone as written, in half-width), not the profile's
    # normalized ones (E.164).
    path = write_csv(tmp_path / "名刺.csv", [HEADER, *PEOPLE])
    import_file(
        runtime, workspace.workspace.id, path, source=EXHIBITION, mapping={"来場日": "visited:date"}
    )
    takahashi = contacts(client, admin_headers, phone="+81312345678")[0]
    [event] = timeline(client, admin_headers, takahashi["id"])
    assert event["type"] == "identify"
    assert event["properties"] == {
        "lastName": "髙橋",
        "firstName": "一",
        "department": "開発部",
        "phone": "03-1234-5678",
    }
    assert event["context"] == {
        "importId": event["context"]["importId"],
        "source": EXHIBITION,
        "externalIds": [],
    }


def test_bad_rows_are_reported_and_every_good_row_is_imported(
    tmp_path: Path,
    runtime: Runtime,
    workspace: Created,
    client: TestClient,
    admin_headers: dict[str, str],
) -> None:
    rows = [
        ["email", "phone", "氏名", "年齢", "external:crm"],
        ["good1@example.jp", "", "一", "30", ""],  # 2
        ["not-an-email", "", "二", "30", ""],  # 3
        ["good2@example.jp", "12345", "三", "", ""],  # 4
        ["", "", "四", "40", ""],  # 5
        ["good3@example.jp", "", "五", "forty", ""],  # 6
        ["good4@example.jp", "", "六"],  # 7: values missing
        ["", "", "七", "", "null"],  # 8
        ["good5@example.jp", "090-1111-2222", "八", "50", "C-8"],  # 9
        ["-", "-", "九", "-", "C-10"],  # 10: dashes are empty cells
        ["", "", "", "", ""],  # 11: blank, not a row
    ]
    path = write_csv(tmp_path / "mixed.csv", rows)
    result = import_file(
        runtime, workspace.workspace.id, path, mapping={"年齢": "age:int"}, chunk=3
    )
    assert (result.total, result.imported, result.rejected) == (9, 3, 6)
    report = [
        (e.line, e.column, e.value, e.reason)
        for e in errors_of(runtime, workspace.workspace.id, result.id)
    ]
    assert report == [
        (3, "email", "not-an-email", "not an email address"),
        (4, "phone", "12345", "not a valid phone number"),
        (5, "email, phone, external:crm", None, "no identifier: every identifier column is empty"),
        (6, "年齢", "forty", "not a whole number"),
        (7, None, None, "3 values, but the header has 5 columns"),
        (8, "external:crm", "null", "a placeholder, not an id"),
    ]
    imported = contacts(client, admin_headers)
    assert sorted(c["name"] for c in imported) == ["一", "九", "八"]
    assert {c["traits"].get("age") for c in imported} == {30, 50, None}


def test_a_quote_left_open_rejects_its_row_and_every_row_after_it_is_imported(
    tmp_path: Path,
    runtime: Runtime,
    workspace: Created,
    client: TestClient,
    admin_headers: dict[str, str],
) -> None:
    path = tmp_path / "quote.csv"
    lines = ["メールアドレス,氏名,メモ", "q0@example.jp,零,普通", 'q1@example.jp,一郎,"27インチ']
    lines += [f"q{n}@example.jp,名前{n},普通" for n in range(2, 9)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    # Chunks of 3: the rows after the broken one are read by the parsing process too.
    result = import_file(runtime, workspace.workspace.id, path, chunk=3)
    assert (result.total, result.created, result.rejected) == (9, 8, 1)
    [error] = errors_of(runtime, workspace.workspace.id, result.id)
    assert (error.line, error.column) == (3, None)
    assert error.reason == 'bad CSV: a value in quotes is not closed (a " opens it on this line)'
    emails = {c["email"] for c in contacts(client, admin_headers)}
    assert emails == {f"q{n}@example.jp" for n in range(9) if n != 1}


def test_undecodable_bytes_reject_their_row_only(
    tmp_path: Path, runtime: Runtime, workspace: Created
) -> None:
    path = tmp_path / "broken.csv"
    path.write_bytes(
        "メール,氏名\r\nok@example.jp,山田\r\n".encode() + b"x@example.jp,\xff\xfe\r\n"
    )
    result = import_file(runtime, workspace.workspace.id, path)
    assert (result.encoding, result.imported, result.rejected) == ("utf-8", 1, 1)
    [error] = errors_of(runtime, workspace.workspace.id, result.id)
    assert (error.line, error.column, error.value) == (3, "氏名", "\\xff\\xfe")
    assert error.reason == "holds bytes that are not valid utf-8"


def test_reimport_is_idempotent(
    tmp_path: Path,
    runtime: Runtime,
    workspace: Created,
    client: TestClient,
    admin_headers: dict[str, str],
) -> None:
    path = write_csv(tmp_path / "contacts.csv", [HEADER, *PEOPLE])
    first = import_file(runtime, workspace.workspace.id, path, source=EXHIBITION)
    before = contacts(client, admin_headers)
    again = import_file(runtime, workspace.workspace.id, path, source=EXHIBITION)
    assert (first.created, first.updated) == (3, 0)
    assert (again.created, again.updated, again.rejected) == (0, 3, 0)
    after = contacts(client, admin_headers)
    assert [c["id"] for c in after] == [c["id"] for c in before]
    assert [c["traits"] for c in after] == [c["traits"] for c in before]


@pytest.mark.parametrize(
    ("existing", "row"),
    [
        (ContactUpsert(email="Known@Example.jp"), ["known@example.jp", "", ""]),
        (ContactUpsert(phone="+81 90-1234-5678"), ["", "09012345678", ""]),
        (ContactUpsert(external_ids={"crm": "C-001"}), ["", "", "C-001"]),
    ],
    ids=["email", "phone", "external id"],
)
def test_rows_update_the_contact_they_identify(
    existing: ContactUpsert,
    row: list[str],
    tmp_path: Path,
    runtime: Runtime,
    workspace: Created,
    client: TestClient,
    admin_headers: dict[str, str],
) -> None:
    with runtime.db.transaction() as session:
        known = writes.upsert_contact(
            session, workspace.workspace.id, existing, now=runtime.clock.now()
        )
    path = write_csv(tmp_path / "dedup.csv", [["email", "phone", "顧客ID", "役職"], [*row, "課長"]])
    result = import_file(
        runtime, workspace.workspace.id, path, source=EXHIBITION, mapping={"顧客ID": "external:crm"}
    )
    assert (result.created, result.updated) == (0, 1)
    [contact] = contacts(client, admin_headers)
    assert contact["id"] == known.contact_id
    assert contact["traits"]["title"] == "課長"
    assert contact["sources"] == ["api", EXHIBITION]


def test_two_rows_of_one_new_person_create_one_contact(
    tmp_path: Path,
    runtime: Runtime,
    workspace: Created,
    client: TestClient,
    admin_headers: dict[str, str],
) -> None:
    rows = [
        ["email", "phone"],
        ["a@example.jp", ""],
        ["", "090-1234-5678"],
        ["a@example.jp", "090-1234-5678"],
    ]
    result = import_file(runtime, workspace.workspace.id, write_csv(tmp_path / "a.csv", rows))
    # The third row says the first two are one person: one contact is created, not two.
    assert (result.created, result.updated) == (1, 2)
    [contact] = contacts(client, admin_headers)
    assert (contact["email"], contact["phone"]) == ("a@example.jp", "+819012345678")


def test_a_chunk_that_fails_to_store_is_retried_row_by_row(
    tmp_path: Path,
    runtime: Runtime,
    workspace: Created,
    client: TestClient,
    admin_headers: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = writes.upsert_contacts

    def fragile(session, workspace_id, rows, **kwargs):
        if any(row.email == "poison@example.jp" for row in rows):
            raise RuntimeError("storage refused the row\nwith details")
        return real(session, workspace_id, rows, **kwargs)

    monkeypatch.setattr(writes, "upsert_contacts", fragile)
    rows = [["email"], ["a@example.jp"], ["poison@example.jp"], ["b@example.jp"]]
    result = import_file(runtime, workspace.workspace.id, write_csv(tmp_path / "p.csv", rows))
    assert (result.imported, result.rejected, result.created) == (2, 1, 2)
    [error] = errors_of(runtime, workspace.workspace.id, result.id)
    assert (error.line, error.reason) == (3, "could not be stored: storage refused the row")
    assert sorted(c["email"] for c in contacts(client, admin_headers)) == [
        "a@example.jp",
        "b@example.jp",
    ]


def test_rows_that_fail_alone_are_let_go_while_the_collector_waits(
    tmp_path: Path, runtime: Runtime, workspace: Created, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = writes.upsert_contacts
    failed_alone: list[weakref.ref[BaseException]] = []

    class Refused(RuntimeError):
        pass

    def fragile(session, workspace_id, rows, **kwargs):
        if any(row.email.startswith("poison") for row in rows):
            error = Refused("storage refused the row")  # a local of the frame it is raised from
            if len(rows) == 1:
                failed_alone.append(weakref.ref(error))
            raise error
        return real(session, workspace_id, rows, **kwargs)

    monkeypatch.setattr(writes, "upsert_contacts", fragile)
    rows = [["email"]] + [[f"{kind}{n}@example.jp"] for n in range(20) for kind in ("a", "poison")]
    with collection_deferred():
        result = import_file(runtime, workspace.workspace.id, write_csv(tmp_path / "p.csv", rows))
        alive = [ref for ref in failed_alone if ref() is not None]
    assert (result.imported, result.rejected) == (20, 20)
    assert len(failed_alone) == 20
    assert alive == []


def test_a_chunk_whose_every_row_fails_is_a_failure_not_a_rejection(
    tmp_path: Path, runtime: Runtime, workspace: Created, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args, **kwargs):
        raise RuntimeError("the database is gone")

    monkeypatch.setattr(writes, "upsert_contacts", broken)
    rows = [["email"], ["a@example.jp"], ["b@example.jp"]]
    with pytest.raises(RuntimeError, match="the database is gone"):
        import_file(runtime, workspace.workspace.id, write_csv(tmp_path / "c.csv", rows))


def test_the_chunks_of_a_transaction_commit_together_with_the_position(
    tmp_path: Path,
    runtime: Runtime,
    workspace: Created,
    client: TestClient,
    admin_headers: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = service.write_chunk
    calls = 0

    def failing_fourth(*args, **kwargs):
        nonlocal calls
        calls += 1
        if calls == 4:
            raise RuntimeError("disk full")
        return real(*args, **kwargs)

    monkeypatch.setattr(service, "write_chunk", failing_fourth)
    rows = [["email"]] + [[f"p{n}@example.jp"] for n in range(9)]
    with pytest.raises(RuntimeError, match="disk full"):
        import_file(
            runtime,
            workspace.workspace.id,
            write_csv(tmp_path / "t.csv", rows),
            chunk=2,
            transaction_chunks=2,
        )
    # The first transaction (chunks 1 and 2) stands; the second's first chunk went with it.
    emails = sorted(c["email"] for c in contacts(client, admin_headers))
    assert emails == [f"p{n}@example.jp" for n in range(4)]
    with runtime.db.read() as session:
        [listed] = service.list_imports(
            session, workspace.workspace.id, limit=10, before=None
        ).items
        record = service.import_record(session, workspace.workspace.id, listed.id)
        # Resuming would start at the fifth row of data, line 6.
        assert (record.status, record.total, record.created, record.line) == ("failed", 4, 4, 6)


def test_the_error_report_is_bounded_but_counts_everything(
    tmp_path: Path, runtime: Runtime, workspace: Created, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "MAX_STORED_ERRORS", 3)
    rows = [["email"]] + [[f"bad{i}"] for i in range(5)] + [["ok@example.jp"]]
    result = import_file(
        runtime, workspace.workspace.id, write_csv(tmp_path / "b.csv", rows), chunk=2
    )
    assert (result.rejected, result.imported, result.error_count) == (5, 1, 5)
    assert result.errors_not_stored == 2
    assert [e.line for e in errors_of(runtime, workspace.workspace.id, result.id)] == [2, 3, 4]


def test_a_file_that_cannot_be_imported_is_refused_whole(
    tmp_path: Path, runtime: Runtime, workspace: Created
) -> None:
    path = write_csv(tmp_path / "no-id.csv", [["氏名", "会社名"], ["山田", "サンプル"]])
    with pytest.raises(InvalidInput, match="no column identifies the contact"):
        import_file(runtime, workspace.workspace.id, path)


def test_an_integer_beyond_64_bits_stays_exact_through_later_updates(
    tmp_path: Path,
    runtime: Runtime,
    workspace: Created,
    client: TestClient,
    admin_headers: dict[str, str],
) -> None:
    big = "123456789012345678901234"
    first = write_csv(
        tmp_path / "first.csv", [["email", "会員番号", "役職"], ["a@example.jp", big, "主任"]]
    )
    import_file(runtime, workspace.workspace.id, first, mapping={"会員番号": "number:int"})
    # The second file loads the stored profile, changes it and writes it back.
    second = write_csv(tmp_path / "second.csv", [["email", "役職"], ["a@example.jp", "課長"]])
    import_file(runtime, workspace.workspace.id, second)
    [contact] = contacts(client, admin_headers)
    assert contact["traits"]["number"] == int(big)
    assert contact["traits"]["title"] == "課長"
