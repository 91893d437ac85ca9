"""Library exceptions -> one-line messages and exit codes. The only place that decides exit codes."""

from __future__ import annotations

import sys

from hmr_fit.errors import HmrFitError, InputError, ModelFileError

EXIT_OK = 0
EXIT_SOME_FAILED = 1  # the batch finished but some inputs failed
EXIT_USAGE = 2  # usage or configuration error
EXIT_MISSING_ASSET = 3  # missing or broken model / weights file


def exit_code_for(exc: BaseException) -> int:
    if isinstance(exc, ModelFileError):
        return EXIT_MISSING_ASSET
    if isinstance(exc, InputError):
        return EXIT_SOME_FAILED
    return EXIT_USAGE


def report(exc: HmrFitError, debug: bool = False) -> int:
    """Print a one-line error (a traceback only with --debug) and return the exit code."""
    if debug:
        import traceback

        traceback.print_exception(exc)
    print(f"hmr-fit: error: {exc}", file=sys.stderr)
    return exit_code_for(exc)
