"""The bulk progress display: frames that fit, an ETA that settles, plain without rich."""

from __future__ import annotations

import io
import itertools
import re
import sys

import anyio
import pytest

from akool_async._cli._progress import Display, Meter, Tally, compact, render


def big() -> Tally:
    return Tally(total=100_000, done=12_345, images=24_690, failed=1_234, credits=49_380.5,
                 requests_per_second=9.64, eta=7_425)  # fmt: skip


@pytest.mark.parametrize("width", [80, 100, 120, 160])
def test_every_part_fits_from_80_columns(width: int) -> None:
    """Done/total and %, images, failures, credits, requests/s and ETA all fit in 80."""
    for tally in (big(), Tally(total=50, done=37, images=92, failed=1, credits=184,
                               requests_per_second=9.6, eta=12)):  # fmt: skip
        frame = render(tally, width)
        assert len(frame) <= width
        for part in ("/", "%", " images", " failed", " credits", " req/s", "ETA "):
            assert part in frame, (part, frame)
    assert render(big(), 80).startswith("12.3k/100k 12%, 24.7k images, 1234 failed")
    assert "[" in render(big(), 160)  # a bar where there is room


def test_narrow_terminals_lose_the_least_useful_parts_first() -> None:
    """At 60 columns the count, images, failures and ETA stay; rate and credits go."""
    assert render(big(), 60) == "12.3k/100k 12%, 24.7k images, 1234 failed, ETA 2:03:45"
    assert render(big(), 50) == "12.3k/100k 12%, 24.7k images, 1234 failed"


def test_compact_numbers() -> None:
    """Counts stay exact below 10,000 and take at most five characters above."""
    assert [compact(n) for n in (0, 9_999, 12_345, 123_456, 1_234_567, 2.5)] == [
        "0", "9999", "12.3k", "123k", "1.2M", "2.5"
    ]  # fmt: skip


def test_eta_settles_on_a_steady_rate() -> None:
    """Lines finishing at 2/s with bursts: the ETA converges and stops jumping."""
    meter = Meter(0.0, 0, 0)
    etas = []
    done = requests = 0
    for tick in range(1, 241):  # 120 s of half-second refreshes
        done += 2 if tick % 2 else 0  # bursty: 2 lines every other refresh
        requests += 5
        rate, eta = meter.update(tick * 0.5, done, requests, total=1_000)
        if tick >= 4:  # the first span is over
            assert rate == pytest.approx(10.0)
        etas.append(eta)
    assert etas[-1] is not None
    expected = (1_000 - done) / 2.0
    assert etas[-1] == pytest.approx(expected, rel=0.05)
    late = [e for e in etas[-20:] if e is not None]
    steps = [abs(a - b) for a, b in itertools.pairwise(late)]
    assert max(steps) < 2  # seconds: it counts down, no jumps between frames once settled


def test_no_eta_before_anything_finished() -> None:
    """Nothing done yet: no ETA rather than a made-up one."""
    meter = Meter(0.0, 0, 0)
    assert meter.update(2.0, 0, 8, total=10) == (4.0, None)


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


async def test_a_terminal_without_rich_gets_frames_drawn_in_place(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """rich not installed: frames redrawn with a carriage return, notes on their own lines."""
    monkeypatch.setitem(sys.modules, "rich.console", None)
    monkeypatch.setitem(sys.modules, "rich.live", None)
    stream = _Terminal()
    tally = Tally(total=4)
    display = Display(tally, lambda: 7, stream=stream, quiet=False)
    async with display.shown():
        tally.done, tally.images = 1, 2
        display.refresh()
        display.note("line 3: failed: a reason")
        await anyio.lowlevel.checkpoint()
        display.final(Tally(total=4, done=4, images=8, failed=1, credits=8))
    text = stream.getvalue()
    assert "] 1/4 25%, 2 images" in text.split("\n")[0]
    assert "\nline 3: failed: a reason\n" in text.replace("\r\x1b[K", "\n")
    assert "4/4 100%, 8 images, 1 failed, 8 credits" in text
    assert text.endswith("\n")


async def test_not_a_terminal_gets_plain_lines_and_quiet_gets_nothing() -> None:
    """A pipe: whole lines, no bar, no escapes; --quiet: no output at all."""
    stream = io.StringIO()
    display = Display(Tally(total=2), lambda: 0, stream=stream, quiet=False)
    async with display.shown():
        display.final(Tally(total=2, done=2, images=2))
    assert stream.getvalue().startswith("2/2 100%, 2 images, 0 failed, 0 credits")
    assert "\r" not in stream.getvalue()
    assert "[" not in stream.getvalue()
    silent = io.StringIO()
    display = Display(Tally(total=2), lambda: 0, stream=silent, quiet=True)
    async with display.shown():
        display.final(Tally(total=2, done=2, images=2))
    assert silent.getvalue() == ""


async def test_rich_draws_the_same_frames_within_the_terminal_width(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With rich (the cli extra) on an 80-column terminal: every frame fits, the last is
    the summary's."""
    pytest.importorskip("rich")
    monkeypatch.setenv("COLUMNS", "80")
    stream = _Terminal()
    tally = Tally(total=100_000)
    display = Display(tally, lambda: 3, stream=stream, quiet=False)
    async with display.shown():
        tally.done, tally.images, tally.failed, tally.credits = 12_345, 24_690, 1_234, 49_380
        display.refresh()
        display.note("line 7: failed: a reason")
        display.final(Tally(total=100_000, done=100_000, images=200_000, credits=200_000))
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", stream.getvalue())  # drop control codes
    frames = [line for line in re.split(r"[\r\n]", text) if line.strip()]
    assert frames
    assert all(len(frame) <= 80 for frame in frames), frames
    assert "line 7: failed: a reason" in frames
    assert "100k/100k 100%, 200k images, 0 failed, 200k credits, " in frames[-1]
    assert any("12.3k/100k 12%, 24.7k images, 1234 failed" in frame for frame in frames)


@pytest.mark.parametrize("rich", [True, False])
async def test_an_error_leaves_the_terminal_on_a_new_line(
    rich: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run that fails mid-way: the frame is ended, so the error gets a line of its own."""
    if not rich:
        monkeypatch.setitem(sys.modules, "rich.live", None)
    stream = _Terminal()
    display = Display(Tally(total=3), lambda: 0, stream=stream, quiet=False)

    async def failing_run() -> None:
        async with display.shown():
            display.refresh()
            raise RuntimeError("a refused key")

    with pytest.raises(ExceptionGroup):
        await failing_run()
    assert re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", stream.getvalue()).endswith("ETA -\n")
