"""The `sodate` command line's own commands, registered by `sodate.cli`: running Sodate
(`servers`), workspaces, users and API keys (`workspaces`), and the clock (`clock`)."""
