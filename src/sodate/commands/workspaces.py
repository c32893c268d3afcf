"""`sodate workspace`, `sodate user` and `sodate apikey`: workspaces, the users who sign in
to them, and their API keys.

The shared helpers of `sodate.cli` (runtime, error line, JSON output) are imported when a
command runs: `sodate.cli` imports this module to register the commands.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from sodate.commands.options import JsonOption, WorkspaceOption
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

workspace_app = typer.Typer(help="Create and list workspaces.", no_args_is_help=True)
user_app = typer.Typer(help="Manage the users who sign in to a workspace.", no_args_is_help=True)
apikey_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)


@workspace_app.command("create")
def workspace_create(
    name: Annotated[str, typer.Argument(help="The workspace's name, e.g. your company.")],
    timezone: Annotated[str | None, typer.Option(help="IANA time zone [SODATE_TIMEZONE].")] = None,
    locale: Annotated[Locale, typer.Option(help="Language of the UI and defaults.")] = Locale.JA,
    as_json: JsonOption = False,
) -> None:
    """Create a workspace; print its id, an admin API key and a tracking write key."""
    from sodate import cli as base

    with base._runtime() as runtime:
        data = base._validated(
            WorkspaceCreate,
            name=name,
            timezone=timezone or runtime.settings.timezone,
            locale=locale,
        )
        with runtime.db.transaction() as session:
            created = workspaces.create_workspace_with_keys(session, data, now=runtime.clock.now())
    if as_json:
        base._print_json(created)
        return
    base.out.print(f"Workspace [bold]{created.workspace.name}[/] created.", highlight=False)
    base.out.print(f"  workspace id   {created.workspace.id}", highlight=False)
    base.out.print(f"  admin API key  {created.admin_key.key}   (role owner)", highlight=False)
    base.out.print(f"  write key      {created.write_key.key}   (tracking)", highlight=False)
    base.out.print("Keep the keys now: they are stored hashed and cannot be shown again.")


@workspace_app.command("list")
def workspace_list(as_json: JsonOption = False) -> None:
    """List the workspaces."""
    from sodate import cli as base

    with base._runtime() as runtime, runtime.db.read() as session:
        rows = [workspaces.workspace_out(w) for w in workspaces.list_workspaces(session)]
    if as_json:
        base._print_json(rows)
        return
    table = Table("id", "name", "time zone", "locale")
    for row in rows:
        table.add_row(row.id, row.name, row.timezone, row.locale.value)
    base.out.print(table)


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
    from sodate import cli as base

    data = base._validated(UserCreate, email=email, name=name, role=role, password=password)
    with base._runtime() as runtime, runtime.db.transaction() as session:
        target = workspaces.resolve_workspace(session, workspace)
        user = UserOut.model_validate(
            workspaces.create_user(
                session, target.id, data, granter=Role.OWNER, now=runtime.clock.now()
            )
        )
    if as_json:
        base._print_json(user)
    else:
        base.out.print(
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
    from sodate import cli as base

    data = base._validated(ApiKeyCreate, name=name, kind=kind, role=role)
    with base._runtime() as runtime, runtime.db.transaction() as session:
        target = workspaces.resolve_workspace(session, workspace)
        created = workspaces.create_api_key(
            session, target.id, data, granter=Role.OWNER, now=runtime.clock.now()
        )
    if as_json:
        base._print_json(created)
    else:
        role_text = f", role {created.role.value}" if created.role else ""
        base.out.print(
            f"{created.kind.value} key {created.id}{role_text}: {created.key}", highlight=False
        )
        base.out.print("Keep it now: it cannot be shown again.")


@apikey_app.command("list")
def apikey_list(workspace: WorkspaceOption = None, as_json: JsonOption = False) -> None:
    """List a workspace's API keys (hints only; keys are never stored)."""
    from sodate import cli as base

    with base._runtime() as runtime, runtime.db.read() as session:
        target = workspaces.resolve_workspace(session, workspace)
        keys = [ApiKeyOut.model_validate(k) for k in workspaces.list_api_keys(session, target.id)]
    if as_json:
        base._print_json(keys)
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
    base.out.print(table)


@apikey_app.command("revoke")
def apikey_revoke(
    key_id: Annotated[int, typer.Argument(help="The key's id (see `sodate apikey list`).")],
    workspace: WorkspaceOption = None,
) -> None:
    """Revoke an API key at once."""
    from sodate import cli as base

    with base._runtime() as runtime, runtime.db.transaction() as session:
        target = workspaces.resolve_workspace(session, workspace)
        workspaces.revoke_api_key(
            session, target.id, key_id, granter=Role.OWNER, now=runtime.clock.now()
        )
    base.out.print(f"key {key_id} revoked")
