"""`sodate segments apply FILE` and `sodate segments list`.

The shared helpers of `sodate.cli` (runtime, error line, JSON output) are imported when a
command runs: `sodate.cli` imports this module to register the commands.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

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

    applied = base._apply_file(file, workspace, service.apply_documents)
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
