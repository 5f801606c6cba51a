"""What the intake domain refuses, and why. The API turns these into RFC 9457 problems."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FieldError:
    """One offending field: a JSON Pointer (RFC 6901) into the request and a reason."""

    pointer: str
    detail: str


class DomainError(Exception):
    status = 400
    title = "Bad Request"
    type_slug = "bad-request"

    def __init__(self, detail: str, **extensions: object) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extensions = extensions


class Invalid(DomainError):
    """The request is well-formed but breaks a rule; every offending field is named."""

    status = 422
    title = "Unprocessable Content"
    type_slug = "validation"

    def __init__(
        self,
        errors: list[FieldError],
        detail: str = "the request has invalid fields",
        **extensions: object,
    ) -> None:
        super().__init__(detail, **extensions)
        self.errors = errors


class RuleBroken(Invalid):
    """A decision that breaks a benefit rule (for example the unemployment rule)."""

    type_slug = "rule-broken"


class Conflict(DomainError):
    status = 409
    title = "Conflict"
    type_slug = "conflict"


class ModifiedRequest(Conflict):
    """Same idempotency key, different content (Mojaloop's "modified request")."""

    type_slug = "modified-request"


class NotFound(DomainError):
    status = 404
    title = "Not Found"
    type_slug = "not-found"


class Forbidden(DomainError):
    status = 403
    title = "Forbidden"
    type_slug = "forbidden"


def pointer(*parts: object) -> str:
    return "/" + "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in parts)
