"""`sodate clock show` and `sodate clock advance`: the clock, and moving a manual one forward.

The shared helpers of `sodate.cli` (runtime, error line, JSON output) are imported when a
command runs: `sodate.cli` imports this module to register the commands.
"""

from __future__ import annotations

from typing import Annotated

import typer

from sodate.clock import parse_instant
from sodate.commands.options import JsonOption

clock_app = typer.Typer(
    help="Show or advance the clock (advancing needs SODATE_CLOCK=manual).", no_args_is_help=True
)


@clock_app.command("show")
def clock_show(as_json: JsonOption = False) -> None:
    """Print the clock's mode and current time."""
    from sodate import cli as base

    with base._runtime() as runtime:
        clock = runtime.clock
        info = {"mode": "manual" if clock.is_manual else "system", "now": clock.now().isoformat()}
    if as_json:
        base._print_json(info)
    else:
        base.out.print(f"{info['mode']} clock: {info['now']}", highlight=False)


@clock_app.command("advance")
def clock_advance(
    duration: Annotated[str | None, typer.Argument(help="How far: 3d, 2h30m, 1w, 90s.")] = None,
    to: Annotated[str | None, typer.Option(help="Or an ISO instant to move to.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Move the manual clock forward and run the jobs and timers that fall due."""
    from sodate import cli as base
    from sodate.system.service import advance_clock
    from sodate.worker import load_plugins, new_worker_id

    if (duration is None) == (to is None):
        base.fail("give a duration (e.g. 3d) or --to, not both")
    with base._runtime() as runtime:
        load_plugins(runtime.settings)
        now, ran = advance_clock(
            runtime,
            by=duration,
            to=parse_instant(to) if to else None,
            worker_id=new_worker_id("cli"),
        )
    if as_json:
        base._print_json({"now": now.isoformat(), "jobs_run": ran})
    else:
        base.out.print(f"clock is now {now.isoformat()}; {ran} due job(s) ran", highlight=False)
