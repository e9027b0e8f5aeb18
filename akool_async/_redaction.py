"""Keeping credentials out of exception chains: error trackers (Sentry and the like) ship
an exception's whole ``__cause__``/``__context__`` chain and the attributes on it, and an
HTTP library's exception holds its request (the auth headers), a JSON decoder's the whole
document (a server may echo the key). Such causes are replaced by a ``CauseSummary``.
Our own errors need nothing here: they redact their messages as they are built (see
``_exceptions.redacting``)."""

from __future__ import annotations

from ._exceptions import AkoolError, redact

_MAX_CAUSE_TEXT = 300


class CauseSummary(Exception):
    """What a library error came from, as text only (``type``: the original's qualified
    name). The original is not kept: its attributes may hold credentials (an HTTP
    library's request and its headers, a JSON decoder's whole document)."""

    def __init__(self, type_name: str, text: str) -> None:
        super().__init__(f"{type_name}: {text}" if text else type_name)
        self.type = type_name

    @classmethod
    def of(cls, exc: BaseException, secrets: tuple[str, ...] = ()) -> CauseSummary:
        text = redact(_safe_str(exc), secrets)[:_MAX_CAUSE_TEXT]
        return cls(f"{type(exc).__module__}.{type(exc).__qualname__}", text)


def _safe_str(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception:
        return ""


def detach_causes(error: BaseException, secrets: tuple[str, ...] = ()) -> None:
    """Make ``error``'s whole ``__cause__``/``__context__`` chain safe to serialise (error
    trackers ship it): every foreign exception in it becomes a ``CauseSummary`` (its text
    redacted of ``secrets``). Python links the exception being handled as ``__context__``
    only when ours is raised, so this is done then, not when ours is built."""
    seen: set[int] = set()
    pending: list[BaseException] = [error]
    while pending:
        link = pending.pop()
        if id(link) in seen:
            continue
        seen.add(id(link))
        cause, context = link.__cause__, link.__context__
        if cause is not None and not _is_safe(cause):
            cause = link.__cause__ = CauseSummary.of(cause, secrets)
        if context is not None and not _is_safe(context):
            # A foreign exception being handled when ours was raised: kept as the cause
            # if there is none (it explains ours), never as it is.
            link.__context__ = context_summary = None
            if cause is None and not link.__suppress_context__:
                cause = link.__cause__ = context_summary = CauseSummary.of(context, secrets)
            context = context_summary
        pending.extend(e for e in (cause, context) if e is not None)


def _is_safe(exc: BaseException) -> bool:
    return isinstance(exc, AkoolError | CauseSummary)
