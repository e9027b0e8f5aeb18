"""Whether a client is open: one state, one table of its changes, one owner.

The client, its requester, its transport and its poll scheduler share one ``OpenState``:
closing refuses new requests at once (``CLOSING``), the transport then lets the requests
on the wire finish (``DRAINING``) and closes its pool (``CLOSED``). Before, each of them
kept a ``closed`` flag of its own, and they could disagree.

Pure: no I/O, no clock.
"""

from __future__ import annotations

import enum

from ._exceptions import ClientClosedError


class Phase(enum.Enum):
    OPEN = "open"
    CLOSING = "closing"  # new requests refused; the background stops
    DRAINING = "draining"  # the transport waits for the requests on the wire
    CLOSED = "closed"  # the connection pool is closed


class Step(enum.Enum):
    CLOSE = "close"  # the client's aclose(): refuse new work
    DRAIN = "drain"  # the transport's aclose() begins
    FINISH = "finish"  # the pool is closed


_P, _S = Phase, Step
# (phase, step) -> the phase after it; a step not listed leaves the phase as it is and is
# refused (``OpenState.step`` returns False): a second close, a late drain.
TRANSITIONS: dict[tuple[Phase, Step], Phase] = {
    (_P.OPEN, _S.CLOSE): _P.CLOSING,
    (_P.OPEN, _S.DRAIN): _P.DRAINING,  # a transport closed on its own (no client)
    (_P.CLOSING, _S.DRAIN): _P.DRAINING,
    (_P.CLOSING, _S.FINISH): _P.CLOSED,  # a transport of the caller's: it drains its own way
    (_P.DRAINING, _S.FINISH): _P.CLOSED,
}


class OpenState:
    """The one owner of "closed" for a client and the parts it made."""

    __slots__ = ("phase",)

    def __init__(self) -> None:
        self.phase = Phase.OPEN

    @property
    def closed(self) -> bool:
        """Closing or closed: nothing new may start."""
        return self.phase is not Phase.OPEN

    def check_open(self) -> None:
        if self.phase is not Phase.OPEN:
            raise ClientClosedError("this AkoolClient is closed")

    def step(self, step: Step) -> bool:
        """Take ``step`` if the table allows it from the current phase; whether it did."""
        after = TRANSITIONS.get((self.phase, step))
        if after is None:
            return False
        self.phase = after
        return True

    def __repr__(self) -> str:
        return f"OpenState({self.phase.value})"
