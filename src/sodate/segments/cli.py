"""`sodate segments apply FILE` and `sodate segments list`.

The shared helpers of `sodate.cli` (runtime, error line, JSON output) are imported when a
command runs: `sodate.cli` imports this module to register the commands.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.markup import escape
from rich.table import Table

from sodate.errors import InvalidInput
from sodate.segments import service
from sodate.workspaces import service as workspaces

segments_app = typer.Typer(help="Create, replace and list segments.", no_args_is_help=True)

WorkspaceOption = Annotated[
    str | None,
    typer.Option("--workspace", "-w", help="Workspace id or name (optional if only one)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


@segments_app.command("apply")
def apply(
    file: Annotated[Path, typer.Argument(help="A YAML or JSON file: one segment or a list.")],
    workspace: WorkspaceOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create or replace the file's segments and recompute their members, all or none."""
    from sodate import cli as base

    documents = _read(file, base.fail)
    with base._runtime() as runtime:
        now = runtime.clock.now()
        try:
            with runtime.db.transaction() as session:
                workspace_id = workspaces.resolve_workspace(session, workspace).id
                applied = service.apply_documents(session, workspace_id, documents, now=now)
        except InvalidInput as exc:
            for detail in exc.details:
                where = ".".join(str(part) for part in detail.get("loc", []))
                base.err.print(f"  {escape(where)}: {escape(str(detail.get('msg')))}")
            base.fail(f"{escape(file.name)}: {escape(exc.message)}; nothing was saved")
    if as_json:
        base._print_json(applied)
        return
    table = Table("key", "", "members", "entered", "exited")
    for item in applied:
        table.add_row(
            item.key,
            "created" if item.created else "replaced",
            f"{item.member_count:,}",
            f"{item.entered:,}",
            f"{item.exited:,}",
        )
    base.out.print(table)


@segments_app.command("list")
def list_segments(workspace: WorkspaceOption = None, as_json: JsonOption = False) -> None:
    """The workspace's segments and their member counts."""
    from sodate import cli as base

    with base._runtime() as runtime, runtime.db.read() as session:
        workspace_id = workspaces.resolve_workspace(session, workspace).id
        segments = service.list_segments(session, workspace_id)
    if as_json:
        base._print_json(segments)
        return
    table = Table("key", "name", "kind", "members")
    for segment in segments:
        table.add_row(segment.key, segment.name, segment.kind.value, f"{segment.member_count:,}")
    base.out.print(table)


def _read(file: Path, fail: Any) -> Any:
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"cannot read {escape(str(file))}: {exc}")
    try:
        if file.suffix.lower() == ".json":
            return json.loads(text)
        return yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        kind = "JSON" if file.suffix.lower() == ".json" else "YAML"
        fail(f"{escape(file.name)} is not valid {kind}: {escape(_one_line(exc))}")


def _one_line(exc: Exception) -> str:
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        return f"{exc.problem} (line {mark.line + 1}, column {mark.column + 1})"
    return " ".join(str(exc).split())
