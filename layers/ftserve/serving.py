"""Which backend serves a version, and loading it there with an honest status."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ftserve.backends.base import Backend
from ftserve.config import Settings
from ftserve.errors import BackendUnavailable, LoadFailed
from ftserve.registry import Status, VersionRecord


@dataclass
class Serving:
    """Builds the backend for a version from configuration; clients injected for tests."""

    settings: Settings
    s3: Any = None
    sagemaker: Any = None
    sagemaker_runtime: Any = None
    # Backends live as long as the container: their connection pools are reused.
    _backends: dict[tuple[str, str], Backend | None] = field(default_factory=dict)

    def backend_for(self, record: VersionRecord) -> Backend | None:
        manifest = record.manifest
        # vLLM and SageMaker serve a base for every version on it; a hosted id is its own.
        key = (
            manifest.backend,
            record.name if manifest.backend == "openai" else manifest.base_model,
        )
        if key not in self._backends:
            self._backends[key] = self._build(record)
        return self._backends[key]

    def _build(self, record: VersionRecord) -> Backend | None:
        manifest = record.manifest
        if manifest.backend == "vllm":
            return self._vllm(manifest.base_model, manifest.base_id)
        if manifest.backend == "sagemaker":
            from ftserve.backends.sagemaker import SageMakerBackend

            targets = self.settings.sagemaker_targets
            target = targets.get(manifest.base_model) or targets.get(manifest.base_id)
            if target is None:
                return None
            return SageMakerBackend(
                target, s3=self.s3, sagemaker=self.sagemaker, runtime=self.sagemaker_runtime
            )
        from ftserve.backends.hosted import HostedBackend

        return HostedBackend.for_record(record)

    def _vllm(self, base_model: str, base_id: str) -> Backend | None:
        from ftserve.backends.vllm import VllmBackend

        urls = self.settings.vllm_endpoints.get(base_model) or self.settings.vllm_endpoints.get(
            base_id
        )
        if not urls:
            return None
        return VllmBackend(
            urls, self.settings.replica_adapter_dir or self.settings.adapter_dir, stager=self._stage
        )

    def _stage(self, record: VersionRecord) -> None:
        from ftserve.aws import client
        from ftserve.staging import stage

        stage(record, self.s3 or client("s3"), self.settings.adapter_dir)

    def load(self, record: VersionRecord) -> tuple[Status, str]:
        """Register the version on its backend: `serving`, `load_failed` with the backend's
        own reason, or still `registered` with why (no endpoint yet, a replica down)."""
        backend = self.backend_for(record)
        if backend is None:
            return "registered", f"no serving endpoint configured for {record.manifest.base_model}"
        try:
            backend.register(record)
        except LoadFailed as exc:
            return "load_failed", exc.reason
        except BackendUnavailable as exc:
            return "registered", f"waiting for replicas (the reconciler loads it): {exc}"
        return "serving", ""
