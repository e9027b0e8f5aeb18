"""Webhook callback crypto, checked against vectors made without our code.

References: ``openssl enc`` in a subprocess, the ``cryptography`` primitives with PKCS#7
written out here, and ``hashlib.sha1`` over the sorted fields. IVs are written as literals.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
from collections.abc import Callable, Mapping
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given
from hypothesis import strategies as st

from akool_async._exceptions import (
    AkoolError,
    WebhookDecryptError,
    WebhookError,
    WebhookPayloadError,
    WebhookSignatureError,
)
from akool_async._models import ImageStatus, WebhookEvent
from akool_async._webhook_crypto import (
    SignedCallback,
    decrypt,
    encrypt,
    open_callback,
    parse_callback,
    parse_event,
    seal_event,
    sign,
    verify,
)

KEY16 = "k16-0123456789ab"
KEY24 = "k24-0123456789abcdefghij"
KEY32 = "TOPSECRET-api-key-0123456789abcd"
CLIENT_ID = "client-0123"
IV_CLIENT_ID = b"client-0123\0\0\0\0\0"
TS = 1_700_000_000_123
NONCE = "4821"
JOB_ID = "66a1b2c3d4e5f60718293a4b"
URL = "https://x/y.png"
EVENT = {"_id": JOB_ID, "status": 3, "type": "image", "url": URL}
OPENSSL = shutil.which("openssl")
needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="openssl is not on PATH")


def ref_encrypt(plaintext: bytes, key: bytes, iv: bytes, *, pad: bool = True) -> str:
    if pad:
        n = 16 - len(plaintext) % 16
        plaintext += bytes([n]) * n
    enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return base64.b64encode(enc.update(plaintext) + enc.finalize()).decode()


def ref_decrypt(data: str, key: bytes, iv: bytes) -> bytes:
    dec = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    padded = dec.update(base64.b64decode(data)) + dec.finalize()
    n = padded[-1]
    assert 1 <= n <= 16
    assert padded[-n:] == bytes([n]) * n
    return padded[:-n]


def ref_sign(*fields: str) -> str:
    return hashlib.sha1("".join(sorted(fields)).encode("utf-8")).hexdigest()


def body_for(plaintext: bytes, *, key: str = KEY32, iv: bytes = IV_CLIENT_ID) -> dict[str, Any]:
    """A callback body built with the reference cipher and signature only."""
    data = ref_encrypt(plaintext, key.encode(), iv)
    sig = ref_sign(CLIENT_ID, str(TS), NONCE, data)
    return {"signature": sig, "dataEncrypt": data, "timestamp": TS, "nonce": NONCE}


def resigned(body: Mapping[str, Any], data: str, client_id: str = CLIENT_ID) -> dict[str, Any]:
    sig = ref_sign(client_id, str(body["timestamp"]), str(body["nonce"]), data)
    return {**body, "dataEncrypt": data, "signature": sig}


def flip(data: str, index: int, mask: int = 0x80) -> str:
    raw = bytearray(base64.b64decode(data))
    raw[index] ^= mask
    return base64.b64encode(bytes(raw)).decode()


def openssl(args: list[str], data: bytes) -> bytes:
    assert OPENSSL is not None
    done = subprocess.run([OPENSSL, "enc", *args], input=data, capture_output=True, check=True)
    return done.stdout


# -- signature ---------------------------------------------------------------------------


@pytest.mark.parametrize(("timestamp", "nonce"), [(TS, NONCE), (str(TS), 4821), (0, "")])
def test_sign_is_sha1_of_sorted_fields(timestamp: int | str, nonce: int | str) -> None:
    """sign() is lowercase hex SHA-1 of the four fields sorted and joined, ints as str()."""
    expected = ref_sign(CLIENT_ID, str(timestamp), str(nonce), "ZGF0YQ==")
    assert sign(CLIENT_ID, timestamp, nonce, "ZGF0YQ==") == expected


def test_sign_uses_plain_code_point_order() -> None:
    """The sort is Python's code-point order (digits < upper < lower), with no separator."""
    assert sign("b", 2, "a", "C") == hashlib.sha1(b"2Cab").hexdigest()
    assert sign("é", 1, "z", "Z") == hashlib.sha1("1Zzé".encode()).hexdigest()


