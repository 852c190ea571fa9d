"""Domain errors: every failure ftserve can name, mapped once at each boundary."""

from __future__ import annotations


class FtserveError(Exception):
    """Base of every error ftserve raises on purpose."""


class VersionExists(FtserveError):
    """A different upload already holds this <model>/<version>: versions are immutable."""


class VersionNotFound(FtserveError):
    """No registered version under that name."""


class TransientError(FtserveError):
    """Worth retrying (throttling, a replica that is down); the event is redelivered."""


class BackendError(FtserveError):
    """A serving backend failed; `status` is the HTTP status the API should answer with."""

    status = 502

    def __init__(self, message: str, retry_after: int | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(message)


class BackendUnavailable(BackendError):
    """No replica answered (down, restarting, unreachable)."""

    status = 503


class BackendTimeout(BackendError):
    status = 504


class AdapterNotLoaded(BackendError):
    """The replica does not have this adapter (it restarted, or it was never loaded)."""

    status = 503


class BadRequest(BackendError):
    """The backend refused the request itself (the caller's fault)."""

    status = 400


class LoadFailed(BackendError):
    """The backend refused the adapter; `reason` is its own error text."""

    def __init__(self, message: str, reason: str) -> None:
        self.reason = reason
        super().__init__(message)
