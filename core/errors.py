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


class AgentError(OrchestratorError):
    """An agent call failed; `transient` says whether a retry may help."""

    code = "agent_error"

    def __init__(self, message: str, *, transient: bool = False, **details: object) -> None:
        super().__init__(message, **details)
        self.transient = transient


class Forbidden(OrchestratorError):
    """The caller is known but may not do this to this object."""

    status = 403
    code = "forbidden"
