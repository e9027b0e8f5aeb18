"""Reading a bulk input file: JSONL (one request object a line) or CSV (a ``prompt`` column
and any others), streamed in chunks from a worker thread so that 100,000 lines are never
in memory at once. A bad line becomes an ``InputProblem`` with its number and reason, and
the rest of the file goes on."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import anyio
import attrs

from .._exceptions import ValidationError
from .._models import Button
from .._requests import SourcePromptRequest, check_text, parse_buttons

_CHUNK = 1000
_FIELDS = frozenset({"prompt", "scale", "resolution", "batch_quantity", "source_images",
                     "similar", "negative_prompt", "model_name"})  # fmt: skip
_NUMBERS = {"batch_quantity": int, "similar": float}


@attrs.frozen
class BulkItem:
    """One request of a bulk run: its line, its key (the user's ``id``, or the line),
    the validated v4 request, and the buttons to press on each image."""

    line: int
    key: str
    user_id: str | None
    request: SourcePromptRequest
    follow_ups: tuple[Button, ...] = ()


@attrs.frozen
class InputProblem:
    line: int
    reason: str


@attrs.frozen
class _Unreadable:
    reason: str


Entry = BulkItem | InputProblem


def parse_record(line: int, record: object, default_follow_ups: Sequence[Button] = ()) -> Entry:
    """One input record (a JSON object, or a CSV row) as an item, or the problem with it."""
    try:
        return _item(line, record, default_follow_ups)
    except ValidationError as exc:
        return InputProblem(line, printable(exc.message))
    except (TypeError, ValueError) as exc:  # _BadRecord included
        return InputProblem(line, printable(str(exc)))


_UNPRINTABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f\ud800-\udfff]")


def printable(text: str) -> str:
    """``text`` with control characters and lone surrogates escaped (``\\ud800``): a
    reason quoting the input must still print, and encode as UTF-8 in the manifest."""
    return _UNPRINTABLE.sub(lambda match: repr(match.group())[1:-1], text)


class _BadRecord(ValueError):
    pass


def _item(line: int, record: object, default_follow_ups: Sequence[Button]) -> BulkItem:
    if isinstance(record, _Unreadable):
        raise _BadRecord(record.reason)
    if not isinstance(record, Mapping):
        raise _BadRecord("not a JSON object")
    if "prompt" not in record:
        raise _BadRecord("no prompt")
    unknown = sorted(set(record) - _FIELDS - {"id", "follow_ups"})
    if unknown:
        raise _BadRecord(f"unknown field(s) {', '.join(map(repr, unknown))}")
    user_id = record.get("id")
    if user_id is not None and (not isinstance(user_id, str | int) or isinstance(user_id, bool)):
        raise _BadRecord("id must be a string or a number")
    if isinstance(user_id, str):  # it names a folder and keys the journal: UTF-8 text only
        check_text("id", user_id, required=True)
    fields = {name: _coerce(name, record[name]) for name in _FIELDS if name in record}
    request = SourcePromptRequest(**fields)
    follow_ups = _follow_ups(record.get("follow_ups"), default_follow_ups)
    key = f"id:{user_id}" if user_id is not None else f"line:{line}"
    return BulkItem(line, key, None if user_id is None else str(user_id), request, follow_ups)


def _coerce(name: str, value: Any) -> Any:
    """CSV cells are text: numbers and lists arrive as strings."""
    if isinstance(value, str):
        if name in _NUMBERS and value.strip():
            return _NUMBERS[name](value)
        if name == "source_images":
            return value.split() or None  # a blank cell: no sources (text-to-image)
        if value == "" and name != "prompt":
            return None
    return value


def _follow_ups(value: object, default: Sequence[Button]) -> tuple[Button, ...]:
    if value is None or value == "":
        return tuple(default)
    names = value.replace(",", " ").split() if isinstance(value, str) else value
    if not isinstance(names, list | tuple):
        raise ValidationError("follow_ups", value, 'a list of buttons such as ["U1", "V2"]')
    return parse_buttons(names)


async def read_items(path: Path, default_follow_ups: Sequence[Button] = ()) -> AsyncIterator[Entry]:
    """The file's entries in order, read ``_CHUNK`` lines at a time off the event loop."""
    lines = _records(path)
    while True:
        chunk = await anyio.to_thread.run_sync(_take, lines)
        if not chunk:
            return
        for number, record in chunk:
            yield parse_record(number, record, default_follow_ups)


def _take(records: Iterator[tuple[int, object]]) -> list[tuple[int, object]]:
    chunk = []
    for item in records:
        chunk.append(item)
        if len(chunk) == _CHUNK:
            break
    return chunk


def _records(path: Path) -> Iterator[tuple[int, object]]:
    """(line number, record) pairs; a line that is not JSON gives an ``_Unreadable``."""
    with path.open(encoding="utf-8-sig", newline="") as file:
        if path.suffix.lower() == ".csv":
            reader = csv.DictReader(file)
            for row in reader:
                yield reader.line_num, {k: v for k, v in row.items() if k is not None}
            return
        for number, text in enumerate(file, start=1):
            if not text.strip():
                continue
            try:
                yield number, json.loads(text)
            except json.JSONDecodeError as exc:
                yield number, _Unreadable(f"not JSON ({exc.msg})")


def count_records(path: Path) -> int:
    """Requests the file holds, as ``read_items`` will see them: a CSV's header row and
    blank lines do not count, a quoted CSV cell running over several lines counts once."""
    with path.open(encoding="utf-8-sig", newline="") as file:
        if path.suffix.lower() == ".csv":
            return sum(1 for _ in csv.DictReader(file))
        return sum(1 for text in file if text.strip())
