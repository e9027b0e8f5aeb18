"""Whether bytes are one whole PNG or JPEG, checked as they stream in, without decoding.

PNG: the signature, then chunks (length, type, data, CRC-32 of type and data), ``IHDR``
first, ``IEND`` last and nothing after it. JPEG: SOI, then marker segments with their
lengths, entropy-coded data after each SOS (where ``FF`` is followed by ``00`` or a
restart marker), and EOI last. A body with bytes inserted, cut short, or with a corrupt
chunk fails; only the structure is read, so memory stays constant whatever the size.
Pure: ``feed`` chunks, then ``finish``; both raise ``ValueError`` saying what is wrong.
"""

from __future__ import annotations

import zlib
from typing import Literal

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8"
_PNG_MAX_CHUNK = 2**31 - 1
_JPEG_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})  # TEM and RST0-7: no length
_SOS, _EOI = 0xDA, 0xD9


class ImageWalker:
    """Walks a PNG's chunks or a JPEG's markers as the bytes arrive."""

    def __init__(self) -> None:
        self.kind: Literal["png", "jpeg"] | None = None
        self._buffer = bytearray()
        self._done = False
        self._state: PngState | JpegState | None = None

    def feed(self, data: bytes) -> None:
        if self._done and data:
            raise ValueError("bytes after the image's end")
        self._buffer += data
        if self._state is None:
            head = bytes(self._buffer[: len(PNG_MAGIC)])
            if head.startswith(PNG_MAGIC):
                self.kind, self._state = "png", PngState()
            elif head.startswith(JPEG_MAGIC):
                self.kind, self._state = "jpeg", JpegState()
            elif PNG_MAGIC.startswith(head) or JPEG_MAGIC.startswith(head):
                return  # too few bytes to tell yet
            else:
                raise ValueError("neither a PNG nor a JPEG signature")
            del self._buffer[: len(PNG_MAGIC) if self.kind == "png" else len(JPEG_MAGIC)]
        self._done = self._state.walk(self._buffer)
        if self._done and self._buffer:
            raise ValueError("bytes after the image's end")

    def finish(self) -> Literal["png", "jpeg"]:
        """The kind of image, if the bytes fed were exactly one whole image."""
        if self.kind is None:
            raise ValueError("neither a PNG nor a JPEG signature")
        if not self._done:
            raise ValueError(f"the {self.kind.upper()} is cut short")
        return self.kind


class PngState:
    """Where the walk is inside a PNG: between chunks, or inside one's data."""

    def __init__(self) -> None:
        self.chunks = 0
        self.type = b""
        self.left = -1  # data bytes of the current chunk still to come; -1: between chunks
        self.crc = 0

    def walk(self, buffer: bytearray) -> bool:
        """Consume what ``buffer`` holds; True once IEND (and its CRC) has been read."""
        while True:
            if self.left < 0:
                if len(buffer) < 8:
                    return False
                length = int.from_bytes(buffer[:4], "big")
                chunk_type = bytes(buffer[4:8])
                self._start(length, chunk_type)
                del buffer[:8]
            if self.left > 0:
                take = min(self.left, len(buffer))
                self.crc = zlib.crc32(buffer[:take], self.crc)
                del buffer[:take]
                self.left -= take
                if self.left:
                    return False
            if len(buffer) < 4:
                return False
            if int.from_bytes(buffer[:4], "big") != self.crc:
                raise ValueError(f"PNG chunk {self.chunks} ({self.type.decode()}) fails its CRC")
            del buffer[:4]
            self.left = -1
            if self.type == b"IEND":
                return True

    def _start(self, length: int, chunk_type: bytes) -> None:
        if length > _PNG_MAX_CHUNK or not chunk_type.isalpha():
            raise ValueError(f"PNG chunk {self.chunks + 1} has no valid length and type")
        if self.chunks == 0 and (chunk_type != b"IHDR" or length != 13):
            raise ValueError("the PNG does not start with its IHDR chunk")
        if chunk_type == b"IHDR" and self.chunks:
            raise ValueError("a second IHDR chunk in the PNG")
        if chunk_type == b"IEND" and length:
            raise ValueError("the PNG's IEND chunk is not empty")
        self.chunks += 1
        self.type = chunk_type
        self.left = length
        self.crc = zlib.crc32(chunk_type)


class JpegState:
    """Where the walk is inside a JPEG: at a marker, skipping a segment, or in scan data."""

    def __init__(self) -> None:
        self.skip = 0  # segment bytes still to skip
        self.in_scan = False
        self.scans = 0

    def walk(self, buffer: bytearray) -> bool:
        """Consume what ``buffer`` holds; True once EOI has been read."""
        while True:
            if self.skip:
                take = min(self.skip, len(buffer))
                del buffer[:take]
                self.skip -= take
                if self.skip:
                    return False
            if self.in_scan and not self._skip_scan(buffer):
                return False
            if len(buffer) < 2:
                return False
            step = self._marker(buffer)
            if step is None:
                return False
            if step:
                return True

    def _marker(self, buffer: bytearray) -> bool | None:
        """Read the marker at the front: True at EOI, False to go on, None for more bytes."""
        if buffer[0] != 0xFF:
            raise ValueError("the JPEG has bytes where a marker should be")
        marker = buffer[1]
        if marker == 0xFF:  # a fill byte before a marker
            del buffer[:1]
            return False
        if marker == _EOI:
            if not self.scans:
                raise ValueError("the JPEG ends before any image data (no SOS)")
            del buffer[:2]
            return True
        if marker in _JPEG_STANDALONE:
            del buffer[:2]
            return False
        if marker in (0x00, 0xD8):
            raise ValueError(f"the JPEG has an invalid marker FF{marker:02X}")
        if len(buffer) < 4:
            return None
        length = int.from_bytes(buffer[2:4], "big")
        if length < 2:
            raise ValueError(f"the JPEG's FF{marker:02X} segment has a bad length")
        del buffer[:4]
        self.skip = length - 2
        if marker == _SOS:
            self.in_scan = True
            self.scans += 1
        return False

    def _skip_scan(self, buffer: bytearray) -> bool:
        """Drop entropy-coded data up to the next real marker; False if it is not here yet."""
        start = 0
        while True:
            at = buffer.find(b"\xff", start)
            if at < 0 or at + 1 >= len(buffer):
                keep = at if at >= 0 else len(buffer)
                del buffer[:keep]
                return False
            follower = buffer[at + 1]
            if follower == 0x00 or 0xD0 <= follower <= 0xD7 or follower == 0xFF:
                start = at + 1 if follower == 0xFF else at + 2
                continue
            del buffer[:at]
            self.in_scan = False
            return True
