"""Every JSON response example in Akool's pages structures into our models, values kept."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from akool_async import ImageJob, ImageStatus
from akool_async._converter import converter, structure, structure_jobs, unstructure

SEEDS = Path(__file__).parent / "data" / "seeds"


def _strip_comments(text: str) -> str:
    """Drop the docs' ``// ...`` annotations, leaving ``//`` inside strings (URLs) alone."""
    out, i, in_string = [], 0, False
    while i < len(text):
        char = text[i]
        if in_string:
            out.append(char)
            if char == "\\":
                out.append(text[i + 1])
                i += 1
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
            out.append(char)
        elif text.startswith("//", i):
            while i < len(text) and text[i] != "\n":
                i += 1
            continue
        else:
            out.append(char)
        i += 1
    return "".join(out)


def _balanced_end(text: str, start: int) -> int | None:
    depth, in_string, i = 0, False, start
    while i < len(text):
        char = text[i]
        if in_string:
            if char == "\\":
                i += 1
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return None


def _try_json(candidate: str) -> Any:
    try:
        return json.loads(_strip_comments(candidate))
    except ValueError:
        return None


def json_objects(text: str) -> list[dict[str, Any]]:
    """Every top-level JSON object in a page, fenced or not, comments removed."""
    found, i = [], 0
    while (i := text.find("{", i)) != -1:
        end = _balanced_end(text, i)
        value = _try_json(text[i:end]) if end is not None else None
        if value is None:
            i += 1
            continue
        found.append(value)
        i = end
    return found


def response_examples() -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{path.name}#{n}", obj)
        for path in sorted(SEEDS.glob("*.txt"))
        for n, obj in enumerate(o for o in json_objects(path.read_text()) if "code" in o)
    ]


EXAMPLES = response_examples()


def test_every_page_example_was_found() -> None:
    """The extractor finds all seven response examples (button x2, v3 x3, v4 x2)."""
    assert len(EXAMPLES) == 7
    assert {name.split("#")[0] for name, _ in EXAMPLES} == {
        "000_e5cfc0d847a87e9d.txt",
        "001_3b3e6a12be089736.txt",
        "002_c3a56b11016ae535.txt",
        "004_28e412f6a766a10e.txt",
    }


@pytest.mark.parametrize(("name", "example"), EXAMPLES, ids=[n for n, _ in EXAMPLES])
def test_example_structures_and_keeps_values(name: str, example: dict[str, Any]) -> None:
    """Each example's data becomes jobs whose JSON form holds every original value."""
    assert example["code"] == 1000
    data = example["data"]
    jobs = structure_jobs(data)
    originals = data if isinstance(data, list) else [data]
    assert len(jobs) == len(originals)
    for job, original in zip(jobs, originals, strict=True):
        assert job.id == original["_id"]
        assert job.status == ImageStatus(original["image_status"])
        wire = converter.unstructure(job)
        for key, value in original.items():
            assert wire.get(key, [] if value == [] else None) == value, key
        assert structure(unstructure(job), ImageJob) == job


def test_finished_example_exposes_result() -> None:
    """The v3 result example is terminal, offers all eight buttons and has its URL."""
    (result,) = [structure_jobs(e["data"])[0] for _, e in EXAMPLES if "image" in e["data"]]
    assert result.is_terminal
    assert [b.value for b in result.buttons] == ["U1", "U2", "U3", "U4", "V1", "V2", "V3", "V4"]
    assert result.url is not None
    assert result.url.endswith("-8013.png")


def test_button_example_keeps_parent_and_button() -> None:
    """The createbybutton example keeps its parent id and the pressed button."""
    job = next(
        structure_jobs(e["data"])[0] for _, e in EXAMPLES if "op_button" in e.get("data", {})
    )
    assert job.parent_id == "6508288416e5ba407d47d13f"
    assert job.op_button == "U2"
    assert job.op_button_message_id == "kwZsk6elltno5Nt37VLj"
