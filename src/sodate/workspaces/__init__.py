"""Workspaces (tenants), users, roles, API keys and authentication."""
