"""Bulk input: JSONL and CSV read as a stream, bad lines reported with their number and
reason while the rest goes on; output names that cannot escape the output folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from akool_async import Button
from akool_async.bulk import BulkItem, InputProblem, read_items
from akool_async.bulk._input import count_records
from akool_async.bulk._paths import image_name, inside, item_folder, safe_name


async def _entries(path: Path, default: tuple[Button, ...] = ()) -> list[BulkItem | InputProblem]:
    return [entry async for entry in read_items(path, default)]


async def test_jsonl_lines_become_items_and_problems(tmp_path: Path) -> None:
    """Every v4 field is read; bad lines say their number and why; blank lines are skipped."""
    lines = [
        json.dumps({"id": "fox", "prompt": "a fox", "scale": "16:9", "resolution": "1080p",
                    "batch_quantity": 4, "negative_prompt": "blur", "follow_ups": ["U1", "V2"]}),
        "",
        "{not json",
        json.dumps({"scale": "1:1"}),
        json.dumps({"prompt": "x", "batch_quantity": 9}),
        json.dumps({"prompt": "x", "colour": "red"}),
        json.dumps(["a list"]),
        json.dumps({"prompt": "y", "source_images": ["https://x.test/a.png"], "similar": 0.4,
                    "model_name": "wavespeed-ai/flux-kontext-dev", "id": 7}),
        json.dumps({"prompt": "z", "follow_ups": ["U1", "U1"]}),
    ]  # fmt: skip
    path = tmp_path / "prompts.jsonl"
    path.write_text("\n".join(lines) + "\n")
    entries = await _entries(path)
    items = [e for e in entries if isinstance(e, BulkItem)]
    problems = {e.line: e.reason for e in entries if isinstance(e, InputProblem)}
    assert [(i.line, i.key) for i in items] == [(1, "id:fox"), (8, "id:7")]
    fox = items[0]
    assert fox.request.batch_quantity == 4
    assert fox.request.scale == "16:9"
    assert fox.follow_ups == (Button.U1, Button.V2)
    assert items[1].request.source_images == ("https://x.test/a.png",)
    assert items[1].user_id == "7"
    assert set(problems) == {3, 4, 5, 6, 7, 9}
    assert "not JSON" in problems[3]
    assert "no prompt" in problems[4]
    assert "batch_quantity" in problems[5]
    assert "colour" in problems[6]
    assert "object" in problems[7]
    assert "once" in problems[9]


async def test_csv_with_prompt_column(tmp_path: Path) -> None:
    """CSV rows read with numbers and lists from text; a missing prompt is a problem."""
    path = tmp_path / "prompts.csv"
    path.write_text(
        "prompt,batch_quantity,scale,source_images,similar,follow_ups\n"
        "a fox,2,16:9,,,U1\n"
        '"a cat, asleep",1,Original,https://x.test/a.png https://x.test/b.png,0.7,\n'
        ",1,1:1,,,\n"
    )
    entries = await _entries(path, (Button.V1,))
    fox, cat, problem = entries
    assert isinstance(fox, BulkItem)
    assert isinstance(cat, BulkItem)
    assert (fox.line, fox.key, fox.request.batch_quantity, fox.follow_ups) == (
        2,
        "line:2",
        2,
        (Button.U1,),
    )
    assert cat.request.prompt == "a cat, asleep"
    assert cat.request.source_images == ("https://x.test/a.png", "https://x.test/b.png")
    assert cat.follow_ups == (Button.V1,)  # the command's default when a row has none
    assert isinstance(problem, InputProblem)
    assert problem.line == 4


async def test_reads_a_large_file_in_chunks(tmp_path: Path) -> None:
    """25,000 lines stream through in order; the line count is right."""
    path = tmp_path / "many.jsonl"
    path.write_text("".join(json.dumps({"prompt": f"p{n}"}) + "\n" for n in range(25_000)))
    count = 0
    async for entry in read_items(path):
        assert isinstance(entry, BulkItem)
        assert entry.line == count + 1
        count += 1
    assert count == 25_000 == count_records(path)


def test_count_records_is_what_read_items_yields(tmp_path: Path) -> None:
    """A CSV's header, blank lines and cells over several lines do not inflate the total."""
    csv_file = tmp_path / "p.csv"
    csv_file.write_text('prompt,scale\n"a fox,\nin snow",1:1\n\na cat,16:9\n\n\n')
    jsonl = tmp_path / "p.jsonl"
    jsonl.write_text('{"prompt": "a"}\n\n   \n{"prompt": "b"}\nnot json\n')
    assert count_records(csv_file) == 2
    assert count_records(jsonl) == 3  # a bad line is still a line to report


@pytest.mark.parametrize(
    "user_id", ["../../etc/passwd", "/abs/path", "..", ".", ".hidden", "a/b\\c", "ünïcode",
                "x" * 500, "", "con", "ok-id_1.2"],
)  # fmt: skip
def test_folders_stay_inside_the_output(tmp_path: Path, user_id: str) -> None:
    """Whatever the id, its folder is a plain name inside the output folder."""
    folder = item_folder(tmp_path, user_id, 3)
    assert folder.parent == tmp_path
    assert folder.name not in (".", "..")
    assert not folder.name.startswith(".")
    assert "/" not in folder.name
    assert len(folder.name) < 120


def test_distinct_ids_keep_distinct_names() -> None:
    """Ids that clean to the same text still get different names; clean ids keep theirs."""
    assert safe_name("a/b") != safe_name("a_b")
    assert safe_name("a_b") == "a_b"
    assert image_name(2, None, None, ".png") == "2.png"
    assert image_name(5, "U1", 2, ".png") == "2-U1.png"


def test_inside_refuses_escapes(tmp_path: Path) -> None:
    """A path resolving outside the root is refused."""
    with pytest.raises(ValueError, match="outside"):
        inside(tmp_path, tmp_path / ".." / "elsewhere")


def test_inside_refuses_an_entry_of_the_root_that_links_outside(tmp_path: Path) -> None:
    """An item folder's name is a plain entry of the root; a link there is resolved."""
    root, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    root.mkdir()
    elsewhere.mkdir()
    (root / "id-x").symlink_to(elsewhere)
    with pytest.raises(ValueError, match="outside"):
        inside(root, root / "id-x")
    (root / "id-y").symlink_to(root / "line-000001")
    assert inside(root, root / "id-y") == root / "id-y"  # a link that stays inside
    assert inside(root, root / "id-z") == root / "id-z"  # not made yet
