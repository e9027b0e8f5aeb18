"""Real PNG bytes for results: sized by scale and resolution, unique and stable per job."""

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


def render_png(job_id: str, width: int, height: int) -> bytes:
    """A valid RGB PNG: a colour band pattern seeded by the job id, and the id in a tEXt chunk."""
    digest = hashlib.sha256(job_id.encode()).digest()
    background, band = digest[0:3], digest[3:6]
    # Two distinct rows repeated: cheap to build and to compress, still a real image.
    plain = b"\x00" + background * width
    striped = b"\x00" + (background * (width // 2) + band * (width - width // 2))
    rows = [striped if (y // max(1, height // 8)) % 2 else plain for y in range(height)]
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return b"".join(
        (
            PNG_SIGNATURE,
            _chunk(b"IHDR", header),
            _chunk(b"tEXt", b"Comment\x00akool-emulator job " + job_id.encode()),
            _chunk(b"IDAT", zlib.compress(b"".join(rows), 6)),
            _chunk(b"IEND", b""),
        )
    )
