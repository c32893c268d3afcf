"""Roles and what each may do.

Roles are not a single ladder: sales and marketers see the same data but change different
things. Each role is a set of permissions; routes ask for a permission, never for a role.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    MARKETER = "marketer"
    SALES = "sales"
    VIEWER = "viewer"


class Permission(StrEnum):
    READ = "read"
    CONTACTS_WRITE = "contacts.write"
    MARKETING_WRITE = "marketing.write"
    SALES_WORK = "sales.work"
    WORKSPACE_MANAGE = "workspace.manage"
    USERS_MANAGE = "users.manage"
    API_KEYS_MANAGE = "api_keys.manage"
    CLOCK_ADVANCE = "clock.advance"
    OWNERS_MANAGE = "owners.manage"


_ALL = frozenset(Permission)

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.OWNER: _ALL,
    Role.ADMIN: _ALL - {Permission.OWNERS_MANAGE},
    Role.MARKETER: frozenset(
        {Permission.READ, Permission.CONTACTS_WRITE, Permission.MARKETING_WRITE}
    ),
    Role.SALES: frozenset({Permission.READ, Permission.CONTACTS_WRITE, Permission.SALES_WORK}),
    Role.VIEWER: frozenset({Permission.READ}),
}


def has_permission(role: Role, permission: Permission) -> bool:
    return permission in ROLE_PERMISSIONS[role]


def may_grant(granter: Role, role: Role) -> bool:
    """A principal may hand out a role only if it holds every permission of that role."""
    return ROLE_PERMISSIONS[role] <= ROLE_PERMISSIONS[granter]
