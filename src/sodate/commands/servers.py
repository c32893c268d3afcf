"""`sodate migrate`, `up`, `serve` and `worker`: the schema brought up to date, and Sodate's
processes (the HTTP server, the background services, or both).

The shared helpers of `sodate.cli` (runtime, error line) are imported when a command runs:
`sodate.cli` imports this module to register the commands.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any

import typer

from sodate.db import migrate as migrations

if TYPE_CHECKING:
    from sodate.runtime import Runtime
    from sodate.settings import Settings
    from sodate.worker import ServiceRunner

HostOption = Annotated[
    str | None, typer.Option("--host", help="Address to listen on [SODATE_HOST].")
]
PortOption = Annotated[int | None, typer.Option("--port", help="Port to listen on [SODATE_PORT].")]


def migrate() -> None:
    """Bring the database schema up to date."""
    from sodate import cli as base

    with base._runtime(require_schema=False) as runtime:
        migrations.upgrade(runtime.db.engine)
        base.out.print(f"database is at revision {migrations.current_revision(runtime.db.engine)}")


def up(host: HostOption = None, port: PortOption = None) -> None:
    """Run everything: migrations, the HTTP server, and the background services beside it."""
    from sodate.supervisor import metrics_shared_with_services

    # Before anything makes a metric: the services process's counters reach `/metrics` so.
    with metrics_shared_with_services():
        _up(host, port)


def _up(host: str | None, port: int | None) -> None:
    from sodate import cli as base
    from sodate.app import create_app
    from sodate.supervisor import ServicesProcess
    from sodate.worker import enabled_services, load_plugins, new_worker_id

    with base._runtime(require_schema=False) as runtime:
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


def up_services() -> None:
    """The background services of `sodate up`, in the process it starts; wakes come on stdin."""
    # Ctrl-C reaches the whole process group; `up` stops its services itself, after the HTTP
    # server, by closing our stdin.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from sodate import cli as base
    from sodate.supervisor import follow_wakes

    with base._runtime() as runtime:
        runner = _service_runner(runtime, role="up")
        _stop_on(runner, signal.SIGTERM)
        runner.start()
        follow_wakes(runner, sys.stdin.fileno())
        runner.wait()
        runner.stop()


def serve(host: HostOption = None, port: PortOption = None) -> None:
    """Run the HTTP server only (API, UI, tracking); run background work with `sodate worker`."""
    from sodate import cli as base
    from sodate.app import create_app
    from sodate.worker import load_plugins

    with base._runtime() as runtime:
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
    from sodate import cli as base
    from sodate.worker_http import start_health_server

    with base._runtime() as runtime:
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
    from sodate import cli as base

    def _stop(signum: int, _frame: FrameType | None) -> None:
        base.err.print(f"received {signal.Signals(signum).name}: finishing the current batches")
        runner.stop_event.set()
        runner.wake()

    for signum in signals:
        signal.signal(signum, _stop)