def test_verify_accepts_reference_signature_and_uppercase_hex() -> None:
    """verify() accepts the reference signature, in either hex case."""
    sig = ref_sign(CLIENT_ID, str(TS), NONCE, "abc=")
    verify(SignedCallback(sig, "abc=", TS, NONCE), client_id=CLIENT_ID)
    verify(SignedCallback(sig.upper(), "abc=", TS, NONCE), client_id=CLIENT_ID)


@pytest.mark.parametrize(
    "signature", ["0" * 40, "a" * 39, "a" * 41, "g" * 40, "", "٣" * 40, " " + "a" * 39]
)
def test_verify_rejects_wrong_or_malformed_signature(signature: str) -> None:
    """A wrong, short, long or non-hex signature is a WebhookSignatureError."""
    with pytest.raises(WebhookSignatureError):
        verify(SignedCallback(signature, "abc=", TS, NONCE), client_id=CLIENT_ID)


def test_verify_rejects_unencodable_fields() -> None:
    """Lone surrogates (which JSON escapes can carry) give a signature error, not a crash."""
    with pytest.raises(WebhookSignatureError):
        verify(SignedCallback("a" * 40, "\ud800", TS, NONCE), client_id=CLIENT_ID)


# -- cipher against references ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("client_id", "iv"),
    [
        ("", b"\0" * 16),
        ("abc", b"abc" + b"\0" * 13),
        ("0123456789abcdef", b"0123456789abcdef"),
        ("0123456789abcdefXYZ", b"0123456789abcdef"),
        ("clé-ü", b"cl\xc3\xa9-\xc3\xbc" + b"\0" * 9),
        ("ééééééééé", b"\xc3\xa9" * 8),  # 18 UTF-8 bytes, truncated to 16
    ],
)
@pytest.mark.parametrize("key", [KEY16, KEY24, KEY32])
def test_matches_reference_cipher(key: str, client_id: str, iv: bytes) -> None:
    """Our encrypt/decrypt equal AES-CBC+PKCS#7 written out, IV = client id NUL-padded to 16."""
    plaintext = json.dumps(EVENT).encode()
    reference = ref_encrypt(plaintext, key.encode(), iv)
    assert encrypt(plaintext, api_key=key, client_id=client_id) == reference
    assert decrypt(reference, api_key=key, client_id=client_id) == plaintext


@pytest.mark.parametrize("size", [0, 15, 16, 17, 32])
def test_padding_always_adds_a_block_fragment(size: int) -> None:
    """PKCS#7 pads 1..16 bytes: a whole-block plaintext gets a full block of 0x10."""
    data = encrypt(b"x" * size, api_key=KEY16, client_id=CLIENT_ID)
    assert len(base64.b64decode(data)) == (size // 16 + 1) * 16
    assert ref_decrypt(data, KEY16.encode(), IV_CLIENT_ID) == b"x" * size


def test_utf8_key_of_16_bytes_selects_aes_128() -> None:
    """The key length counts UTF-8 bytes: eight 'é' are a 16-byte AES-128 key."""
    key = "é" * 8
    data = ref_encrypt(b"hello", key.encode(), IV_CLIENT_ID)
    assert decrypt(data, api_key=key, client_id=CLIENT_ID) == b"hello"


@needs_openssl
@pytest.mark.parametrize("key", [KEY16, KEY24, KEY32])
def test_decrypts_openssl_ciphertext(key: str) -> None:
    """Ciphertext from `openssl enc -aes-N-cbc -base64 -A` decrypts with ours."""
    plaintext = json.dumps(EVENT).encode()
    args = [f"-aes-{len(key) * 8}-cbc", "-K", key.encode().hex(), "-iv", IV_CLIENT_ID.hex()]
    data = openssl([*args, "-base64", "-A"], plaintext).decode().strip()
    assert decrypt(data, api_key=key, client_id=CLIENT_ID) == plaintext


@needs_openssl
@pytest.mark.parametrize("key", [KEY16, KEY24, KEY32])
def test_openssl_decrypts_our_ciphertext(key: str) -> None:
    """Our ciphertext decrypts with `openssl enc -d -aes-N-cbc -base64 -A`."""
    plaintext = "événement ✓".encode()
    data = encrypt(plaintext, api_key=key, client_id=CLIENT_ID)
    args = [f"-aes-{len(key) * 8}-cbc", "-K", key.encode().hex(), "-iv", IV_CLIENT_ID.hex()]
    assert openssl(["-d", *args, "-base64", "-A"], data.encode() + b"\n") == plaintext


# -- decrypt failures ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "last_block",
    [
        b"A" * 13 + b"\x03\x02\x03",  # inconsistent pad bytes
        b"A" * 15 + b"\x00",  # pad value 0
        b"A" * 15 + b"\x11",  # pad value 17
        b"A" * 15 + b"\xff",
        b"\x10" * 15 + b"\x0f",
    ],
)
def test_bad_padding_is_decrypt_error(last_block: bytes) -> None:
    """Padding with inconsistent bytes, value 0 or above 16 is a WebhookDecryptError."""
    data = ref_encrypt(b"B" * 16 + last_block, KEY32.encode(), IV_CLIENT_ID, pad=False)
    with pytest.raises(WebhookDecryptError, match="padding"):
        decrypt(data, api_key=KEY32, client_id=CLIENT_ID)


