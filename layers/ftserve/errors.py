"""Domain errors: every failure ftserve can name, mapped once at each boundary."""

from __future__ import annotations


class FtserveError(Exception):
    """Base of every error ftserve raises on purpose."""


class InvalidAdapter(FtserveError):
    """An upload failed validation; `reasons` lists every problem found, not only the first."""

    def __init__(self, reasons: list[str]) -> None:
        self.reasons = reasons
        super().__init__("; ".join(reasons))


class VersionExists(FtserveError):
    """A different upload already holds this <model>/<version>: versions are immutable."""


class VersionNotFound(FtserveError):
    """No registered version under that name."""


class TransientError(FtserveError):
    """Worth retrying (throttling, a replica that is down); the event is redelivered."""
