"""Real PNG bytes for results: sized by scale and resolution, unique and stable per job.

A grid (a v3 first result, a V result) is built from its four parts, pixel for pixel:
part 1 top left, 2 top right, 3 bottom left, 4 bottom right (Midjourney's order, which
Akool's U1-U4/V1-V4 follow).
"""

from __future__ import annotations

import hashlib
import struct
import zlib

_ASPECTS = {
    "1:1": (1, 1), "3:2": (3, 2), "4:3": (4, 3), "16:9": (16, 9),
    "2:3": (2, 3), "3:4": (3, 4), "9:16": (9, 16),
    "Original": (1, 1),  # the source's size is unknown here: square
}  # fmt: skip
_SHORT_SIDE = {"1080p": 1080, "4k": 2160}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def image_size(scale: str, resolution: str, max_side: int | None = None) -> tuple[int, int]:
    """Pixel width and height: the short side from the resolution, the long from the scale."""
    across, down = _ASPECTS.get(scale, (1, 1))
    short = _SHORT_SIDE.get(resolution, 1080)
    if across >= down:
        width, height = round(short * across / down), short
    else:
        width, height = short, round(short * down / across)
    if max_side is not None and max(width, height) > max_side:
        factor = max_side / max(width, height)
        width, height = max(1, round(width * factor)), max(1, round(height * factor))
    return width, height


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data))
        + kind
        + data
        + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def _rows(seed: str, width: int, height: int) -> list[bytes]:
    """RGB pixel rows (no filter byte): a colour band pattern seeded by ``seed``."""
    digest = hashlib.sha256(seed.encode()).digest()
    background, band = digest[0:3], digest[3:6]
    # Two distinct rows repeated: cheap to build and to compress, still a real image.
    plain = background * width
    striped = background * (width // 2) + band * (width - width // 2)
    return [striped if (y // max(1, height // 8)) % 2 else plain for y in range(height)]


def _encode(rows: list[bytes], width: int, height: int, comment: str) -> bytes:
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return b"".join(
        (
            PNG_SIGNATURE,
            _chunk(b"IHDR", header),
            _chunk(b"tEXt", b"Comment\x00akool-emulator " + comment.encode()),
            _chunk(b"IDAT", zlib.compress(b"".join(b"\x00" + row for row in rows), 6)),
            _chunk(b"IEND", b""),
        )
    )


def render_png(job_id: str, width: int, height: int) -> bytes:
    """A valid RGB PNG: a colour band pattern seeded by the job id, and the id in a tEXt chunk."""
    return _encode(_rows(job_id, width, height), width, height, f"job {job_id}")


def part_seed(job_id: str, index: int) -> str:
    return f"{job_id}-{index}"


def render_part(job_id: str, index: int, width: int, height: int) -> bytes:
    """Part ``index`` (1-4) of a grid job: an image of its own, distinct from the others."""
    seed = part_seed(job_id, index)
    return _encode(_rows(seed, width, height), width, height, f"job {job_id} part {index}")


def render_grid(job_id: str, part_width: int, part_height: int) -> bytes:
    """The 2x2 grid of a job's four parts: twice their width and height."""
    top_left, top_right, bottom_left, bottom_right = (
        _rows(part_seed(job_id, index), part_width, part_height) for index in (1, 2, 3, 4)
    )
    rows = [left + right for left, right in zip(top_left, top_right, strict=True)]
    rows += [left + right for left, right in zip(bottom_left, bottom_right, strict=True)]
    return _encode(rows, 2 * part_width, 2 * part_height, f"job {job_id} grid")