@pytest.mark.parametrize(
    "data",
    [
        "",  # empty ciphertext
        base64.b64encode(b"x" * 20).decode(),  # not a multiple of 16
        base64.b64encode(b"x" * 15).decode(),
        ref_encrypt(b"hello", KEY32.encode(), IV_CLIENT_ID)[:-1],  # truncated base64
        ref_encrypt(b"hello", KEY32.encode(), IV_CLIENT_ID)[:-4],  # truncated to 12 bytes
        "not base64!",
        "QUJD\nREVG",  # whitespace is not standard base64
        "QUJDREVG-_==",  # urlsafe alphabet
        "ÄÖÜ=",
    ],
)
def test_malformed_ciphertext_is_decrypt_error(data: str) -> None:
    """Empty, non-block-sized, truncated or non-base64 dataEncrypt is a WebhookDecryptError."""
    with pytest.raises(WebhookDecryptError):
        decrypt(data, api_key=KEY32, client_id=CLIENT_ID)


@pytest.mark.parametrize(
    "key", ["", "short", "k" * 15, "k" * 17, "k" * 33, "é" + "k" * 15, "\ud800" * 16]
)
def test_bad_key_length(key: str) -> None:
    """A key not 16/24/32 UTF-8 bytes: WebhookDecryptError to decrypt, ValueError to seal."""
    data = ref_encrypt(b"hello", KEY16.encode(), IV_CLIENT_ID)
    with pytest.raises(WebhookDecryptError, match="API key"):
        decrypt(data, api_key=key, client_id=CLIENT_ID)
    with pytest.raises(ValueError, match="API key") as info:
        encrypt(b"hello", api_key=key, client_id=CLIENT_ID)
    assert not isinstance(info.value, WebhookError)
    with pytest.raises(ValueError, match="API key"):
        seal_event(EVENT, api_key=key, client_id=CLIENT_ID, timestamp=TS, nonce=NONCE)


def test_wrong_key_is_decrypt_error() -> None:
    """A right-sized but wrong key garbles everything: WebhookDecryptError."""
    body = body_for(json.dumps(EVENT).encode())
    with pytest.raises(WebhookDecryptError):
        open_callback(body, api_key="k" * 32, client_id=CLIENT_ID)


def test_wrong_client_id_is_signature_error() -> None:
    """The client id is signed, so a wrong one fails verification before decryption."""
    body = body_for(json.dumps(EVENT).encode())
    with pytest.raises(WebhookSignatureError):
        open_callback(body, api_key=KEY32, client_id="client-0124")


@pytest.mark.parametrize(
    ("other_id", "error"),
    [("ébcdefgh", WebhookDecryptError), ("Client-0123", WebhookPayloadError)],
)
def test_wrong_iv_with_valid_signature_is_typed_error(
    other_id: str, error: type[Exception]
) -> None:
    """A valid signature but the wrong IV garbles block one: a typed error, never a crash."""
    sealed = body_for(json.dumps(EVENT).encode())  # IV from CLIENT_ID
    body = resigned(sealed, sealed["dataEncrypt"], client_id=other_id)
    with pytest.raises(error):
        open_callback(body, api_key=KEY32, client_id=other_id)


def test_tampered_ciphertext_without_new_signature_is_signature_error() -> None:
    """Changing dataEncrypt without re-signing is caught by the signature."""
    body = body_for(json.dumps(EVENT).encode())
    body["dataEncrypt"] = flip(body["dataEncrypt"], 0)
    with pytest.raises(WebhookSignatureError):
        open_callback(body, api_key=KEY32, client_id=CLIENT_ID)


