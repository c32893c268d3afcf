"""The `sodate` command line. Errors are one clear line and a non-zero exit."""

from __future__ import annotations

import json
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer
from pydantic import BaseModel, ValidationError
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from sodate.clock import ClockError, parse_instant
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
from sodate.workspaces.roles import Role
from sodate.workspaces.schemas import (
    ApiKeyCreate,
    ApiKeyKind,
    ApiKeyOut,
    Locale,
    UserCreate,
    UserOut,
    WorkspaceCreate,
)

if TYPE_CHECKING:
    from sodate.worker import ServiceRunner

app = typer.Typer(
    name="sodate",
    help="Sodate (育て): customer nurturing and marketing automation.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
workspace_app = typer.Typer(help="Create and list workspaces.", no_args_is_help=True)
user_app = typer.Typer(help="Manage the users who sign in to a workspace.", no_args_is_help=True)
apikey_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
clock_app = typer.Typer(
    help="Show or advance the clock (advancing needs SODATE_CLOCK=manual).", no_args_is_help=True
)
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

HostOption = Annotated[
    str | None, typer.Option("--host", help="Address to listen on [SODATE_HOST].")
]
PortOption = Annotated[int | None, typer.Option("--port", help="Port to listen on [SODATE_PORT].")]
WorkspaceOption = Annotated[
    str | None,
    typer.Option("--workspace", "-w", help="Workspace id or name (optional if only one)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


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


@app.command()
def migrate() -> None:
    """Bring the database schema up to date."""
    with _runtime(require_schema=False) as runtime:
        migrations.upgrade(runtime.db.engine)
        out.print(f"database is at revision {migrations.current_revision(runtime.db.engine)}")


@app.command()
def up(host: HostOption = None, port: PortOption = None) -> None:
    """Run everything: migrations, the HTTP server, and the background services beside it."""
    from sodate.supervisor import metrics_shared_with_services

    # Before anything makes a metric: the services process's counters reach `/metrics` so.
    with metrics_shared_with_services():
        _up(host, port)


def _up(host: str | None, port: int | None) -> None:
    from sodate.app import create_app
    from sodate.supervisor import ServicesProcess
    from sodate.worker import enabled_services, load_plugins, new_worker_id

    with _runtime(require_schema=False) as runtime:
        migrations.upgrade(runtime.db.engine)
        load_plugins(runtime.settings)
        # Without services the child would exit at once, and be restarted forever.
        services = (
            ServicesProcess(worker_id=new_worker_id("up"))
            if enabled_services(runtime.settings)
            else None
        )
        _serve(
            create_app(runtime, runner=services),
            runtime.settings,
            host,
            port,
            on_exit=services.stopping if services is not None else None,
        )


@app.command("up-services", hidden=True)
def up_services() -> None:
    """The background services of `sodate up`, in the process it starts; wakes come on stdin."""
    # Ctrl-C reaches the whole process group; `up` stops its services itself, after the HTTP
    # server, by closing our stdin.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from sodate.supervisor import follow_wakes

    with _runtime() as runtime:
        runner = _service_runner(runtime, role="up")
        _stop_on(runner, signal.SIGTERM)
        runner.start()
        follow_wakes(runner, sys.stdin.fileno())
        runner.wait()
        runner.stop()


@app.command()
def serve(host: HostOption = None, port: PortOption = None) -> None:
    """Run the HTTP server only (API, UI, tracking); run background work with `sodate worker`."""
    from sodate.app import create_app
    from sodate.worker import load_plugins

    with _runtime() as runtime:
        load_plugins(runtime.settings)
        _serve(create_app(runtime), runtime.settings, host, port)


def _serve(
    application: Any,
    settings: Settings,
    host: str | None,
    port: int | None,
    *,
    on_exit: Callable[[], None] | None = None,
) -> None:
    import uvicorn

    class GracefulServer(uvicorn.Server):
        # uvicorn re-raises SIGTERM after shutting down; a finished shutdown is a clean exit.
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            if on_exit is not None:
                on_exit()
            super().handle_exit(sig, frame)
            self._captured_signals.clear()

    config = uvicorn.Config(
        application,
        host=host or settings.host,
        port=port or settings.port,
        log_config=None,
        access_log=False,
        proxy_headers=True,
    )
    GracefulServer(config).run()


@app.command()
def worker(
    host: HostOption = None,
    port: Annotated[
        int | None,
        typer.Option(
            "--port", help="Port for /healthz and /metrics; 0 for none [SODATE_WORKER_PORT]."
        ),
    ] = None,
) -> None:
    """Run the background services (jobs, timers, maintenance) until SIGTERM or Ctrl-C."""
    from sodate.worker_http import start_health_server

    with _runtime() as runtime:
        settings = runtime.settings
        runner = _service_runner(runtime, role="worker")
        listen_port = settings.worker_port if port is None else port
        server = (
            start_health_server(runtime, host or settings.host, listen_port)
            if listen_port
            else None
        )
        _stop_on(runner, signal.SIGTERM, signal.SIGINT)
        runner.start()
        runner.wait()
        runner.stop()
        if server is not None:
            server.shutdown()


def _service_runner(runtime: Runtime, *, role: str) -> ServiceRunner:
    from sodate.worker import ServiceRunner, enabled_services, load_plugins, new_worker_id

    load_plugins(runtime.settings)
    return ServiceRunner(runtime, enabled_services(runtime.settings), worker_id=new_worker_id(role))


def _stop_on(runner: ServiceRunner, *signals: signal.Signals) -> None:
    def _stop(signum: int, _frame: FrameType | None) -> None:
        err.print(f"received {signal.Signals(signum).name}: finishing the current batches")
        runner.stop_event.set()
        runner.wake()

    for signum in signals:
        signal.signal(signum, _stop)


@workspace_app.command("create")
def workspace_create(
    name: Annotated[str, typer.Argument(help="The workspace's name, e.g. your company.")],
    timezone: Annotated[str | None, typer.Option(help="IANA time zone [SODATE_TIMEZONE].")] = None,
    locale: Annotated[Locale, typer.Option(help="Language of the UI and defaults.")] = Locale.JA,
    as_json: JsonOption = False,
) -> None:
    """Create a workspace; print its id, an admin API key and a tracking write key."""
    with _runtime() as runtime:
        data = _validated(
            WorkspaceCreate,
            name=name,
            timezone=timezone or runtime.settings.timezone,
            locale=locale,
        )
        with runtime.db.transaction() as session:
            created = workspaces.create_workspace_with_keys(session, data, now=runtime.clock.now())
    if as_json:
        _print_json(created)
        return
    out.print(f"Workspace [bold]{created.workspace.name}[/] created.", highlight=False)
    out.print(f"  workspace id   {created.workspace.id}", highlight=False)
    out.print(f"  admin API key  {created.admin_key.key}   (role owner)", highlight=False)
    out.print(f"  write key      {created.write_key.key}   (tracking)", highlight=False)
    out.print("Keep the keys now: they are stored hashed and cannot be shown again.")


@workspace_app.command("list")
def workspace_list(as_json: JsonOption = False) -> None:
    """List the workspaces."""
    with _runtime() as runtime, runtime.db.read() as session:
        rows = [workspaces.workspace_out(w) for w in workspaces.list_workspaces(session)]
    if as_json:
        _print_json(rows)
        return
    table = Table("id", "name", "time zone", "locale")
    for row in rows:
        table.add_row(row.id, row.name, row.timezone, row.locale.value)
    out.print(table)


@user_app.command("create")
def user_create(
    email: Annotated[str, typer.Option(help="Sign-in email address.")],
    name: Annotated[str, typer.Option(help="Display name.")],
    role: Annotated[
        Role, typer.Option(help="owner, admin, marketer, sales or viewer.")
    ] = Role.MARKETER,
    password: Annotated[
        str,
        typer.Option(
            prompt=True,
            hide_input=True,
            confirmation_prompt=True,
            envvar="SODATE_USER_PASSWORD",
            help="At least 10 characters (prompted if not given).",
        ),
    ] = "",
    workspace: WorkspaceOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create a user who signs in with email and password."""
    data = _validated(UserCreate, email=email, name=name, role=role, password=password)
    with _runtime() as runtime, runtime.db.transaction() as session:
        target = workspaces.resolve_workspace(session, workspace)
        user = UserOut.model_validate(
            workspaces.create_user(
                session, target.id, data, granter=Role.OWNER, now=runtime.clock.now()
            )
        )
    if as_json:
        _print_json(user)
    else:
        out.print(
            f"user {user.email} ({user.role.value}) created with id {user.id}", highlight=False
        )


@apikey_app.command("create")
def apikey_create(
    name: Annotated[str, typer.Option(help="What the key is for.")],
    kind: Annotated[
        ApiKeyKind, typer.Option(help="admin (REST API) or tracking (write key).")
    ] = ApiKeyKind.ADMIN,
    role: Annotated[
        Role | None, typer.Option(help="Role of an admin key (default marketer).")
    ] = None,
    workspace: WorkspaceOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create an API key. The key is printed once and stored only as a hash."""
    data = _validated(ApiKeyCreate, name=name, kind=kind, role=role)
    with _runtime() as runtime, runtime.db.transaction() as session:
        target = workspaces.resolve_workspace(session, workspace)
        created = workspaces.create_api_key(
            session, target.id, data, granter=Role.OWNER, now=runtime.clock.now()
        )
    if as_json:
        _print_json(created)
    else:
        role_text = f", role {created.role.value}" if created.role else ""
        out.print(
            f"{created.kind.value} key {created.id}{role_text}: {created.key}", highlight=False
        )
        out.print("Keep it now: it cannot be shown again.")


@apikey_app.command("list")
def apikey_list(workspace: WorkspaceOption = None, as_json: JsonOption = False) -> None:
    """List a workspace's API keys (hints only; keys are never stored)."""
    with _runtime() as runtime, runtime.db.read() as session:
        target = workspaces.resolve_workspace(session, workspace)
        keys = [ApiKeyOut.model_validate(k) for k in workspaces.list_api_keys(session, target.id)]
    if as_json:
        _print_json(keys)
        return
    table = Table("id", "kind", "role", "name", "hint", "revoked")
    for key in keys:
        revoked = key.revoked_at.isoformat() if key.revoked_at else ""
        table.add_row(
            str(key.id),
            key.kind.value,
            key.role.value if key.role else "",
            key.name,
            key.hint,
            revoked,
        )
    out.print(table)


@apikey_app.command("revoke")
def apikey_revoke(
    key_id: Annotated[int, typer.Argument(help="The key's id (see `sodate apikey list`).")],
    workspace: WorkspaceOption = None,
) -> None:
    """Revoke an API key at once."""
    with _runtime() as runtime, runtime.db.transaction() as session:
        target = workspaces.resolve_workspace(session, workspace)
        workspaces.revoke_api_key(
            session, target.id, key_id, granter=Role.OWNER, now=runtime.clock.now()
        )
    out.print(f"key {key_id} revoked")


@clock_app.command("show")
def clock_show(as_json: JsonOption = False) -> None:
    """Print the clock's mode and current time."""
    with _runtime() as runtime:
        clock = runtime.clock
        info = {"mode": "manual" if clock.is_manual else "system", "now": clock.now().isoformat()}
    if as_json:
        _print_json(info)
    else:
        out.print(f"{info['mode']} clock: {info['now']}", highlight=False)


@clock_app.command("advance")
def clock_advance(
    duration: Annotated[str | None, typer.Argument(help="How far: 3d, 2h30m, 1w, 90s.")] = None,
    to: Annotated[str | None, typer.Option(help="Or an ISO instant to move to.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Move the manual clock forward and run the jobs and timers that fall due."""
    from sodate.system.service import advance_clock
    from sodate.worker import load_plugins, new_worker_id

    if (duration is None) == (to is None):
        fail("give a duration (e.g. 3d) or --to, not both")
    with _runtime() as runtime:
        load_plugins(runtime.settings)
        now, ran = advance_clock(
            runtime,
            by=duration,
            to=parse_instant(to) if to else None,
            worker_id=new_worker_id("cli"),
        )
    if as_json:
        _print_json({"now": now.isoformat(), "jobs_run": ran})
    else:
        out.print(f"clock is now {now.isoformat()}; {ran} due job(s) ran", highlight=False)


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
