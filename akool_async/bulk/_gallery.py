"""``index.html`` in the output folder: every saved image as a thumbnail with its prompt,
button, status, credits and time, then what failed or is uncertain, with reasons.

Self-contained and offline: inline CSS, no script, images by relative path (the folder
can be moved or zipped whole). Written from the manifest, streamed, so a run of 100,000
images never holds them in memory.
"""

from __future__ import annotations

import html
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import quote

import attrs

from ._manifest import Summary, is_pending
from ._states import ItemState


@attrs.frozen
class Problem:
    """A request with no image to show: its line, id, prompt, state and reason."""

    line: int
    user_id: str | None
    prompt: str | None
    state: ItemState
    reason: str | None


_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;background:#fafafa}
h1{font-size:1.4em;margin:0 0 .3em}.summary{color:#555;margin:0 0 1em;padding-left:1.2em}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(180px,1fr));gap:12px}
figure{margin:0;background:#fff;border:1px solid #ddd;border-radius:6px;padding:6px}
figure img{display:block;width:100%;height:160px;object-fit:contain;background:#eee}
figcaption{font-size:12px;margin-top:4px;word-break:break-word}
.meta{color:#666}.bad{color:#a00}table{border-collapse:collapse;margin-top:.5em}
td,th{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
"""


def write_gallery(path: Path, manifest: Path, summary: Summary,
                  problems: Iterable[Problem]) -> Path:  # fmt: skip
    """Write the gallery atomically next to the manifest it is made from."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.part")  # one per process
    with partial.open("w", encoding="utf-8") as out:
        _page(out, _records(manifest), summary, problems)
        out.flush()
        os.fsync(out.fileno())
    partial.replace(path)
    return path


def _records(manifest: Path) -> Iterator[dict[str, Any]]:
    if not manifest.exists():
        return
    with manifest.open(encoding="utf-8") as file:
        for text in file:
            if text.strip():
                yield json.loads(text)


def _page(out: TextIO, records: Iterator[dict[str, Any]], summary: Summary,
          problems: Iterable[Problem]) -> None:  # fmt: skip
    e = html.escape
    out.write(
        "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width'>"
        f"<title>akool-async: {summary.images_done} images</title><style>{_STYLE}</style>"
        f"</head><body>\n<h1>{summary.images_done} images</h1>\n"
        f"<ul class=summary>{''.join(f'<li>{e(line)}' for line in summary.lines())}</ul>\n"
        "<div class=grid>\n"
    )
    unsaved: list[dict[str, Any]] = []
    for record in records:
        if record.get("kind") in ("request", "line"):
            continue  # a request with no job, or a line that made none: among the problems
        if not record["ok"]:
            unsaved.append(record)
            continue
        out.write(_figure(record))
    out.write("</div>\n")
    rows = [(r["line"], _image_row(r)) for r in unsaved]
    rows += [(p.line, _problem_row(p)) for p in problems]
    rows.sort(key=lambda row: row[0])
    if rows:
        out.write(
            f"<h2 class=bad>Not saved ({len(rows)})</h2>\n<table><tr><th>line</th><th>id</th>"
            "<th>prompt</th><th>job</th><th>state</th><th>reason</th></tr>\n"
        )
        out.writelines(row for _, row in rows)
        out.write("</table>\n")
    out.write("</body></html>\n")


def _figure(record: dict[str, Any]) -> str:
    e = html.escape
    src = quote(record["path"].replace(os.sep, "/"))
    what = f"{record['button']} follow-up" if record["button"] else "created"
    if record.get("kind") == "grid":
        what += ", 2x2 grid"
    elif record.get("index") and (record["button"] or "").startswith("V"):
        what += f", image {record['index']}"  # one of a V result's four
    seconds = record["seconds"]
    meta = " · ".join(
        part for part in (
            what, record["status"] or "", _credits(record["credits"]), f"{seconds:.1f} s"
            if seconds is not None else "",
        ) if part
    )  # fmt: skip
    name = record["id"] if record["id"] is not None else f"line {record['line']}"
    return (
        f"<figure><a href='{e(src)}'><img src='{e(src)}' loading=lazy "
        f"alt='{e(record['prompt'] or '')}'></a><figcaption><b>{e(str(name))}</b> "
        f"{e(record['prompt'] or '')}<div class=meta>{e(meta)}</div></figcaption></figure>\n"
    )


def _credits(amount: float | None) -> str:
    if amount is None:
        return ""
    return f"{amount:g} credit" + ("" if amount == 1 else "s")


def _image_row(record: dict[str, Any]) -> str:
    state = "not finished" if is_pending(record) else "failed"
    reason = record["error"] or (record["status"] and f"job {record['status']}") or ""
    return _row(record["line"], user_id=record["id"], prompt=record["prompt"],
                job_id=record["job_id"], state=state, reason=reason)  # fmt: skip


def _problem_row(problem: Problem) -> str:
    return _row(problem.line, user_id=problem.user_id, prompt=problem.prompt, job_id=None,
                state=problem.state, reason=problem.reason or "")  # fmt: skip


def _row(line: int, *, user_id: str | None, prompt: str | None, job_id: str | None, state: str,
         reason: str) -> str:  # fmt: skip
    cells = (str(line), user_id or "", prompt or "", job_id or "", state, reason)
    return "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in cells) + "</tr>\n"