def test_tampered_ciphertext_resigned_breaks_padding() -> None:
    """Flipping the pad byte (via the previous block) with a fresh signature: padding error."""
    body = body_for(json.dumps(EVENT).encode())
    size = len(base64.b64decode(body["dataEncrypt"]))
    body = resigned(body, flip(body["dataEncrypt"], size - 17))
    with pytest.raises(WebhookDecryptError, match="padding"):
        open_callback(body, api_key=KEY32, client_id=CLIENT_ID)


def test_tampered_ciphertext_resigned_garbles_text() -> None:
    """Flipping a middle block with a fresh signature yields non-UTF-8: WebhookDecryptError."""
    body = body_for(json.dumps(EVENT).encode())
    body = resigned(body, flip(body["dataEncrypt"], 5))
    with pytest.raises(WebhookDecryptError, match="UTF-8"):
        open_callback(body, api_key=KEY32, client_id=CLIENT_ID)


def test_signature_is_checked_before_decryption() -> None:
    """A bad signature wins over undecryptable data: nothing is decrypted unverified."""
    body = {"signature": "0" * 40, "dataEncrypt": "@@", "timestamp": TS, "nonce": NONCE}
    with pytest.raises(WebhookSignatureError):
        open_callback(body, api_key="bad key", client_id=CLIENT_ID)


# -- outer body ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("timestamp", "nonce", "want_ts", "want_nonce"),
    [
        (TS, "4821", TS, "4821"),
        (TS, 4821, TS, "4821"),
        (str(TS), "abc", TS, "abc"),
        (float(TS), 4821.0, TS, "4821"),
        ("0", -7, 0, "-7"),
        (TS, "", TS, ""),
    ],
)
def test_parse_callback_normalises_timestamp_and_nonce(
    timestamp: object, nonce: object, want_ts: int, want_nonce: str
) -> None:
    """Timestamp int/digit-string and nonce str/number parse to int and the signed string."""
    raw = {"signature": "s", "dataEncrypt": "d", "timestamp": timestamp, "nonce": nonce}
    got = parse_callback(json.dumps(raw).encode())
    assert got == SignedCallback("s", "d", want_ts, want_nonce)
    assert parse_callback(raw) == got


@pytest.mark.parametrize("nonce", ["4821", 4821, 4821.0])
@pytest.mark.parametrize("timestamp", [TS, str(TS)])
def test_open_callback_verifies_numeric_and_string_forms(timestamp: object, nonce: object) -> None:
    """A nonce sent as a number (int or integral float) verifies against its int string."""
    data = ref_encrypt(json.dumps(EVENT).encode(), KEY32.encode(), IV_CLIENT_ID)
    sig = ref_sign(CLIENT_ID, str(TS), "4821", data)
    body = {"signature": sig, "dataEncrypt": data, "timestamp": timestamp, "nonce": nonce}
    event = open_callback(json.dumps(body).encode(), api_key=KEY32, client_id=CLIENT_ID)
    assert event == WebhookEvent(JOB_ID, ImageStatus.COMPLETED, "image", URL)


GOOD = {"signature": "a" * 40, "dataEncrypt": "QUJD", "timestamp": TS, "nonce": NONCE}


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"\xff\xfe{",
        b"[" * 100_000,
        b"[]",
        b'"text"',
        b"null",
        {k: v for k, v in GOOD.items() if k != "signature"},
        {k: v for k, v in GOOD.items() if k != "dataEncrypt"},
        {k: v for k, v in GOOD.items() if k != "timestamp"},
        {k: v for k, v in GOOD.items() if k != "nonce"},
        {},
        {**GOOD, "signature": None},
        {**GOOD, "signature": 1},
        {**GOOD, "dataEncrypt": ["QUJD"]},
        {**GOOD, "timestamp": True},
        {**GOOD, "timestamp": None},
        {**GOOD, "timestamp": 1.5},
        {**GOOD, "timestamp": -1},
        {**GOOD, "timestamp": "0123"},
        {**GOOD, "timestamp": "12a"},
        {**GOOD, "timestamp": "١٢٣"},
        {**GOOD, "timestamp": "9" * 5000},
        {**GOOD, "timestamp": 10**5000},
        {**GOOD, "nonce": True},
        {**GOOD, "nonce": 1.5},
        {**GOOD, "nonce": float("nan")},
        {**GOOD, "nonce": float("inf")},
        {**GOOD, "nonce": 1e300},
        {**GOOD, "nonce": 10**5000},
        {**GOOD, "nonce": None},
        {**GOOD, "nonce": [1]},
    ],
)
def test_malformed_body_is_payload_error(body: bytes | dict[str, Any]) -> None:
    """A body that is not a JSON object, lacks a field or has a wrong type: WebhookPayloadError."""
    with pytest.raises(WebhookPayloadError):
        parse_callback(body)
    with pytest.raises(WebhookPayloadError):
        open_callback(body, api_key=KEY32, client_id=CLIENT_ID)


