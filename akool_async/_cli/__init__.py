"""``akool-async`` (and ``python -m akool_async``): argument parsing; anyio.run at the edge.

Every failure a user can cause ends in one line on stderr and a documented exit code
(``_errors``); the traceback is shown only with ``-v``.
"""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
from collections.abc import Sequence

from .._version import __version__
from . import _bulk, _emulator, _generate, _queue, _wait, _worker
from ._errors import ENVIRONMENT_HELP, EXIT_CODES_HELP, Exit, describe, leaf
from ._parsing import Formatter, Parser, common_options, wrap

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130  # kept for importers


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="akool-async",
        description=wrap(
            "Akool Image Generate from the command line. Without AKOOL_API_KEY it runs "
            "against the built-in emulator (no network, no credits)."
        ),
        epilog=f"{ENVIRONMENT_HELP}\n\n{EXIT_CODES_HELP}\n\n"
        "Run 'akool-async COMMAND --help' for a command's options and an example.",
        formatter_class=Formatter,
        parents=[common_options()],
    )
    parser.set_defaults(verbose=False, quiet=False)
    parser.add_argument("--version", action="version", version=f"akool-async {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _bulk.add_parser(commands)
    _generate.add_parser(commands)
    _wait.add_parsers(commands)
    _emulator.add_parser(commands)
    _queue.add_parsers(commands)
    _worker.add_parser(commands)
    return parser


def _configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    # One line per request is ours (akool_async, DEBUG); httpx would add its own INFO line
    # and asyncio its debug chatter; stamina announces retries that our line shows already.
    logging.getLogger("akool_async").setLevel(logging.DEBUG if verbose else logging.NOTSET)
    for name in ("httpx", "httpcore", "asyncio"):
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.getLogger("stamina").setLevel(logging.ERROR)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _configure_logging(args.verbose)
    try:
        return int(args.run(args))
    except SystemExit:
        raise
    except BaseException as exc:  # a group holding a KeyboardInterrupt too
        if isinstance(leaf(exc), KeyboardInterrupt):
            print("interrupted", file=sys.stderr)
            return Exit.INTERRUPTED
        if args.verbose:
            traceback.print_exception(exc)
        line, code = describe(exc)
        print(line, file=sys.stderr)
        return code
