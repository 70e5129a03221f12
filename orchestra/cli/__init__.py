"""The `orchestra` command. `main` tries the Typer-free fast path first (cli/fast.py)."""

from __future__ import annotations

import sys


def main() -> None:
    from orchestra.cli import fast
    from orchestra.cli.output import quiet_broken_pipe

    with quiet_broken_pipe():  # `orchestra status | head -1`: exit 1, no traceback
        code = fast.run(sys.argv[1:])
        if code is not None:
            sys.exit(code)
        from orchestra.cli.main import main as typer_main

        typer_main()
