"""The parser's shared parts: one-line usage errors, defaults in --help, -v/-q anywhere,
and each subcommand's epilog (an example, the environment, the exit codes)."""

from __future__ import annotations

import argparse
import shutil
import textwrap
from typing import Any, NoReturn

from ._errors import ENVIRONMENT_HELP, EXIT_CODES_HELP, Exit


class Formatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the epilog's layout and shows each option's default when it has one."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        shown = default not in (None, argparse.SUPPRESS, "") and not isinstance(default, bool)
        if "%(default)" not in text and action.option_strings and shown:
            text += " (default: %(default)s)"
        return text


class Parser(argparse.ArgumentParser):
    """argparse, with a usage error in one line (and exit code 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(Exit.USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def common_options() -> argparse.ArgumentParser:
    """-v and -q, accepted after the subcommand too (SUPPRESS: a subcommand's parser leaves
    them unset unless given, so they do not overwrite what came before it)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                        help="log one line per API request, and show tracebacks")  # fmt: skip
    common.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                        help="print only results and errors: no progress, no notices")  # fmt: skip
    return common


def wrap(text: str) -> str:
    """A description as lines of a terminal's width (the epilog's layout is kept as is)."""
    return textwrap.fill(text, width=min(88, shutil.get_terminal_size((88, 24)).columns - 2))


def epilog(examples: str) -> str:
    return f"example:\n{examples}\n\n{ENVIRONMENT_HELP}\n\n{EXIT_CODES_HELP}"


def subcommand(
    commands: Any, name: str, *, help: str, description: str, examples: str
) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(
        name, help=help, description=wrap(description), epilog=epilog(examples),
        formatter_class=Formatter, parents=[common_options()],
    )  # fmt: skip
    return parser


def add_backend(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backend", choices=("asyncio", "trio"), default="asyncio",
                        help="the async library to run on")  # fmt: skip


def add_poll_floor(parser: argparse.ArgumentParser) -> None:
    """``--poll-floor``, checked by ``_checks.poll_floor``."""
    parser.add_argument("--poll-floor", type=float, default=None, metavar="SECONDS",
                        help="shortest wait between two polls of a job (1; the built-in "
                        "emulator: its speed's)")  # fmt: skip
