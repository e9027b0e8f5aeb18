"""What a failure means to the person at the terminal: one line and an exit code.

Every exit code is documented in ``akool-async --help``; scripts may rely on them.
"""

from __future__ import annotations

import enum
import os

from .._exceptions import (
    AkoolError,
    AuthenticationError,
    ConfigurationError,
    TransportError,
    ValidationError,
)
from ._faults import fault_line, local_fault


class Exit(enum.IntEnum):
    OK = 0
    FAILED = 1  # some images or jobs failed or are uncertain; or the API refused
    USAGE = 2  # a bad option, path or input value: nothing was sent
    NOT_INSTALLED = 3  # an optional extra is missing
    AUTH = 4  # the credentials were refused
    UNREACHABLE = 5  # the API could not be reached
    HELD_BACK = 6  # bulk: --budget held requests back (nothing failed)
    LOCAL = 74  # a local file could not be written: disk full, read-only, journal (EX_IOERR)
    NOT_FINISHED = 75  # jobs still running when the command stopped waiting
    INTERRUPTED = 130  # Ctrl-C (or SIGTERM)
    TERMINATED = 143  # worker: SIGTERM (a service manager's stop), after a clean stop


EXIT_CODES_HELP = """exit codes:
  0    everything asked for is done
  1    some images or jobs failed or are uncertain, or the API refused a request
  2    usage error: a bad option, path or input value (nothing was sent)
  3    an optional extra is missing (the message says what to pip install)
  4    authentication failed: check AKOOL_API_KEY (or AKOOL_CLIENT_ID/SECRET)
  5    the API (or the queue) could not be reached: check the network and
       AKOOL_BASE_URL (AKOOL_QUEUE_URL)
  6    bulk: --budget held requests back (and nothing failed): run again with --resume
       and a larger --budget to send them
  74   a local file could not be written (disk full, read-only folder, the journal):
       fix it, then run again (bulk: with --resume)
  75   jobs still running when the command stopped waiting (bulk: past --job-timeout):
       wait for them later (bulk: run again with --resume)
  130  interrupted (Ctrl-C): run again (bulk: with --resume) to continue
  143  worker: stopped by SIGTERM (what it held is released for other workers)"""

ENVIRONMENT_HELP = """environment:
  AKOOL_API_KEY        your API key; without it (and without a client id and secret)
                       commands run against the built-in emulator (no credits spent)
  AKOOL_CLIENT_ID      with AKOOL_CLIENT_SECRET: the legacy getToken credentials
  AKOOL_CLIENT_SECRET
  AKOOL_BASE_URL       the API's address (default https://openapi.akool.com)
  AKOOL_QUEUE_URL      enqueue/status/worker: the shared queue,
                       postgresql://user@host/database (shown with its password as ***)
  AKOOL_LIMITS_URL     worker: the account's shared rate budget, redis://host:port/db"""

AUTH_HINT = "check AKOOL_API_KEY (or AKOOL_CLIENT_ID and AKOOL_CLIENT_SECRET)"


class CLIError(Exception):
    """A failure the command explains in one line and ends with ``code``."""

    def __init__(self, message: str, code: Exit = Exit.USAGE) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def install_hint(extra: str, needed_for: str) -> CLIError:
    return CLIError(
        f"{needed_for} needs the {extra} extra: pip install 'akool-async[{extra}]'",
        Exit.NOT_INSTALLED,
    )


def leaf(error: BaseException) -> BaseException:
    """The one error inside (nested) single-error groups; a task group's failure is
    usually one error wrapped, and the user should see that error, not the wrapping."""
    while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
        error = error.exceptions[0]
    return error


def describe(error: BaseException) -> tuple[str, Exit]:
    """The line to print for ``error`` and the exit code it means."""
    whole, error = error, leaf(error)
    if isinstance(error, CLIError):
        return f"error: {error.message}", error.code
    fault = local_fault(whole)
    if fault is not None:
        return f"error: {fault_line(fault)}", Exit.LOCAL
    if isinstance(error, AkoolError):
        return _described(error)
    if isinstance(error, OSError):
        where = f": {error.filename}" if error.filename else ""
        return f"error: {error.strerror or error}{where}", Exit.FAILED
    name = type(error).__name__
    return f"error: {name}: {error} (run with -v for the traceback)", Exit.FAILED


def _described(error: AkoolError) -> tuple[str, Exit]:
    if isinstance(error, AuthenticationError):
        return f"error: authentication failed: {error.message}; {AUTH_HINT}", Exit.AUTH
    if isinstance(error, TransportError):
        where = os.environ.get("AKOOL_BASE_URL") or "https://openapi.akool.com"
        return f"error: cannot reach {where}: {error}", Exit.UNREACHABLE
    usage = isinstance(error, ValidationError | ConfigurationError)
    return f"error: {error}", Exit.USAGE if usage else Exit.FAILED
