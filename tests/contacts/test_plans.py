"""SQLite's plans for lookups of contacts by id: the ids, never the workspace's whole index."""

from __future__ import annotations

import re
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from sodate.runtime import Runtime
from sodate.workspaces.schemas import Created
from tests.events.helpers import process_all, send


def test_contacts_are_looked_up_by_their_ids_not_by_the_workspace(
    client: TestClient, runtime: Runtime, workspace: Created, admin_headers: dict[str, str]
) -> None:
    """Without statistics SQLite prefers any index on `workspace_id =` to an `id IN` list, and
    then reads every contact of the workspace for a handful: once a batch, at any size."""
    if runtime.db.dialect != "sqlite":
        pytest.skip("SQLite's query plans")
    write_key = workspace.write_key.key
    users = [f"u-{n}" for n in range(12)]  # a few: SQLite looks up three ids by id anyway
    for user in users:
        send(client, write_key, "identify", {"userId": user, "traits": {"email": f"{user}@x.jp"}})
        send(client, write_key, "group", {"userId": user, "groupId": "acme", "traits": {}})
    process_all(runtime)
    statements: list[tuple[str, Any]] = []

    def remember(_conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if re.search(r"\bFROM contacts\b", statement) and " IN (" in statement:
            statements.append((statement, params))

    sa.event.listen(runtime.db.engine, "before_cursor_execute", remember)
    try:
        for user in users:  # known contacts: their profiles are loaded
            send(client, write_key, "identify", {"userId": user, "traits": {"plan": "pro"}})
        send(client, write_key, "group", {"userId": "u-1", "groupId": "acme", "traits": {"n": 2}})
        process_all(runtime)
        listed = client.get("/api/v1/contacts", headers=admin_headers)
        assert listed.status_code == 200, listed.text
    finally:
        sa.event.remove(runtime.db.engine, "before_cursor_execute", remember)
    assert any("company_id IN" in statement for statement, _ in statements)
    assert any("traits" in statement for statement, _ in statements)
    with runtime.db.read() as session:
        driver = session.connection().connection.driver_connection
        assert driver is not None
        cursor = driver.cursor()
        for statement, params in statements:
            plan = " ".join(
                row[3] for row in cursor.execute(f"EXPLAIN QUERY PLAN {statement}", params)
            )
            assert "ix_contacts_workspace_id_email" not in plan, (statement, plan)
