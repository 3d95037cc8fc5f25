"""The `secmlops` console entry point.

An ordinary `secmlops scan models ...` command line runs without loading typer (see
`secmlops.cli.scan_models`); every other command line, and any `scan models` line that is not
ordinary, goes to the typer application in `secmlops.cli.main`.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from secmlops.cli.scan_models import ScanModelsArgs


def main() -> None:
    argv = sys.argv[1:]
    if argv[:2] == ["scan", "models"]:
        from secmlops.cli.scan_models import parse

        args = parse(argv[2:])
        if args is not None:
            sys.exit(_scan_models(args))
    from secmlops.cli.main import main as typer_main

    typer_main()


def _scan_models(args: ScanModelsArgs) -> int:
    """What typer's standalone mode does around the command: a user error is one line and exit
    2, Ctrl-C is "Aborted!" and exit 1."""
    from secmlops.cli.scan_models import run
    from secmlops.errors import Error

    try:
        return run(args)
    except Error as exc:
        from secmlops.cli.output import print_error

        print_error(exc)
        return 2
    except KeyboardInterrupt:
        print("\nAborted!", file=sys.stderr)
        return 1
