"""Options that many `sodate` commands share."""

from __future__ import annotations

from typing import Annotated

import typer

WorkspaceOption = Annotated[
    str | None,
    typer.Option("--workspace", "-w", help="Workspace id or name (optional if only one)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
