"""Self-hosted vLLM with runtime LoRA loading: one base, many adapters, per replica.

Adapters are loaded under their immutable name `<model>@<version>` (a name is never reused for
other weights: vLLM would reuse stale prefix cache). vLLM reads adapter files from a path it can
see: the registration function stages them into a shared folder (EFS in production, mounted
read-only by the replicas; a local folder here) and asks every replica to load them.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Sequence
from typing import Any

from ftserve.backends.http import JsonEndpoint, error_text
from ftserve.errors import (
    AdapterNotLoaded,
    BackendError,
    BackendUnavailable,
    BadRequest,
    LoadFailed,
)
from ftserve.registry import VersionRecord


class VllmReplica(JsonEndpoint):
    """One vLLM server (OpenAI-compatible, `--enable-lora`, runtime LoRA updating on)."""

    def loaded(self) -> set[str]:
        status, data = self.request("GET", "/v1/models", timeout_s=5)
        if status != 200:
            raise BackendUnavailable(f"vLLM replica {self.url} answered {status} to /v1/models")
        return {m["id"] for m in json.loads(data)["data"] if m.get("parent")}

    def load(self, name: str, path: str) -> None:
        status, data = self.request(
            "POST", "/v1/load_lora_adapter", {"lora_name": name, "lora_path": path}, timeout_s=60
        )
        text = error_text(data)
        if status == 200 or "already been loaded" in text:
            return
        if status >= 500 and "lora" not in text.lower():
            raise BackendUnavailable(
                f"vLLM replica {self.url} failed ({status}): {text}", retry_after=5
            )
        raise LoadFailed(f"vLLM replica {self.url} refused {name}: {text}", reason=text)

    def unload(self, name: str) -> None:
        status, data = self.request("POST", "/v1/unload_lora_adapter", {"lora_name": name})
        if status != 200 and "not found" not in error_text(data).lower():
            raise BackendError(
                f"vLLM replica {self.url} could not unload {name}: {error_text(data)}"
            )


class VllmBackend:
    """All replicas serving one base model."""

    def __init__(
        self,
        replicas: Sequence[str | VllmReplica],
        adapter_path: str,
        stager: Callable[[VersionRecord], None] | None = None,
        load_attempts: int = 3,
        backoff_s: float = 0.2,
    ) -> None:
        self.replicas = [r if isinstance(r, VllmReplica) else VllmReplica(r) for r in replicas]
        self.stager = stager
        self.adapter_path = adapter_path.rstrip("/")
        self.load_attempts = load_attempts
        self.backoff_s = backoff_s

    def path_for(self, record: VersionRecord) -> str:
        """Where replicas see the staged files: `<adapter path>/<model>@<version>`."""
        return f"{self.adapter_path}/{record.name}"

    def register(self, record: VersionRecord) -> None:
        """Load on every replica; a replica that stays down raises BackendUnavailable at the end
        (the others are loaded, and the reconciler loads it when it returns)."""
        if self.stager is not None:
            self.stager(record)
        down: list[str] = []
        for replica in self.replicas:
            try:
                self._load_with_backoff(replica, record)
            except BackendUnavailable as exc:
                down.append(str(exc))
        if down:
            raise BackendUnavailable("; ".join(down), retry_after=5)

    def _load_with_backoff(self, replica: VllmReplica, record: VersionRecord) -> None:
        for attempt in range(self.load_attempts):
            try:
                replica.load(record.name, self.path_for(record))
                return
            except BackendUnavailable:
                if attempt + 1 == self.load_attempts:
                    raise
                time.sleep(self.backoff_s * 2**attempt)

    def unregister(self, record: VersionRecord) -> None:
        for replica in self.replicas:
            replica.unload(record.name)

    def is_loaded(self, record: VersionRecord) -> bool:
        return record.name in self.loaded()

    def loaded(self) -> set[str]:
        """Adapters loaded on every replica (the intersection)."""
        sets = [r.loaded() for r in self.replicas]
        return set.intersection(*sets) if sets else set()

    def invoke(
        self,
        record: VersionRecord,
        body: dict[str, Any],
        path: str = "/v1/chat/completions",
        timeout_s: float | None = None,
    ) -> dict[str, Any]:
        """Forward the OpenAI JSON with `model` set to the adapter; one load-and-retry if the
        replica forgot the adapter (it restarted)."""
        replica = random.choice(self.replicas)
        payload = body | {"model": record.name}
        try:
            return self._forward(replica, path, payload, timeout_s)
        except AdapterNotLoaded:
            replica.load(record.name, self.path_for(record))
            return self._forward(replica, path, payload, timeout_s)

    def _forward(
        self, replica: VllmReplica, path: str, payload: dict[str, Any], timeout_s: float | None
    ) -> dict[str, Any]:
        status, data = replica.request("POST", path, payload, timeout_s=timeout_s)
        if status == 200:
            return dict(json.loads(data))
        text = error_text(data)
        if status == 404 and "does not exist" in text:
            raise AdapterNotLoaded(
                f"{payload['model']} is not loaded on {replica.url}", retry_after=1
            )
        if 400 <= status < 500:
            raise BadRequest(text)
        raise BackendUnavailable(
            f"vLLM replica {replica.url} failed ({status}): {text}", retry_after=2
        )
