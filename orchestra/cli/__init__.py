"""The `orchestra` command. `main` tries the Typer-free fast path first (cli/fast.py),
and before it `hook EVENT`, the hottest form of all (cli/hook.py)."""

from __future__ import annotations

import sys


def main() -> None:
    args = sys.argv[1:]
    if len(args) == 2 and args[0] == "hook" and not args[1].startswith("-"):
        import os

        if not os.environ.get("ORCHESTRA_NO_FAST"):
            from orchestra.cli.hook import run  # stdlib only: agents run it all the time

            sys.exit(run(args[1:]))
    if args in (["bridge"], ["bridge", "--no-start"]):  # every command over SSH runs one
        from orchestra.cli.bridge import run as bridge

        sys.exit(bridge(start=len(args) == 1))
    from orchestra.cli import fast
    from orchestra.cli.output import quiet_broken_pipe

    with quiet_broken_pipe():  # `orchestra status | head -1`: exit 1, no traceback
        code = fast.run(sys.argv[1:])
        if code is not None:
            sys.exit(code)
        from orchestra.cli.main import main as typer_main

        typer_main()
