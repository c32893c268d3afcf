"""The `sodate` command line. Errors are one clear line and a non-zero exit.

Here are the application, the helpers its commands share (runtime, error line, JSON output)
and `main`; Sodate's own commands are in `sodate.commands`, a capability's in its package
(`sodate.segments.cli`, `sodate.imports.cli`, …), each registered below.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import typer
from pydantic import BaseModel, ValidationError
from rich.console import Console
from rich.markup import escape

from sodate.clock import ClockError
from sodate.commands import servers
from sodate.commands.clock import clock_app
from sodate.commands.workspaces import apikey_app, user_app, workspace_app
from sodate.db import migrate as migrations
from sodate.documents import read_document_file
from sodate.errors import InvalidInput, SodateError
from sodate.imports.cli import export_app, import_app
from sodate.lifecycle.cli import lifecycle_app
from sodate.logs import configure_logging
from sodate.runtime import Runtime
from sodate.scoring.cli import scoring_app
from sodate.segments.cli import segments_app
from sodate.settings import Settings, SettingsError, load_settings
from sodate.workspaces import service as workspaces

app = typer.Typer(
    name="sodate",
    help="Sodate (育て): customer nurturing and marketing automation.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command()(servers.migrate)
app.command()(servers.up)
app.command("up-services", hidden=True)(servers.up_services)
app.command()(servers.serve)
app.command()(servers.worker)
app.add_typer(workspace_app, name="workspace")
app.add_typer(user_app, name="user")
app.add_typer(apikey_app, name="apikey")
app.add_typer(clock_app, name="clock")
app.add_typer(import_app, name="import")
app.add_typer(export_app, name="export")
app.add_typer(segments_app, name="segments")
app.add_typer(scoring_app, name="scoring")
app.add_typer(lifecycle_app, name="lifecycle")

T = TypeVar("T")

out = Console()
err = Console(stderr=True)


def fail(message: str) -> NoReturn:
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(1)


@contextmanager
def _runtime(*, require_schema: bool = True) -> Iterator[Runtime]:
    runtime = Runtime.create(_settings())
    try:
        if require_schema:
            _check_schema(runtime)
        yield runtime
    finally:
        runtime.close()


def _settings() -> Settings:
    settings = load_settings()
    configure_logging(settings)
    return settings


def _check_schema(runtime: Runtime) -> None:
    if not migrations.is_up_to_date(runtime.db.engine):
        raise SettingsError("the database schema is not up to date: run `sodate migrate` first")


def _apply_file(
    file: Path,
    workspace: str | None,
    apply: Callable[..., list[T]],
) -> list[T]:
    """Read a definition file and apply its documents in one transaction, all or none; every
    error is printed with its path, then one error line."""
    try:
        documents = read_document_file(file)
    except ValueError as exc:
        fail(escape(str(exc)))
    with _runtime() as runtime:
        now = runtime.clock.now()
        try:
            with runtime.db.transaction() as session:
                workspace_id = workspaces.resolve_workspace(session, workspace).id
                return apply(session, workspace_id, documents, now=now)
        except InvalidInput as exc:
            for detail in exc.details:
                where = ".".join(str(part) for part in detail.get("loc", []))
                err.print(f"  {escape(where)}: {escape(str(detail.get('msg')))}")
            fail(f"{escape(file.name)}: {escape(exc.message)}; nothing was saved")


def _print_json(value: Any) -> None:
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    elif isinstance(value, list):
        value = [v.model_dump(mode="json") if isinstance(v, BaseModel) else v for v in value]
    out.print_json(json.dumps(value, ensure_ascii=False))


def _validated(model: type[Any], **values: Any) -> Any:
    try:
        return model(**values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}" for error in exc.errors()
        )
        fail(problems)


def main() -> None:
    handled: tuple[type[Exception], ...] = (SodateError, SettingsError, ClockError)
    try:
        result = app(standalone_mode=False)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except handled as exc:
        _fail_quietly(str(getattr(exc, "message", exc)))
    except (typer.Abort, KeyboardInterrupt):
        _fail_quietly("aborted")
    except Exception as exc:
        # Usage errors and bad options: click's, or the copy of click that newer typer ships.
        show = getattr(exc, "show", None)
        if callable(show) and isinstance(getattr(exc, "exit_code", None), int):
            if type(exc).__name__ != "NoArgsIsHelpError":  # its help is shown already
                show()
            sys.exit(exc.exit_code)  # type: ignore[attr-defined]
        _fail_quietly(_describe_unexpected(exc))
    if isinstance(result, int):
        sys.exit(result)


def _describe_unexpected(exc: Exception) -> str:
    from sqlalchemy.exc import OperationalError

    if isinstance(exc, OperationalError):
        return f"cannot use the database: {str(exc.orig).strip().splitlines()[0]}"
    return f"{type(exc).__name__}: {exc}"


def _fail_quietly(message: str) -> NoReturn:
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    sys.exit(1)
