"""How a bulk run reports while it works: one frame line (fitted to the terminal's width,
80 columns and up) redrawn in place on a terminal (through rich when installed), a plain
line every few seconds otherwise, nothing with --quiet.

A frame: ``37/50 74%, 92 images, 1 failed, 184 credits, 9.6 req/s, ETA 0:12``.
``req/s`` is the rate of API requests (what ``--rate`` limits); the ETA divides what is
left by a smoothed rate of lines finished, so it settles instead of jumping.
"""

from __future__ import annotations

import collections
import contextlib
import math
import shutil
import sys
from collections.abc import AsyncIterator, Callable
from typing import Any, TextIO

import anyio
import attrs

from .._clock import SYSTEM_CLOCK

PLAIN_EVERY = 10.0
REDRAW_EVERY = 0.5
BAR_MIN, BAR_MAX = 10, 40


@attrs.define
class Tally:
    """What a frame shows; the CLI counts results into it."""

    total: int | None
    done: int = 0  # input lines finished (any outcome), this run and before
    images: int = 0
    failed: int = 0  # lines failed, invalid or uncertain
    credits: float = 0.0
    requests_per_second: float | None = None
    eta: float | None = None


def clock_text(seconds: float) -> str:
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def compact(number: float) -> str:
    """A count in at most five characters: 9999, 12.3k, 123k, 1.2M."""
    if number < 10_000:
        return f"{number:g}" if number != int(number) else str(int(number))
    for size, unit in ((1e6, "M"), (1e3, "k")):
        if number >= size:
            value = number / size
            return f"{value:.1f}{unit}" if value < 100 else f"{value:.0f}{unit}"
    return str(int(number))  # pragma: no cover - every number >= 10,000 has a unit


def render(tally: Tally, width: int, *, bar: bool = True) -> str:
    """One line of at most ``width`` characters; the least useful parts go first."""
    if tally.total:
        share = min(1.0, tally.done / tally.total)
        head = f"{compact(tally.done)}/{compact(tally.total)} {math.floor(share * 100)}%"
    else:
        share, head = None, f"{compact(tally.done)} lines"
    rate = tally.requests_per_second
    parts = [  # (priority: lower goes last, text)
        (0, head),
        (1, f"{compact(tally.images)} images"),
        (2, f"{compact(tally.failed)} failed"),
        (4, f"{compact(tally.credits)} credits"),
        (5, f"{rate:.1f} req/s" if rate is not None else "- req/s"),
        (3, f"ETA {clock_text(tally.eta)}" if tally.eta is not None else "ETA -"),
    ]
    while True:
        line = ", ".join(text for _, text in parts)
        if len(line) <= width or len(parts) == 1:
            break
        parts.remove(max(parts, key=lambda part: part[0]))
    room = width - len(line) - 1
    if bar and share is not None and room >= BAR_MIN + 2:
        cells = min(BAR_MAX, room - 2)
        filled = math.floor(share * cells)
        line = f"[{'#' * filled}{'.' * (cells - filled)}] {line}"
    return line[:width]


class Meter:
    """Request rate and ETA, re-estimated every ``SPAN`` seconds from the lines finished in
    the last ``WINDOW`` seconds (counted from the first line finished, so the wait for the
    first images does not count as slowness); between estimates the ETA counts down."""

    SPAN, WINDOW = 2.0, 60.0

    def __init__(self, now: float, done: int, requests: int) -> None:
        self._last = (now, requests)
        self._samples: collections.deque[tuple[float, int]] = collections.deque()
        self._requests: float | None = None
        self._eta: tuple[float, float] | None = None  # (when estimated, seconds left then)
        self._done_at_start = done

    def update(self, now: float, done: int, requests: int, total: int | None) -> tuple[
        float | None, float | None
    ]:  # fmt: skip
        """(API requests per second, seconds left) as of ``now``."""
        then, requests_then = self._last
        if now - then >= self.SPAN:
            self._last = (now, requests)
            self._requests = (requests - requests_then) / (now - then)
            self._estimate(now, done, total)
        if self._eta is None:
            return self._requests, None
        estimated, left = self._eta
        return self._requests, max(0.0, left - (now - estimated))

    def _estimate(self, now: float, done: int, total: int | None) -> None:
        if not self._samples and done == self._done_at_start:
            return  # nothing finished yet
        self._samples.append((now, done))
        while len(self._samples) > 2 and now - self._samples[1][0] >= self.WINDOW:
            self._samples.popleft()
        first, finished = self._samples[0]
        if total is None or now <= first or done <= finished:
            return
        rate = (done - finished) / (now - first)
        self._eta = (now, max(0, total - done) / rate)


