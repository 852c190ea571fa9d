"""The one interface every serving backend implements."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ftserve.registry import VersionRecord


class Backend(Protocol):
    """Register / unregister / list loaded / invoke: what the pipeline needs from a backend."""

    def register(self, record: VersionRecord) -> None: ...

    def unregister(self, record: VersionRecord) -> None: ...

    def loaded(self) -> set[str]: ...

    def is_loaded(self, record: VersionRecord) -> bool: ...

    def invoke(self, record: VersionRecord, body: dict[str, Any]) -> dict[str, Any]: ...
