"""The PNG chunk walk and the JPEG marker walk, fed whole or in any pieces."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from akool_async._imagecheck import ImageWalker

from .hostile import jpeg, png, png_chunk

PNG = png("walk", size=8)
JPEG = jpeg()
SIGNATURE = PNG[:8]
IHDR = PNG[8 : 8 + 25]
IEND = png_chunk(b"IEND", b"")


def _walk(data: bytes, pieces: list[int] | None = None) -> str:
    walker = ImageWalker()
    cuts = sorted({0, len(data), *(p % (len(data) + 1) for p in pieces or [])})
    for start, end in itertools.pairwise(cuts):
        walker.feed(data[start:end])
    return walker.finish()


def test_whole_images_pass() -> None:
    """A whole PNG and a whole JPEG are recognised by their structure."""
    assert _walk(PNG) == "png"
    assert _walk(JPEG) == "jpeg"


@given(st.lists(st.integers(min_value=0, max_value=10_000), max_size=20))
def test_any_split_of_the_bytes_gives_the_same_answer(pieces: list[int]) -> None:
    """However the body is cut into chunks on the wire, the walk gives the same answer."""
    assert _walk(PNG, pieces) == "png"
    assert _walk(JPEG, pieces) == "jpeg"


BROKEN = {
    "garbage after the PNG signature": SIGNATURE + b"\x00" * 100 + PNG[8:],
    "bytes inserted inside a chunk": PNG[:40] + b"xyz" + PNG[40:],
    "a corrupt CRC": PNG[:29] + bytes([PNG[29] ^ 1]) + PNG[30:],
    "a flipped data byte": PNG[:60] + bytes([PNG[60] ^ 0x10]) + PNG[61:],
    "cut short": PNG[:-5],
    "no IEND": PNG[: -len(IEND)],
    "bytes after IEND": PNG + b"\x00",
    "IHDR not first": SIGNATURE + png_chunk(b"tEXt", b"a\x00b") + PNG[8:],
    "two IHDRs": SIGNATURE + IHDR + IHDR + PNG[33:],
    "a non-empty IEND": PNG[: -len(IEND)] + png_chunk(b"IEND", b"x"),
    "a chunk length past 2^31": SIGNATURE + b"\xff\xff\xff\xffIDAT" + PNG[16:],
    "only a PNG signature": SIGNATURE,
    "JPEG cut short": JPEG[:-2],
    "JPEG without a scan": b"\xff\xd8\xff\xd9",
    "JPEG bytes where a marker belongs": JPEG[:2] + b"\x00" + JPEG[2:],
    "JPEG with a bad segment length": b"\xff\xd8\xff\xe0\x00\x01" + JPEG[4:],
    "JPEG bytes after EOI": JPEG + b"\x00",
    "an HTML page": b"<html>not an image</html>",
    "empty": b"",
}


@pytest.mark.parametrize("data", BROKEN.values(), ids=BROKEN.keys())
def test_broken_images_fail(data: bytes) -> None:
    """Inserted, cut or corrupt bytes anywhere fail the walk, saying what is wrong."""
    with pytest.raises(ValueError, match=r"\w"):
        _walk(data)


@given(st.integers(min_value=0, max_value=len(PNG) - 1), st.integers(1, 255))
def test_any_single_corrupt_byte_in_a_png_fails(at: int, flip: int) -> None:
    """Every byte of a PNG is covered by the signature, a length, a type or a CRC."""
    with pytest.raises(ValueError):  # noqa: PT011 - the reason depends on the byte
        _walk(PNG[:at] + bytes([PNG[at] ^ flip]) + PNG[at + 1 :])