class Display:
    """Draws frames of ``tally``; ``note`` prints a message line without tearing them."""

    def __init__(self, tally: Tally, sample: Callable[[], int], *, stream: TextIO,
                 quiet: bool) -> None:  # fmt: skip
        self.tally, self._sample, self._stream, self._quiet = tally, sample, stream, quiet
        self._tty = stream.isatty()
        self._live: Any = None
        self._started = SYSTEM_CLOCK.now()
        self._meter = Meter(self._started, tally.done, sample())
        self._drawn = False

    def note(self, line: str) -> None:
        if self._live is not None:
            self._live.console.print(line, markup=False, highlight=False)
            return
        self._clear()
        print(line, file=self._stream, flush=True)
        self._draw()

    def refresh(self) -> None:
        rate, eta = self._meter.update(
            SYSTEM_CLOCK.now(), self.tally.done, self._sample(), self.tally.total
        )
        self.tally.requests_per_second, self.tally.eta = rate, eta
        self._draw()

    def _width(self) -> int:
        if self._live is not None:
            return int(self._live.console.width)
        if not self._tty:
            return 80
        return shutil.get_terminal_size((80, 24)).columns - 1  # never wrap the last column

    def _draw(self) -> None:
        frame = render(self.tally, self._width(), bar=self._tty)
        if self._live is not None:
            from rich.text import Text

            self._live.update(Text(frame, no_wrap=True), refresh=True)
        elif self._tty:
            self._stream.write(f"\r{frame}\x1b[K")
            self._stream.flush()
            self._drawn = True
        else:
            print(frame, file=self._stream, flush=True)

    def _clear(self) -> None:
        if self._drawn:
            self._stream.write("\r\x1b[K")
            self._drawn = False

    def final(self, tally: Tally) -> None:
        """The last frame, from the run's summary (so the two agree)."""
        elapsed = SYSTEM_CLOCK.now() - self._started
        tally.requests_per_second = self._sample() / elapsed if elapsed > 0 else None
        tally.eta = 0.0 if tally.total and tally.done >= tally.total else None
        self.tally = tally
        if not self._quiet:
            self._draw()

    @contextlib.asynccontextmanager
    async def shown(self) -> AsyncIterator[Display]:
        if self._quiet:
            yield self
            return
        try:
            async with contextlib.AsyncExitStack() as stack:
                if self._tty:
                    self._live = _rich_live(self._stream)
                    if self._live is not None:
                        stack.enter_context(self._live)
                tasks = await stack.enter_async_context(anyio.create_task_group())
                tasks.start_soon(self._redraw, REDRAW_EVERY if self._tty else PLAIN_EVERY)
                try:
                    yield self
                finally:
                    tasks.cancel_scope.cancel()
        finally:  # an error line must not land on the end of a frame
            if self._live is None and self._drawn:
                print(file=self._stream, flush=True)
                self._drawn = False

    async def _redraw(self, every: float) -> None:
        while True:
            await anyio.sleep(every)
            self.refresh()


def _rich_live(stream: TextIO) -> Any:
    """A rich Live display, or None on a core install (then frames are drawn with \\r)."""
    try:
        from rich.console import Console
        from rich.live import Live
    except ImportError:
        return None
    return Live(console=Console(file=stream), auto_refresh=False, transient=False)


def stderr_display(tally: Tally, sample: Callable[[], int], *, quiet: bool) -> Display:
    return Display(tally, sample, stream=sys.stderr, quiet=quiet)
