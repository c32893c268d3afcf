"""`python -m sodate`: the `sodate` command line (how `sodate up` starts its services process)."""

from sodate.cli import main

if __name__ == "__main__":
    main()
