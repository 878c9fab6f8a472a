"""Errors a user can act on. Each message names the file, backend or id involved."""

from __future__ import annotations


class RagError(Exception):
    """Base for errors that are the user's or the environment's, not bugs."""


class InputError(RagError):
    """The request itself is wrong (empty question, bad id format, ...)."""


class NotFoundError(RagError):
    """An unknown source or paragraph id."""


class IngestError(RagError):
    """A file cannot be ingested. Nothing from the batch is written when this is raised."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class BackendUnavailable(RagError):
    """A model or store backend is down, slow or misconfigured."""

    def __init__(self, backend: str, address: str, reason: str) -> None:
        self.backend = backend
        self.address = address
        self.reason = reason
        super().__init__(f"{backend} at {address} is unavailable: {reason}")


class BackendsUnavailable(BackendUnavailable):
    """Readiness: every backend that is down at once (the store and the model server, say),
    each with its own reason. ``backend`` and ``address`` list them all, comma-separated."""

    def __init__(self, down: list[BackendUnavailable]) -> None:
        self.down = down
        RagError.__init__(self, "; ".join(str(e) for e in down))
        self.backend = ", ".join(e.backend for e in down)
        self.address = ", ".join(e.address for e in down)
        self.reason = "; ".join(e.reason for e in down)


class Busy(RagError):
    """Too many answers are already waiting for the model."""

    def __init__(self, retry_after: float = 1.0, ticket: str | None = None) -> None:
        self.retry_after = retry_after
        self.ticket = ticket  # the turn booked for this client, if any (X-Turn)
        super().__init__("the model is busy; try again shortly")


class WarmingUp(BackendUnavailable):
    """Readiness: a part of this process is still being loaded (the lexical index at start);
    questions asked now would wait for it, so the service does not say it is ready."""

    retry_after = 1.0
