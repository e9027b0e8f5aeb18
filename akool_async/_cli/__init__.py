"""``akool-async`` (and ``python -m akool_async``): argument parsing; anyio.run at the edge."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from . import _bulk, _emulator, _generate

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="akool-async",
        description="Akool Image Generate from the command line. Without AKOOL_API_KEY "
        "it runs against the built-in emulator (no network, no credits).",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log every request")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _bulk.add_parser(commands)
    _generate.add_parser(commands)
    _emulator.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    if not args.verbose:
        # stamina announces every scheduled retry at WARNING; retries are routine here.
        logging.getLogger("stamina").setLevel(logging.ERROR)
    try:
        return int(args.run(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
