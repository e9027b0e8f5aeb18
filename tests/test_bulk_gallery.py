"""The gallery a bulk run leaves in its output folder: every saved image with its details,
what failed with reasons; self-contained; rendered in a real headless Chromium."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import anyio
import pytest

from akool_async import RetryPolicy
from akool_async.bulk import parse_record, run_bulk
from akool_async.emulator import Emulator, EmulatorConfig, Fixed

BROWSER = next(
    (found for name in ("chromium", "chromium-browser", "google-chrome")
     if (found := shutil.which(name))), None,
)  # fmt: skip

# Loads the gallery in a frame, makes every lazy thumbnail load, and writes what each
# image decoded to (its natural width; 0 when it did not load) into the page.
HARNESS = """<!DOCTYPE html><html><body>
<iframe id=g src="index.html" style="width:1200px;height:800px"></iframe><pre id=result></pre>
<script>
document.getElementById('g').addEventListener('load', () => {
  const images = [...document.getElementById('g').contentDocument.images];
  images.forEach(image => { image.loading = 'eager'; });
  const check = () => {
    if (images.some(image => !image.complete)) { setTimeout(check, 50); return; }
    document.getElementById('result').textContent = JSON.stringify(
      images.map(image => [image.getAttribute('src'), image.naturalWidth]));
  };
  check();
});
</script></body></html>"""


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.images: list[dict[str, str | None]] = []
        self.rows: list[list[str]] = []
        self.external: list[str] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "img":
            self.images.append(values)
        if tag in ("script", "link", "iframe"):
            self.external.append(tag)
        for name in ("src", "href"):
            if (values.get(name) or "").startswith(("http:", "https:", "//")):
                self.external.append(str(values[name]))
        if tag == "tr":
            self.rows.append([])
        if tag == "td":
            self._cell = []

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell is not None:
            self.rows[-1].append("".join(self._cell))
            self._cell = None


async def _run(out: Path) -> Any:
    config = EmulatorConfig(time_scale=1000, durations=Fixed(30), image_max_side=64,
                            fail_rate=0.3, seed=3)  # fmt: skip
    entries = [
        parse_record(n, {"id": f"p{n}", "prompt": f"a <b>fox</b> & co, take {n}",
                         "batch_quantity": 2, "follow_ups": ["U1"]})
        for n in range(1, 7)
    ]  # fmt: skip
    entries.insert(3, parse_record(4, {"prompt": "x", "scale": "5:4"}))
    emulator = Emulator(config)
    async with (
        emulator,
        emulator.client(rate_limit=None, retry=RetryPolicy(wait=False)) as client,
        run_bulk(client, entries, out_dir=out) as run,
    ):
        async for _ in run:
            pass
    return run


def _manifest(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]


async def test_the_gallery_lists_every_saved_image_and_every_failure(tmp_path: Path) -> None:
    """One thumbnail per saved image (path, prompt escaped, details), one row per image or
    line that failed, with its reason; nothing fetched from anywhere else."""
    out = tmp_path / "out"
    run = await _run(out)
    assert run.gallery_path == out / "index.html"
    text = run.gallery_path.read_text()
    page = _Page()
    page.feed(text)
    records = _manifest(out)
    saved = [r for r in records if r["ok"]]
    failed = [r for r in records if not r["ok"] and r["kind"] != "line"]
    lines = [r for r in records if r["kind"] == "line"]  # lines that made no request
    assert failed  # the seed makes some fail: the table is exercised
    assert sorted(str(i["src"]) for i in page.images) == sorted(r["path"] for r in saved)
    assert all((out / str(image["src"])).is_file() for image in page.images)
    assert "a &lt;b&gt;fox&lt;/b&gt; &amp; co, take 1" in text
    assert any(r["button"] == "U1" for r in saved)
    assert "U1 follow-up" in text
    assert not page.external
    reasons = {(row[0], row[4]): row[5] for row in page.rows if row}
    for record in failed:
        assert reasons[(str(record["line"]), "failed")] in (record["error"], "job failed")
    invalid = reasons[("4", "invalid")]
    assert "scale" in invalid
    assert [(r["line"], r["state"], r["error"]) for r in lines] == [(4, "invalid", invalid)]
    assert f"<h1>{run.summary.images_done} images</h1>" in text


@pytest.mark.skipif(BROWSER is None, reason="no Chromium here (apt-get install chromium)")
def test_the_gallery_renders_in_chromium_with_every_image_loaded(tmp_path: Path) -> None:
    """Headless Chromium draws the page to a screenshot and decodes every thumbnail; with
    one file removed, that one image is reported as not loaded (the check can fail)."""
    assert BROWSER is not None
    out = tmp_path / "out"
    anyio.run(_run, out)  # the browser is the point here, not the event loop: run once
    shot = tmp_path / "gallery.png"
    browser = [BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
               f"--user-data-dir={tmp_path / 'profile'}"]  # fmt: skip
    subprocess.run([*browser, f"--screenshot={shot}", "--window-size=1200,900",
                    (out / "index.html").as_uri()], capture_output=True, timeout=90,
                   check=True)  # fmt: skip
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 10_000  # a page with pictures, not a blank one

    def loaded() -> dict[str, int]:
        (out / "_check.html").write_text(HARNESS)
        dumped = subprocess.run(
            [*browser, "--allow-file-access-from-files", "--virtual-time-budget=20000",
             "--dump-dom", (out / "_check.html").as_uri()],
            capture_output=True, text=True, timeout=90, check=True,
        ).stdout  # fmt: skip
        found = re.search(r'<pre id="result">(.*?)</pre>', dumped, re.S)
        assert found is not None
        assert found.group(1), "the page never finished loading its images"
        return dict(json.loads(html.unescape(found.group(1))))

    saved = [r["path"] for r in _manifest(out) if r["ok"]]
    widths = loaded()
    assert sorted(widths) == sorted(saved)
    assert all(width > 0 for width in widths.values()), widths
    (out / saved[0]).unlink()
    assert loaded()[saved[0]] == 0
