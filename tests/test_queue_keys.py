"""An item's key on the shared queue: from what it asks for, never from where it is."""

from __future__ import annotations

from akool_async.bulk import BulkItem, parse_record
from akool_async.bulk._identity import fingerprint, fingerprint_of
from akool_async.workers._keys import QueueKeys


def item(line: int, record: dict[str, object]) -> BulkItem:
    parsed = parse_record(line, record)
    assert isinstance(parsed, BulkItem)
    return parsed


def test_a_fingerprint_is_the_request_as_sent_and_its_buttons() -> None:
    """Key order and the line do not matter; a changed field or button does."""
    base = fingerprint(item(1, {"prompt": "a fox", "scale": "16:9"}))
    assert fingerprint(item(9, {"scale": "16:9", "prompt": "a fox"})) == base
    assert fingerprint(item(1, {"prompt": "a fox", "scale": "1:1"})) != base
    assert fingerprint(item(1, {"prompt": "a fox", "scale": "16:9", "follow_ups": ["U1"]})) != base
    assert fingerprint_of({"b": 1, "a": "é"}, ["U1"]) == fingerprint_of({"a": "é", "b": 1}, ["U1"])
    assert len(base) == 64


def test_keys_follow_the_request_not_the_line() -> None:
    """Equal lines without an id count up; a moved line keeps its key; an id's key
    changes with its request."""

    def keys(records: list[dict[str, object]]) -> list[tuple[str, str]]:
        of_file = QueueKeys()
        return [of_file.key(item(n, r)) for n, r in enumerate(records, 1)]

    first = keys([{"prompt": "a"}, {"prompt": "b"}, {"prompt": "a"}, {"id": 7, "prompt": "c"}])
    second = keys([{"prompt": "new"}, {"prompt": "a"}, {"id": 7, "prompt": "c!"},
                   {"prompt": "b"}, {"prompt": "a"}])  # fmt: skip
    assert [k for k, _ in first][:3] == [k for k, _ in second if k.startswith("fp:")][1:]
    a_key, a_print = first[0]
    assert a_key == f"fp:{a_print}#1"
    assert first[2] == (f"fp:{a_print}#2", a_print)
    assert first[3][0].startswith("id:7/")
    assert second[2][0].startswith("id:7/")
    assert second[2][0] != first[3][0]
