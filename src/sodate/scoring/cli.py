"""`sodate scoring apply FILE` and `sodate scoring list`.

The shared helpers of `sodate.cli` (runtime, error line, JSON output) are imported when a
command runs: `sodate.cli` imports this module to register the commands.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from sodate import definitions
from sodate.scoring import service
from sodate.workspaces import service as workspaces

scoring_app = typer.Typer(help="Create, replace and list scoring models.", no_args_is_help=True)

WorkspaceOption = Annotated[
    str | None,
    typer.Option("--workspace", "-w", help="Workspace id or name (optional if only one)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


@scoring_app.command("apply")
def apply(
    file: Annotated[Path, typer.Argument(help="A YAML or JSON file: one model or a list.")],
    workspace: WorkspaceOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create or replace the file's models and score every contact with them, all or none."""
    from sodate import cli as base

    applied = base._apply_file(file, workspace, definitions.apply_scoring_documents)
    if as_json:
        base._print_json(applied)
        return
    table = Table("key", "", "scored contacts", "reached", "fell")
    for item in applied:
        table.add_row(
            item.key,
            "created" if item.created else "replaced",
            f"{item.scored_contacts:,}",
            f"{item.reached:,}",
            f"{item.fell:,}",
        )
    base.out.print(table)


@scoring_app.command("list")
def list_models(workspace: WorkspaceOption = None, as_json: JsonOption = False) -> None:
    """The workspace's scoring models."""
    from sodate import cli as base

    with base._runtime() as runtime, runtime.db.read() as session:
        workspace_id = workspaces.resolve_workspace(session, workspace).id
        models = service.list_models(session, workspace_id)
    if as_json:
        base._print_json(models)
        return
    table = Table("key", "name", "fit rules", "engagement rules", "thresholds", "scored")
    for model in models:
        thresholds = ", ".join(f"{name} {value:g}" for name, value in model.thresholds.items())
        table.add_row(
            model.key,
            model.name,
            str(len(model.fit)),
            str(len(model.engagement)),
            thresholds,
            f"{model.scored_contacts:,}",
        )
    base.out.print(table)