# -- decrypted event -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "plaintext",
    [
        b"not json",
        b"",
        b"[1, 2]",
        b'"text"',
        json.dumps({"status": 3}).encode(),
        json.dumps({"_id": "", "status": 3}).encode(),
        json.dumps({"_id": 7, "status": 3}).encode(),
        json.dumps({"_id": "j"}).encode(),
        json.dumps({"_id": "j", "status": True}).encode(),
        json.dumps({"_id": "j", "status": "3"}).encode(),
        json.dumps({"_id": "j", "status": 2.5}).encode(),
        json.dumps({"_id": "j", "status": 3, "url": 5}).encode(),
        json.dumps({"_id": "j", "status": 3, "type": ["image"]}).encode(),
    ],
)
def test_malformed_event_is_payload_error(plaintext: bytes) -> None:
    """A decrypted event that is not JSON, not an object, or lacks _id/status is a payload error."""
    with pytest.raises(WebhookPayloadError):
        open_callback(body_for(plaintext), api_key=KEY32, client_id=CLIENT_ID)


def test_non_utf8_plaintext_is_decrypt_error() -> None:
    """Plaintext that is not UTF-8 (the mark of a wrong IV or key) is a WebhookDecryptError."""
    with pytest.raises(WebhookDecryptError):
        open_callback(body_for(b"\xff\xfe{}"), api_key=KEY32, client_id=CLIENT_ID)


def test_event_keeps_intermediate_unknown_status_and_extra_keys() -> None:
    """Statuses 1-4 and unknown ints are kept; unknown keys land in extra; url may be absent."""
    raw = {"_id": "j1", "status": 7, "type": "image", "progress": 40, "meta": {"a": [1]}}
    event = open_callback(body_for(json.dumps(raw).encode()), api_key=KEY32, client_id=CLIENT_ID)
    assert event.status == 7
    assert not event.status.is_known
    assert event.url is None
    assert dict(event.extra) == {"progress": 40, "meta": {"a": [1]}}
    assert event.as_dict() == raw
    queued = parse_event(b'{"_id": "j2", "status": 2}')
    assert queued == WebhookEvent("j2", ImageStatus.PROCESSING)
    assert queued.extra == {}


def test_seal_event_body_shape() -> None:
    """seal_event returns the JSON-ready body the reference can decrypt and verify."""
    body = seal_event(EVENT, api_key=KEY24, client_id=CLIENT_ID, timestamp=TS, nonce=4821)
    assert set(body) == {"signature", "dataEncrypt", "timestamp", "nonce"}
    assert body["timestamp"] == TS
    assert body["nonce"] == 4821
    assert body["signature"] == ref_sign(CLIENT_ID, str(TS), "4821", body["dataEncrypt"])
    plaintext = ref_decrypt(body["dataEncrypt"], KEY24.encode(), IV_CLIENT_ID)
    assert json.loads(plaintext) == EVENT
    assert json.loads(json.dumps(body)) == body


# -- secrets in errors ---------------------------------------------------------------------


