"""The small HTTP listener of `sodate worker`: `/healthz` and `/metrics` for probes."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import make_wsgi_app

from sodate import __version__
from sodate.runtime import Runtime
from sodate.system.service import check_database

StartResponse = Callable[..., Any]


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return


def _health_app(runtime: Runtime) -> Callable[[dict[str, Any], StartResponse], Iterable[bytes]]:
    metrics_app = make_wsgi_app()

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != "/healthz":
            return metrics_app(environ, start_response)  # type: ignore[no-any-return]
        try:
            with runtime.db.read() as session:
                check_database(session)
            status, body = (
                "200 OK",
                {"status": "ok", "database": runtime.db.dialect, "version": __version__},
            )
        except Exception:
            status, body = "503 Service Unavailable", {"status": "unavailable"}
        start_response(status, [("Content-Type", "application/json")])
        return [json.dumps(body).encode()]

    return app


def start_health_server(runtime: Runtime, host: str, port: int) -> WSGIServer:
    server = make_server(host, port, _health_app(runtime), handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, name="sodate-worker-http", daemon=True).start()
    return server
