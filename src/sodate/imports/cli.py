"""`sodate import contacts|events FILE` and `sodate export contacts`.

The shared helpers of `sodate.cli` (runtime, error line, JSON output) are imported when a
command runs: `sodate.cli` imports this module to register the commands.
"""

from __future__ import annotations

import sys
import time
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Annotated, BinaryIO

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from sodate.imports import service
from sodate.imports.csvfile import Encoding
from sodate.imports.export import ExportFormat, export_contacts
from sodate.imports.local import import_file
from sodate.imports.models import ImportKind
from sodate.imports.schemas import DEFAULT_SOURCE, ImportOptions, ImportOut, parse_mapping
from sodate.workspaces import service as workspaces

ERRORS_SHOWN = 20
ERRORS_IN_JSON = 100

import_app = typer.Typer(
    help="Import contacts or offline events (purchases, survey answers) from CSV files.",
    no_args_is_help=True,
)
export_app = typer.Typer(help="Export data.", no_args_is_help=True)

FileArgument = Annotated[
    Path, typer.Argument(help="A CSV file (UTF-8 or Shift_JIS/CP932), header on the first line.")
]
SourceOption = Annotated[
    str, typer.Option("--source", help='Tag recorded on the contacts, e.g. "展示会2026".')
]
MapOption = Annotated[
    list[str] | None,
    typer.Option(
        "--map",
        help="header=field, repeatable: email, phone, user_id, external:TYPE, "
        "company, trait[:int|float|bool|date|datetime] … (see the imports README).",
    ),
]
EncodingOption = Annotated[
    Encoding, typer.Option("--encoding", help="auto detects UTF-8 (with or without BOM) or CP932.")
]
WorkspaceOption = Annotated[
    str | None,
    typer.Option("--workspace", "-w", help="Workspace id or name (optional if only one)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


@import_app.command("contacts")
def import_contacts(
    file: FileArgument,
    source: SourceOption = DEFAULT_SOURCE,
    mapping: MapOption = None,
    encoding: EncodingOption = Encoding.AUTO,
    workspace: WorkspaceOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create or update contacts, de-duplicated by email, phone, user id and external ids."""
    _import(file, ImportKind.CONTACTS, source, mapping, encoding, None, workspace, as_json)


@import_app.command("events")
def import_events(
    file: FileArgument,
    source: SourceOption = DEFAULT_SOURCE,
    mapping: MapOption = None,
    encoding: EncodingOption = Encoding.AUTO,
    event: Annotated[
        str | None, typer.Option("--event", help="Event name for rows without an event column.")
    ] = None,
    workspace: WorkspaceOption = None,
    as_json: JsonOption = False,
) -> None:
    """Record offline events (store purchases, survey answers) on their contacts' timelines."""
    _import(file, ImportKind.EVENTS, source, mapping, encoding, event, workspace, as_json)


def _import(
    file: Path,
    kind: ImportKind,
    source: str,
    mapping: list[str] | None,
    encoding: Encoding,
    event: str | None,
    workspace: str | None,
    as_json: bool,
) -> None:
    from sodate import cli as base

    options: ImportOptions = base._validated(
        ImportOptions,
        kind=kind,
        source=source,
        encoding=encoding,
        mapping=parse_mapping(mapping or ()),
        event=event,
    )
    if not file.is_file():
        base.fail(f"cannot read {escape(str(file))}: not a file")
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[rows]:,} rows, {task.fields[rate]:,.0f} rows/s"),
        TimeElapsedColumn(),
    )
    with base._runtime() as runtime:
        with runtime.db.read() as session:
            workspace_id = workspaces.resolve_workspace(session, workspace).id
        started = time.monotonic()
        with Progress(*columns, console=base.err, transient=True) as progress:
            task = progress.add_task(file.name, total=file.stat().st_size, rows=0, rate=0.0)

            def show(done: ImportOut) -> None:
                rate = done.total / max(time.monotonic() - started, 1e-6)
                progress.update(task, completed=done.bytes_read, rows=done.total, rate=rate)

            try:
                result = import_file(runtime, workspace_id, file, options, on_commit=show)
            except OSError as exc:
                base.fail(f"cannot read {escape(str(file))}: {exc.strerror or exc}")
        elapsed = time.monotonic() - started
        with runtime.db.read() as session:
            errors = service.list_errors(
                session, workspace_id, result.id, limit=ERRORS_IN_JSON, after=None
            )
    if as_json:
        base._print_json(
            {
                "import": result.model_dump(mode="json"),
                "errors": [error.model_dump(mode="json") for error in errors.items],
            }
        )
        return
    _print_summary(base.out, result, elapsed)
    if errors.items:
        table = Table("line", "column", "value", "reason", title="First rejected rows")
        for error in errors.items[:ERRORS_SHOWN]:
            table.add_row(
                str(error.line),
                escape(error.column or ""),
                escape(error.value or ""),
                escape(error.reason),
            )
        base.out.print(table)
        if result.error_count > ERRORS_SHOWN:
            base.out.print(
                f"All {result.error_count:,} errors: GET /api/v1/imports/{result.id}/errors",
                highlight=False,
            )


def _print_summary(out: Console, result: ImportOut, elapsed: float) -> None:
    title = f"Import {result.id}: {escape(result.file_name)}"
    table = Table("", "", show_header=False, title=title)
    table.add_row("encoding", result.encoding)
    table.add_row("source", escape(result.source))
    table.add_row("rows", f"{result.total:,}")
    if result.kind is ImportKind.CONTACTS:
        table.add_row("created", f"{result.created:,}")
        table.add_row("updated", f"{result.updated:,}")
    else:
        table.add_row("events added", f"{result.created:,}")
        table.add_row("already imported", f"{result.skipped:,}")
    table.add_row("rejected", f"{result.rejected:,}")
    table.add_row("time", f"{elapsed:.1f} s ({result.total / max(elapsed, 1e-6):,.0f} rows/s)")
    out.print(table)
    if result.rejected:
        out.print(
            f"{result.rejected:,} of {result.total:,} rows were rejected (see below); "
            f"the other {result.imported:,} were imported.",
            highlight=False,
        )
    else:
        out.print(f"All {result.imported:,} rows were imported.", highlight=False)


@export_app.command("contacts")
def export_contacts_command(
    fmt: Annotated[ExportFormat, typer.Option("--format", help="csv or jsonl.")] = (
        ExportFormat.CSV
    ),
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write (default: stdout).")
    ] = None,
    bom: Annotated[
        bool | None,
        typer.Option("--bom/--no-bom", help="UTF-8 byte order mark for Excel (default: CSV)."),
    ] = None,
    workspace: WorkspaceOption = None,
) -> None:
    """Export every contact: CSV (one column per trait, UTF-8) or JSON Lines."""
    from sodate import cli as base

    with_bom = fmt is ExportFormat.CSV if bom is None else bom
    with base._runtime() as runtime:
        with runtime.db.read() as session:
            workspace_id = workspaces.resolve_workspace(session, workspace).id
        sink: AbstractContextManager[BinaryIO]
        try:
            sink = output.open("wb") if output else nullcontext(sys.stdout.buffer)
        except OSError as exc:
            base.fail(f"cannot write {escape(str(output))}: {exc.strerror or exc}")
        count = 0
        with (
            sink as target,
            runtime.db.read() as session,
            Progress(
                TextColumn("exporting"),
                TextColumn("{task.completed:,} contacts"),
                console=base.err,
                transient=True,
            ) as progress,
        ):
            task = progress.add_task("export", total=None)
            for text, written in export_contacts(session, workspace_id, fmt=fmt, bom=with_bom):
                target.write(text.encode())
                count += written
                progress.update(task, completed=count)
    base.err.print(f"{count:,} contacts exported", highlight=False)
