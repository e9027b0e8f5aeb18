"""One cattrs converter between the attrs models and Akool's JSON, for v3 and v4 alike.

What it absorbs: numbers sent as strings, ``display_buttons`` for ``buttons``, ``null``
lists, ``external_img`` (a fallback for ``image``), and keys it does not know (kept in
``extra``). What it refuses, with the JSON path
of the culprit: a missing ``_id`` or ``image_status``, and a value of the wrong type in a
field the client acts on (status, image URLs, buttons). A field that only describes a job
(``team_id``, ``prompt``...) with a value of an unexpected type is kept as it came, in
``extra``, rather than failing an answer that may carry a charged job.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, TypeVar

import attrs
import cattrs
from cattrs.errors import ClassValidationError, IterableValidationError
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from ._exceptions import PayloadError
from ._models import Button, CreditInfo, ImageJob, ImageStatus, Token
from ._requests import ButtonRequest, PromptRequest, SourcePromptRequest

T = TypeVar("T")
Number = int | float

# Python attribute -> JSON key, where they differ.
_JOB_KEYS = {
    "id": "_id",
    "status": "image_status",
    "from_": "from",
    "parent_id": "image_content_model_id",
    "op_button_message_id": "op_buttonMessageId",
}
_REQUEST_KEYS: dict[type, dict[str, str]] = {
    SourcePromptRequest: {"webhook_url": "webhookurl"},  # all lowercase on v4
    PromptRequest: {"webhook_url": "webhookUrl"},
    ButtonRequest: {"job_id": "_id", "webhook_url": "webhookUrl"},
}
_JSON_KEYS: dict[type, dict[str, str]] = {ImageJob: _JOB_KEYS, **_REQUEST_KEYS}
# Fields of a model that are this library's, never on the wire.
_LOCAL: dict[type, frozenset[str]] = {ImageJob: frozenset({"parts_missing", "source"})}
# The fields the client's logic reads; the others are checked leniently (see above).
_STRICT: dict[type, frozenset[str]] = {
    ImageJob: frozenset({"id", "status", "image", "buttons", "used_buttons", "upscaled_urls"}),
    CreditInfo: frozenset({"credit"}),
    Token: frozenset({"token"}),
}


def _json_keys(cls: type, renames: Mapping[str, str]) -> frozenset[str]:
    local = _LOCAL.get(cls, frozenset())
    return frozenset(
        renames.get(a.name, a.name)
        for a in attrs.fields(cls)
        if a.name != "extra" and a.name not in local
    )


def _to_int(value: Any, _: type) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        return int(value.strip())  # "3" as sent by some endpoints; ValueError otherwise
    raise TypeError(f"expected an integer, got {type(value).__name__}")


def _to_number(value: Any, _: type) -> Number:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            return float(text)
    raise TypeError(f"expected a number, got {type(value).__name__}")


def _to_str(value: Any, _: type) -> str:
    if isinstance(value, str):
        return value
    raise TypeError(f"expected a string, got {type(value).__name__}")


# Known members by value: a dict lookup is ten times cheaper than calling the enum, and a
# job carries a dozen of them. The type checks keep True from reading as status 1.
_BUTTONS = {button.value: button for button in Button}
_STATUSES = {int(status): status for status in ImageStatus}


def _to_button(value: Any, _: type) -> Button:
    if type(value) is str and (button := _BUTTONS.get(value)) is not None:
        return button
    return Button(_to_str(value, str))


def _to_status(value: Any, _: type) -> ImageStatus:
    if type(value) is int and (status := _STATUSES.get(value)) is not None:
        return status
    return ImageStatus(_to_int(value, int))


def _to_optional_str(value: Any, _: type) -> str | None:
    return value if value is None or type(value) is str else _to_str(value, str)


def _to_optional_int(value: Any, _: type) -> int | None:
    return value if value is None or type(value) is int else _to_int(value, int)


def _to_optional_button(value: Any, _: type) -> Button | None:
    return None if value is None else _to_button(value, Button)


def _to_tuple(item: Callable[[Any, type], T], item_type: type) -> Any:
    """Hooks are called directly, not through the converter: every poll structures a job,
    and dispatching each item and optional field was half of that cost."""

    def structure(value: Any, _: type) -> tuple[T, ...]:
        if value is None:
            return ()
        if not isinstance(value, list | tuple):
            raise TypeError(f"expected a list, got {type(value).__name__}")
        return tuple([item(entry, item_type) for entry in value])

    return structure


_EXTRA_KEY = "\x00extra"  # where structuring passes a model its unknown keys

converter = cattrs.Converter()
converter.register_structure_hook_func(lambda t: t == Mapping[str, Any], lambda v, _: v)
converter.register_structure_hook(int, _to_int)
converter.register_structure_hook_func(lambda t: t == Number, _to_number)
converter.register_structure_hook_func(
    lambda t: t == Number | None, lambda v, t: None if v is None else _to_number(v, t)
)
converter.register_structure_hook(str, _to_str)
converter.register_structure_hook(ImageStatus, _to_status)
converter.register_structure_hook(Button, _to_button)
converter.register_structure_hook(str | None, _to_optional_str)
converter.register_structure_hook(int | None, _to_optional_int)
converter.register_structure_hook(Button | None, _to_optional_button)
converter.register_structure_hook_func(
    lambda t: t == tuple[Button, ...], _to_tuple(_to_button, Button)
)
converter.register_structure_hook_func(lambda t: t == tuple[str, ...], _to_tuple(_to_str, str))
converter.register_unstructure_hook_func(lambda t: t == Number, lambda v: v)
converter.register_unstructure_hook(Button, lambda b: b.value)
converter.register_unstructure_hook(ImageStatus, int)


def _register_response_model(cls: type[T], renames: Mapping[str, str]) -> None:
    """Structure ``cls`` from JSON keeping unknown keys in ``extra``; unstructure it back."""
    overrides: dict[str, Any] = {name: override(rename=key) for name, key in renames.items()}
    overrides.update((name, override(omit=True)) for name in _LOCAL.get(cls, ()))
    known = _json_keys(cls, renames)
    strict = _STRICT[cls]
    # ``extra`` arrives under a key no server sends, so a model is built once, not evolved.
    structure_known = make_dict_structure_fn(
        cls, converter, extra=override(rename=_EXTRA_KEY), **overrides
    )
    unstructure_known = make_dict_unstructure_fn(
        cls, converter, _cattrs_omit_if_default=True, extra=override(omit=True), **overrides
    )

    def structure(data: Any, _: type) -> T:
        if not isinstance(data, Mapping):
            raise TypeError(f"expected an object, got {type(data).__name__}")
        fields = data
        if "buttons" not in data and "display_buttons" in data:
            fields = {**data, "buttons": data["display_buttons"]}  # the older docs' name
        consumed = "display_buttons" if fields is not data else None  # read as buttons
        extra = {key: value for key, value in data.items() if key not in known and key != consumed}
        if extra:
            fields = {**fields, _EXTRA_KEY: MappingProxyType(extra)}
        try:
            return structure_known(fields, cls)
        except ClassValidationError as exc:
            misfits = _lenient_misfits(exc, strict, renames)
        extra.update((key, data[key]) for key in misfits)
        kept = {key: value for key, value in fields.items() if key not in misfits}
        return structure_known({**kept, _EXTRA_KEY: MappingProxyType(extra)}, cls)

    def unstructure(model: Any) -> dict[str, Any]:
        return {**unstructure_known(model), **model.extra}

    converter.register_structure_hook(cls, structure)
    converter.register_unstructure_hook(cls, unstructure)


def _lenient_misfits(
    exc: ClassValidationError, strict: frozenset[str], renames: Mapping[str, str]
) -> frozenset[str]:
    """The JSON keys of the fields that failed, if none is strict; else ``exc`` again."""
    with_attribute, others = exc.group_exceptions()
    names = {attribute.name for _, attribute in with_attribute}
    if others or names & strict:
        raise exc
    return frozenset(renames.get(name, name) for name in names)


_register_response_model(ImageJob, _JOB_KEYS)
_register_response_model(CreditInfo, {})
_register_response_model(Token, {})


def _request_unstructurer(cls: type, renames: Mapping[str, str]) -> Any:
    """Requests send every field that is set, defaults included (explicit beats implied)."""
    overrides: dict[str, Any] = {name: override(rename=key) for name, key in renames.items()}
    unstructure_all: Callable[[Any], dict[str, Any]] = make_dict_unstructure_fn(
        cls, converter, **overrides
    )

    def unstructure(request: Any) -> dict[str, Any]:
        return {k: v for k, v in unstructure_all(request).items() if v is not None}

    return unstructure


for _cls, _renames in _REQUEST_KEYS.items():
    converter.register_unstructure_hook(_cls, _request_unstructurer(_cls, _renames))


def structure(data: Any, cls: type[T], *, path: str = "$.data", endpoint: str | None = None) -> T:
    """Structure ``data`` into ``cls``, or raise ``PayloadError`` naming the JSON path at fault."""
    try:
        return converter.structure(data, cls)
    except Exception as exc:
        problems = "; ".join(_describe(exc, path))
        raise PayloadError(f"unexpected answer: {problems}", endpoint=endpoint) from exc


def structure_jobs(data: Any, *, endpoint: str | None = None) -> tuple[ImageJob, ...]:
    """v4 answers one object for batch_quantity 1 and a list above it: always a tuple here."""
    if isinstance(data, list):
        return structure(data, tuple[ImageJob, ...], endpoint=endpoint)
    return (structure(data, ImageJob, endpoint=endpoint),)


def unstructure(model: Any) -> dict[str, Any]:
    """The JSON form of a model, with the API's own key names, omitting unset fields."""
    result: dict[str, Any] = converter.unstructure(model)
    return result


def _describe(exc: BaseException, path: str) -> list[str]:
    """Readable problems with JSON paths (cattrs reports attribute names, we want keys)."""
    problems: list[str] = []
    if isinstance(exc, ClassValidationError):
        keys = _JSON_KEYS.get(exc.cl, {})
        with_attribute, others = exc.group_exceptions()
        for inner, attribute in with_attribute:
            problems += _describe(inner, f"{path}.{keys.get(attribute.name, attribute.name)}")
    elif isinstance(exc, IterableValidationError):
        with_index, others = exc.group_exceptions()
        for inner, item in with_index:
            problems += _describe(inner, f"{path}[{item.index}]")
    elif isinstance(exc, KeyError):
        return [f"missing required field {path}"]
    else:
        return [f"{path}: {exc}"]
    return problems + [p for other in others for p in _describe(other, path)]
