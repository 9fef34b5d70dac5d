"""Narrow exceptions under one base; the API renders each as a JSON error with its status."""

from __future__ import annotations


class OrchestratorError(Exception):
    """Base of every error this service raises on purpose."""

    status = 500
    code = "internal_error"

    def __init__(self, message: str, **details: object) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class BadRequest(OrchestratorError):
    status = 400
    code = "bad_request"


class Unauthenticated(OrchestratorError):
    """No credentials, or credentials that do not verify (401)."""

    status = 401
    code = "unauthenticated"


class Forbidden(OrchestratorError):
    """The caller may see the object but not do this to it (403)."""

    status = 403
    code = "forbidden"


class QuotaExceeded(OrchestratorError):
    """A per-user quota is used up (429, with Retry-After when it refills)."""

    status = 429
    code = "quota_exceeded"


class StorageFull(OrchestratorError):
    """The discussion holds as many bytes as MAX_DISCUSSION_BYTES allows (413)."""

    status = 413
    code = "discussion_storage_full"


class StorageQuotaExceeded(OrchestratorError):
    """The user's discussions hold as many bytes as USER_STORAGE_BYTES allows (413)."""

    status = 413
    code = "storage_quota_exceeded"


class NotFound(OrchestratorError):
    status = 404
    code = "not_found"


class DiscussionNotFound(NotFound):
    code = "discussion_not_found"


class ParticipantNotFound(NotFound):
    code = "participant_not_found"


class Conflict(OrchestratorError):
    """The request is valid but the discussion's state does not allow it now."""

    status = 409
    code = "conflict"


class Unprocessable(OrchestratorError):
    status = 422
    code = "validation_error"


class ServiceUnavailable(OrchestratorError):
    status = 503
    code = "service_unavailable"


class StaleLease(OrchestratorError):
    """A step's fencing token or turn no longer matches: another step moved on."""

    code = "stale_lease"


class AttemptsExhausted(OrchestratorError):
    """A turn was begun `step_max_attempts` times and never committed."""

    code = "step_attempts_exhausted"


class AgentError(OrchestratorError):
    """An agent call failed; `transient` says whether a retry may help."""

    code = "agent_error"

    def __init__(self, message: str, *, transient: bool = False, **details: object) -> None:
        super().__init__(message, **details)
        self.transient = transient


class StartupRefused(RuntimeError):
    """The settings are unsafe to start with (e.g. authentication off on a network address)."""
