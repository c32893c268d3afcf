"""`sodate lifecycle apply FILE` and `sodate lifecycle stages`.

The shared helpers of `sodate.cli` (runtime, error line, JSON output) are imported when a
command runs: `sodate.cli` imports this module to register the commands.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from sodate.lifecycle import service
from sodate.workspaces import service as workspaces

lifecycle_app = typer.Typer(help="Lifecycle rules and stage counts.", no_args_is_help=True)

WorkspaceOption = Annotated[
    str | None,
    typer.Option("--workspace", "-w", help="Workspace id or name (optional if only one)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


@lifecycle_app.command("apply")
def apply(
    file: Annotated[Path, typer.Argument(help="A YAML or JSON file: the lifecycle rules.")],
    workspace: WorkspaceOption = None,
    as_json: JsonOption = False,
) -> None:
    """Replace the workspace's lifecycle rules and move every contact by them."""
    from sodate import cli as base

    applied = base._apply_file(file, workspace, service.apply_document)
    if as_json:
        base._print_json(applied)
        return
    table = Table("stage reached", "contacts moved")
    for stage, count in applied[0].moved.items():
        table.add_row(stage, f"{count:,}")
    base.out.print(table)


@lifecycle_app.command("stages")
def stages(workspace: WorkspaceOption = None, as_json: JsonOption = False) -> None:
    """How many contacts are at each stage."""
    from sodate import cli as base

    with base._runtime() as runtime, runtime.db.read() as session:
        workspace_id = workspaces.resolve_workspace(session, workspace).id
        counts = service.stage_counts(session, workspace_id)
    if as_json:
        base._print_json(counts)
        return
    table = Table("stage", "contacts")
    for count in counts:
        table.add_row(count.stage.value, f"{count.contacts:,}")
    base.out.print(table)
