"""Akool webhook callbacks: verify and decrypt (the receiver), sign and encrypt (the emulator).

Akool POSTs ``{"signature", "dataEncrypt", "timestamp", "nonce"}`` to a job's webhook URL.

- ``signature`` is the lowercase hex SHA-1 of ``client_id``, ``str(timestamp)``, ``str(nonce)``
  and ``dataEncrypt``, sorted as plain strings and joined with no separator (no HMAC).
  It is checked, in constant time, before anything is decrypted.
- ``dataEncrypt`` is base64 AES-CBC of a UTF-8 JSON event. The docs' prose speaks of AES-192
  and 24-byte padding, but Akool's sample code, which we follow, uses the API key
  (clientSecret) as the key, so its length (16, 24 or 32 bytes) picks AES-128/192/256; the IV
  is the client id's first 16 UTF-8 bytes, NUL-padded; padding is PKCS#7 on 16-byte blocks.

No secret but the client id enters the signature, and CBC is malleable, so the scheme is only
as strong as the client id is private. Receivers should answer every ``WebhookError`` alike
(one 4xx) so as to give no padding oracle.
Every bad input maps to one typed error; none carries the key or echoes the input.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import attrs

from ._exceptions import WebhookDecryptError, WebhookPayloadError, WebhookSignatureError
from ._models import ImageStatus, WebhookEvent  # WebhookEvent lived here: still importable

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers import Cipher, modes

_BLOCK = 16
_KEY_SIZES = (16, 24, 32)
_SIGNATURE = re.compile(r"[0-9a-fA-F]{40}")
_DIGITS = re.compile(r"0|[1-9][0-9]{0,18}")
# Beyond 2**53 a JSON float no longer holds the sender's integer exactly; no sender's integer
# is wider than 64 bits, and far wider ones would make str() slow or raise.
_MAX_EXACT_FLOAT = 2.0**53
_MAX_INT = 2**64
_EMPTY: Mapping[str, Any] = MappingProxyType({})
_EVENT_KEYS = frozenset({"_id", "status", "type", "url"})
_MAX_SHOWN_ID = 64  # longer ids are not echoed into error messages


@attrs.frozen
class SignedCallback:
    """The callback's outer JSON body, fields checked for type but not yet verified."""

    signature: str
    data_encrypt: str
    timestamp: int
    nonce: str


def _integral(value: object) -> int | None:
    # JSON numbers may come as floats (123.0): only an exact integer keeps str() equal to the
    # sender's text. bool is an int in Python but never a number in JSON.
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if abs(value) < _MAX_INT else None
    if isinstance(value, float) and value.is_integer() and abs(value) <= _MAX_EXACT_FLOAT:
        return int(value)
    return None


def sign(client_id: str, timestamp: int | str, nonce: int | str, data_encrypt: str) -> str:
    """Akool's signature: lowercase hex SHA-1 of the four values sorted and concatenated."""
    parts = sorted([client_id, str(timestamp), str(nonce), data_encrypt])
    return hashlib.sha1("".join(parts).encode()).hexdigest()  # noqa: S324 - Akool's choice


def _key_iv(api_key: str, client_id: str) -> tuple[bytes, bytes]:
    # Errors here name lengths only: the key itself (even one character of it) never shows.
    if not isinstance(api_key, str) or not isinstance(client_id, str):
        raise ValueError("the API key and client id must be strings")  # noqa: TRY004 - one kind
    try:
        key = api_key.encode()
        iv = client_id.encode()[:_BLOCK].ljust(_BLOCK, b"\0")
    except UnicodeEncodeError:
        raise ValueError("the API key and client id must be valid Unicode text") from None
    if len(key) not in _KEY_SIZES:
        raise ValueError(f"the API key is {len(key)} bytes in UTF-8; AES needs 16, 24 or 32 bytes")
    return key, iv


def _aes_cbc(key: bytes, iv: bytes) -> Cipher[modes.CBC]:
    # Imported here so that signing and parsing work without the optional dependency.
    try:
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError(
            "webhook encryption needs cryptography: pip install 'akool-async[webhooks]'"
        ) from None
    return Cipher(algorithms.AES(key), modes.CBC(iv))


def encrypt(plaintext: bytes, *, api_key: str, client_id: str) -> str:
    """Encrypt as Akool does: AES-CBC, PKCS#7, base64. ``ValueError`` for a bad key."""
    key, iv = _key_iv(api_key, client_id)
    pad = _BLOCK - len(plaintext) % _BLOCK
    encryptor = _aes_cbc(key, iv).encryptor()
    data: bytes = encryptor.update(plaintext + bytes([pad]) * pad) + encryptor.finalize()
    return base64.b64encode(data).decode("ascii")


