"""Health, Prometheus metrics and the clock."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST

from sodate import __version__
from sodate.deps import Caller, allowed, get_runtime
from sodate.errors import Unauthorized
from sodate.metrics import exposition
from sodate.runtime import Runtime
from sodate.system import service
from sodate.system.schemas import ClockAdvance, ClockAdvanced, ClockOut, Health
from sodate.workspaces.roles import Permission
from sodate.workspaces.secrets import same

router = APIRouter()


@router.get("/healthz", response_model=Health, tags=["system"])
def healthz(runtime: Runtime = Depends(get_runtime)) -> Health:
    with runtime.db.read() as session:
        service.check_database(session)
    return Health(status="ok", database=runtime.db.dialect, version=__version__)


@router.get("/metrics", tags=["system"], response_class=Response)
def metrics(request: Request, runtime: Runtime = Depends(get_runtime)) -> Response:
    token = runtime.settings.metrics_token
    if token is not None:
        sent = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if not same(sent, token.get_secret_value()):
            raise Unauthorized("metrics need `Authorization: Bearer <SODATE_METRICS_TOKEN>`")
    return Response(exposition(), media_type=CONTENT_TYPE_LATEST)


@router.get("/api/v1/clock", response_model=ClockOut, tags=["clock"])
def get_clock(caller: Caller = Depends(allowed(Permission.READ))) -> ClockOut:
    clock = caller.runtime.clock
    return ClockOut(mode="manual" if clock.is_manual else "system", now=clock.now())


@router.post("/api/v1/clock/advance", response_model=ClockAdvanced, tags=["clock"])
def advance_clock(
    data: ClockAdvance,
    request: Request,
    caller: Caller = Depends(allowed(Permission.CLOCK_ADVANCE)),
) -> ClockAdvanced:
    now, ran = service.advance_clock(
        caller.runtime, by=data.by, to=data.to, worker_id=request.app.state.worker_id
    )
    runner = request.app.state.runner
    if runner is not None:
        runner.wake()
    return ClockAdvanced(mode="manual", now=now, jobs_run=ran)
