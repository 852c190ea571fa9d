"""An in-memory backend for unit tests of the logic around serving."""

from __future__ import annotations

from typing import Any

from ftserve.registry import VersionRecord


class InMemoryBackend:
    def __init__(self) -> None:
        self.adapters: dict[str, VersionRecord] = {}
        self.load_calls: list[str] = []

    def register(self, record: VersionRecord) -> None:
        self.load_calls.append(record.name)
        self.adapters[record.name] = record

    def unregister(self, record: VersionRecord) -> None:
        self.adapters.pop(record.name, None)

    def loaded(self) -> set[str]:
        return set(self.adapters)

    def is_loaded(self, record: VersionRecord) -> bool:
        return record.name in self.adapters

    def invoke(self, record: VersionRecord, body: dict[str, Any]) -> dict[str, Any]:
        return {
            "object": "chat.completion",
            "model": record.name,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": record.name},
                    "finish_reason": "stop",
                }
            ],
        }