def decrypt(data_encrypt: str, *, api_key: str, client_id: str) -> bytes:
    """Decrypt ``dataEncrypt`` to the plaintext bytes; ``WebhookDecryptError`` if it cannot."""
    try:
        key, iv = _key_iv(api_key, client_id)
    except ValueError as exc:
        raise WebhookDecryptError(str(exc)) from None
    try:
        data = base64.b64decode(data_encrypt, validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise WebhookDecryptError("dataEncrypt is not valid base64") from None
    if not data or len(data) % _BLOCK:
        raise WebhookDecryptError(
            f"the ciphertext is {len(data)} bytes, not a non-zero multiple of {_BLOCK}"
        )
    decryptor = _aes_cbc(key, iv).decryptor()
    padded: bytes = decryptor.update(data) + decryptor.finalize()
    pad = padded[-1]
    # One verdict for every padding fault, compared without early exit.
    valid = 1 <= pad <= _BLOCK and hmac.compare_digest(padded[-pad:], bytes([pad]) * pad)
    if not valid:
        raise WebhookDecryptError("the plaintext's PKCS#7 padding is invalid")
    return padded[:-pad]


def _load_object(raw: bytes | str, what: str) -> Mapping[str, Any]:
    if not isinstance(raw, bytes | bytearray | str):
        raise WebhookPayloadError(f"{what} is not JSON text ({type(raw).__name__})")
    try:
        loaded = json.loads(raw)
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError included
        raise WebhookPayloadError(f"{what} is not JSON") from None
    if not isinstance(loaded, dict):
        raise WebhookPayloadError(f"{what} is not a JSON object")
    return loaded


def parse_callback(body: bytes | str | Mapping[str, Any]) -> SignedCallback:
    """Check the outer body's shape and types; ``WebhookPayloadError`` when it is malformed."""
    fields = body if isinstance(body, Mapping) else _load_object(body, "the callback body")
    missing = [k for k in ("signature", "dataEncrypt", "timestamp", "nonce") if k not in fields]
    if missing:
        raise WebhookPayloadError(f"the callback body lacks {', '.join(missing)}")
    signature, data_encrypt = fields["signature"], fields["dataEncrypt"]
    if not isinstance(signature, str):
        raise WebhookPayloadError("signature is not a string")
    if not isinstance(data_encrypt, str):
        raise WebhookPayloadError("dataEncrypt is not a string")
    raw_ts = fields["timestamp"]
    # A digit string must be canonical: "0123" would sign differently from the int 123.
    timestamp = (
        int(raw_ts) if isinstance(raw_ts, str) and _DIGITS.fullmatch(raw_ts) else _integral(raw_ts)
    )
    if timestamp is None or timestamp < 0:
        raise WebhookPayloadError("timestamp is not a non-negative integer (milliseconds)")
    raw_nonce = fields["nonce"]
    if isinstance(raw_nonce, str):
        nonce = raw_nonce
    elif (number := _integral(raw_nonce)) is not None:
        nonce = str(number)
    else:
        raise WebhookPayloadError("nonce is not a string or an integer")
    return SignedCallback(signature, data_encrypt, timestamp, nonce)


def verify(callback: SignedCallback, *, client_id: str) -> None:
    """Check the signature in constant time; ``WebhookSignatureError`` if malformed or wrong."""
    if not isinstance(callback, SignedCallback):
        raise WebhookPayloadError(f"not a parsed callback ({type(callback).__name__})")
    if not isinstance(client_id, str):
        raise WebhookSignatureError("the client id is not a string")
    if not _SIGNATURE.fullmatch(callback.signature):
        raise WebhookSignatureError("the signature is not 40 hexadecimal characters")
    try:
        expected = sign(client_id, callback.timestamp, callback.nonce, callback.data_encrypt)
    except UnicodeEncodeError:  # lone surrogates, which JSON escapes can carry
        raise WebhookSignatureError("the signed fields are not valid Unicode") from None
    if not hmac.compare_digest(expected, callback.signature.lower()):
        raise WebhookSignatureError("the signature does not match")


def parse_event(plaintext: bytes) -> WebhookEvent:
    """Read the decrypted event: ``WebhookPayloadError`` if not shaped as Akool's, or
    ``WebhookDecryptError`` if not even UTF-8 (a wrong IV garbles the first block only)."""
    if not isinstance(plaintext, bytes | bytearray):
        raise WebhookPayloadError(f"the decrypted event is not bytes ({type(plaintext).__name__})")
    try:
        text = plaintext.decode()
    except UnicodeDecodeError:
        raise WebhookDecryptError("the plaintext is not UTF-8 (wrong client id?)") from None
    fields = _load_object(text, "the decrypted event")
    job_id = fields.get("_id")
    if not isinstance(job_id, str) or not job_id:
        raise WebhookPayloadError("the event has no _id string")
    shown = job_id if len(job_id) <= _MAX_SHOWN_ID else None
    status = _integral(fields.get("status"))
    if status is None:
        raise WebhookPayloadError("the event has no integer status", job_id=shown)
    type_, url = fields.get("type"), fields.get("url")
    if type_ is not None and not isinstance(type_, str):
        raise WebhookPayloadError("the event's type is not a string", job_id=shown)
    if url is not None and not isinstance(url, str):
        raise WebhookPayloadError("the event's url is not a string", job_id=shown)
    extra = {k: v for k, v in fields.items() if k not in _EVENT_KEYS}
    return WebhookEvent(
        job_id, ImageStatus(status), type_, url, MappingProxyType(extra) if extra else _EMPTY
    )


def open_callback(
    body: bytes | str | Mapping[str, Any], *, api_key: str, client_id: str
) -> WebhookEvent:
    """The receiver's path: parse the body, verify it, decrypt it and read the event."""
    callback = parse_callback(body)
    verify(callback, client_id=client_id)
    return parse_event(decrypt(callback.data_encrypt, api_key=api_key, client_id=client_id))


def seal_event(
    event: Mapping[str, Any], *, api_key: str, client_id: str, timestamp: int, nonce: str | int
) -> dict[str, Any]:
    """The emulator's path: the JSON-ready callback body Akool would POST for ``event``."""
    plaintext = json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()
    data_encrypt = encrypt(plaintext, api_key=api_key, client_id=client_id)
    return {
        "signature": sign(client_id, timestamp, nonce, data_encrypt),
        "dataEncrypt": data_encrypt,
        "timestamp": timestamp,
        "nonce": nonce,
    }