def _failures() -> list[Callable[[], object]]:
    good = body_for(json.dumps(EVENT).encode())
    bad_key = KEY32[:-1]
    pad_index = len(base64.b64decode(good["dataEncrypt"])) - 17
    return [
        lambda: open_callback(good, api_key="x" * 32, client_id=CLIENT_ID),
        lambda: open_callback(good, api_key=KEY32, client_id=KEY32),
        lambda: open_callback({**good, "nonce": KEY32}, api_key=KEY32, client_id=CLIENT_ID),
        lambda: open_callback(body_for(KEY32.encode()), api_key=KEY32, client_id=CLIENT_ID),
        lambda: decrypt(KEY32, api_key=KEY32, client_id=CLIENT_ID),
        lambda: decrypt(good["dataEncrypt"], api_key=bad_key, client_id=CLIENT_ID),
        lambda: decrypt(good["dataEncrypt"], api_key=KEY32 + "\ud800", client_id=CLIENT_ID),
        lambda: decrypt(flip(good["dataEncrypt"], pad_index), api_key=KEY32, client_id=CLIENT_ID),
        lambda: encrypt(b"x", api_key=bad_key, client_id=CLIENT_ID),
        lambda: encrypt(b"x", api_key="\ud800" + KEY32, client_id=CLIENT_ID),
        lambda: parse_callback(KEY32.encode()),
    ]


@pytest.mark.parametrize("index", range(len(_failures())))
def test_errors_never_show_the_api_key(index: int) -> None:
    """No error's str() or repr() contains the API key, or a prefix of it."""
    with pytest.raises((WebhookError, ValueError)) as info:
        _failures()[index]()
    for text in (str(info.value), repr(info.value)):
        assert KEY32 not in text
        assert KEY32[:8] not in text
        assert KEY32[:-1] not in text


# -- properties ----------------------------------------------------------------------------

ascii_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E))
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**80), 2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)


@st.composite
def api_keys(draw: st.DrawFn) -> str:
    size = draw(st.sampled_from([16, 24, 32]))
    wide = draw(st.text(st.characters(codec="utf-8", min_codepoint=0x80), max_size=4))
    while len(wide.encode()) > size:
        wide = wide[:-1]
    rest = draw(ascii_text.filter(bool).map(lambda s: (s * 32)[: size - len(wide.encode())]))
    return "".join(draw(st.permutations(list(wide + rest))))


@given(
    job_id=st.text(min_size=1),
    status=st.integers(-(2**63), 2**63),
    type_=st.none() | st.text(),
    url=st.none() | st.text(),
    extra=st.dictionaries(
        st.text().filter(lambda k: k not in {"_id", "status", "type", "url"}), json_values
    ),
    api_key=api_keys(),
    client_id=st.text(st.characters(codec="utf-8")),
    timestamp=st.integers(0, 2**63),
    nonce=st.text() | st.integers(-(2**63), 2**63),
)
def test_seal_then_open_round_trips(
    job_id: str,
    status: int,
    type_: str | None,
    url: str | None,
    extra: dict[str, Any],
    api_key: str,
    client_id: str,
    timestamp: int,
    nonce: str | int,
) -> None:
    """seal_event then open_callback (via JSON on the wire) gives back the same event."""
    assert len(api_key.encode()) in (16, 24, 32)
    expected = WebhookEvent(job_id, ImageStatus(status), type_, url, extra)
    body = seal_event(
        expected.as_dict(), api_key=api_key, client_id=client_id, timestamp=timestamp, nonce=nonce
    )
    wire = json.dumps(body).encode()
    assert open_callback(wire, api_key=api_key, client_id=client_id) == expected


@given(
    body=st.binary()
    | st.dictionaries(
        st.sampled_from(["signature", "dataEncrypt", "timestamp", "nonce"]), json_values
    )
)
def test_arbitrary_bodies_raise_only_webhook_errors(body: bytes | dict[str, Any]) -> None:
    """Whatever arrives, open_callback raises a WebhookError and nothing else."""
    with pytest.raises(WebhookError) as info:
        open_callback(body, api_key=KEY32, client_id=CLIENT_ID)
    assert isinstance(info.value, AkoolError)


@given(st.binary() | json_values.map(lambda v: json.dumps(v).encode()))
def test_arbitrary_plaintexts_parse_or_raise_webhook_errors(plaintext: bytes) -> None:
    """parse_event returns an event or raises a WebhookError for any decrypted bytes."""
    try:
        event = parse_event(plaintext)
    except WebhookError:
        return
    assert isinstance(event.status, ImageStatus)


def test_webhook_event_is_the_models_one() -> None:
    """The event lives with the models; the old import path still gives the same class."""
    from akool_async import _models, _webhook_crypto, webhook

    assert vars(_webhook_crypto)["WebhookEvent"] is _models.WebhookEvent is webhook.WebhookEvent
