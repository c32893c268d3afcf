"""`python -m sodate`: the `sodate` command line (how `sodate up` starts its services process)."""

import signal
import sys

if sys.argv[1:2] == ["up-services"]:
    # Before the imports, which take about a second: a Ctrl-C reaches the whole process group,
    # and `up` stops its services itself, by closing their stdin
    # (`sodate.commands.servers.up_services`).
    signal.signal(signal.SIGINT, signal.SIG_IGN)

from sodate.cli import main

if __name__ == "__main__":
    main()
