"""The business-code errors: one ``APIError`` subclass per code Akool documents, and
``error_for_code``, which picks the class for a code an answer carried.

Their bases (``APIError``, ``AuthenticationError``, ``ThrottledError``) and the whole tree's
description live in ``_exceptions``; this module imports nothing else from the package.
A new code is one class here and one line in ``_ERRORS_BY_CODE``.
"""

from __future__ import annotations

from typing import Any

from ._exceptions import APIError, AuthenticationError, ThrottledError


class ParameterError(APIError):
    code = 1003
    hint = "A parameter was rejected by the server; check the request's fields"


class VerificationRequiredError(APIError):
    code = 1004
    hint = "The account needs verification in the Akool console"


class RateLimitedError(APIError, ThrottledError):
    code = 1005
    hint = "Too many requests: lower the rate (it is retried with back-off automatically)"


class QuotaExceededError(APIError):
    code = 1006
    hint = "The account's quota is used up; upgrade the plan or wait for it to renew"


class NotFoundError(APIError):
    code = 1008
    hint = "No such job: check the id (results expire after 7 days)"


class PermissionDeniedError(APIError):
    code = 1009
    hint = "This key may not operate on that content"


class OperationNotAllowedError(APIError):
    code = 1010
    hint = "This content cannot be operated on (is the parent job finished?)"


class AlreadyOperatedError(APIError):
    code = 1011
    hint = "This operation was already done (a button can be used once)"


class InvalidTokenError(AuthenticationError):
    code = 1101
    hint = "The API key or token is invalid or expired: check AKOOL_API_KEY"


class MissingAuthorizationError(AuthenticationError):
    code = 1102
    hint = "No credentials were sent: pass api_key= or set AKOOL_API_KEY"


class PaymentRequiredError(APIError):
    code = 1103
    hint = "The account is unpaid or overdue; settle it in the Akool console"


class InsufficientCreditError(APIError):
    code = 1104
    hint = "Not enough credit: top up in the Akool console"


class GenerationError(APIError):
    code = 1108
    hint = "Akool could not generate the image; try again later"


class AccountNotFoundError(APIError):
    code = 1109
    hint = "The account does not exist; check the credentials"


class AccountBannedError(APIError):
    code = 1200
    hint = "The account is banned; contact Akool support"


class UnknownAPIError(APIError):
    """A business code this library does not know yet."""

    hint = "An unknown code: the message from the server says more"


_ERRORS_BY_CODE: dict[int, type[APIError]] = {
    cls.code: cls
    for cls in (
        ParameterError,
        VerificationRequiredError,
        RateLimitedError,
        QuotaExceededError,
        NotFoundError,
        PermissionDeniedError,
        OperationNotAllowedError,
        AlreadyOperatedError,
        InvalidTokenError,
        MissingAuthorizationError,
        PaymentRequiredError,
        InsufficientCreditError,
        GenerationError,
        AccountNotFoundError,
        AccountBannedError,
    )
}


def error_for_code(code: int, message: str, **context: Any) -> APIError:
    """The error for a business ``code`` (never 1000), unknown codes included."""
    cls = _ERRORS_BY_CODE.get(code, UnknownAPIError)
    return cls(message or f"Akool answered code {code}", code=code, **context)
