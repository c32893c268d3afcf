"""`sodate segments apply FILE`, `sodate segments list`, and `sodate segments add|remove KEY
FILE.csv` for static lists.

The shared helpers of `sodate.cli` (runtime, error line, JSON output) are imported when a
command runs: `sodate.cli` imports this module to register the commands.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from sodate.errors import InvalidInput
from sodate.imports.csvfile import Encoding
from sodate.segments import files, lists, service
from sodate.workspaces import service as workspaces

segments_app = typer.Typer(help="Create, replace and list segments.", no_args_is_help=True)

WorkspaceOption = Annotated[
    str | None,
    typer.Option("--workspace", "-w", help="Workspace id or name (optional if only one)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
KeyArgument = Annotated[str, typer.Argument(help="The static list's key.")]
CsvArgument = Annotated[
    Path,
    typer.Argument(
        help="A CSV file (UTF-8 or Shift_JIS/CP932) with an id, email, phone or user_id column."
    ),
]
EncodingOption = Annotated[
    Encoding, typer.Option("--encoding", help="auto detects UTF-8 (with or without BOM) or CP932.")
]


@segments_app.command("apply")
def apply(
    file: Annotated[Path, typer.Argument(help="A YAML or JSON file: one segment or a list.")],
    workspace: WorkspaceOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create or replace the file's segments and recompute their members, all or none."""
    from sodate import cli as base

    applied = base._apply_file(file, workspace, files.apply_documents)
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


@segments_app.command("add")
def add(
    key: KeyArgument,
    file: CsvArgument,
    encoding: EncodingOption = Encoding.AUTO,
    workspace: WorkspaceOption = None,
    as_json: JsonOption = False,
) -> None:
    """Add the contacts a CSV file names to a static list; rows naming nobody are listed."""
    _change_from_file(key, file, add=True, encoding=encoding, workspace=workspace, as_json=as_json)


@segments_app.command("remove")
def remove(
    key: KeyArgument,
    file: CsvArgument,
    encoding: EncodingOption = Encoding.AUTO,
    workspace: WorkspaceOption = None,
    as_json: JsonOption = False,
) -> None:
    """Remove the contacts a CSV file names from a static list; rows naming nobody are listed."""
    _change_from_file(key, file, add=False, encoding=encoding, workspace=workspace, as_json=as_json)


def _change_from_file(
    key: str, file: Path, *, add: bool, encoding: Encoding, workspace: str | None, as_json: bool
) -> None:
    from sodate import cli as base

    try:
        with file.open("rb") as stream:
            parsed = lists.read_list_file(stream, encoding)
    except OSError as exc:
        base.fail(f"cannot read {escape(str(file))}: {exc.strerror or exc}")
    except InvalidInput as exc:
        base.fail(f"{escape(file.name)}: {escape(exc.message)}")
    with base._runtime() as runtime, runtime.db.transaction() as session:
        workspace_id = workspaces.resolve_workspace(session, workspace).id
        result = lists.apply_rows(
            session, workspace_id, key, parsed, add=add, now=runtime.clock.now()
        )
    if as_json:
        base._print_json(result)
        return
    base.out.print(
        f"{escape(key)}: {result.rows:,} rows, {result.matched:,} matched, "
        f"{result.changed:,} {'added' if add else 'removed'}, {result.error_count:,} rejected",
        highlight=False,
    )
    if result.errors:
        table = Table("line", "column", "reason", title="Rejected rows")
        for error in result.errors:
            line, column = error.loc[1], error.loc[2] if len(error.loc) > 2 else ""
            table.add_row(str(line), escape(str(column)), escape(error.msg))
        base.out.print(table)
    if result.error_count > len(result.errors):
        base.out.print(
            f"… and {result.error_count - len(result.errors):,} more rejected rows", highlight=False
        )
