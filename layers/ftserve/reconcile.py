"""The reconciler: every replica gets back the adapters the registry says it must have.

A vLLM replica that restarts forgets runtime-loaded adapters. On a schedule (and on demand) the
reconciler compares each replica's `GET /v1/models` with what must be loaded (every version in
a model's pointer, and the newest `keep_warm` servable versions, so the previous active one is
warm for rollback) and loads what is missing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ftserve.backends.vllm import VllmBackend
from ftserve.errors import BackendUnavailable, LoadFailed
from ftserve.observability import logger
from ftserve.pointer import parse_pointer, read_pointers
from ftserve.registry import Registry, VersionRecord
from ftserve.serving import Serving


@dataclass
class Report:
    loaded: list[str] = field(default_factory=list)
    already: int = 0
    failed: list[str] = field(default_factory=list)
    unreachable: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "loaded": self.loaded,
            "already_loaded": self.already,
            "failed": self.failed,
            "unreachable": sorted(set(self.unreachable)),
        }


def must_be_loaded(
    versions: list[VersionRecord], pointer_value: str | None, keep_warm: int
) -> list[VersionRecord]:
    by_version = {r.version: r for r in versions}
    wanted: dict[str, VersionRecord] = {}
    if pointer_value:
        try:
            for version in parse_pointer(pointer_value).versions:
                if version in by_version:
                    wanted[version] = by_version[version]
        except ValueError:
            pass  # a bad pointer is the invoke path's and the pointer guard's business
    servable = [r for r in versions if r.status in ("registered", "serving")]
    for record in servable[-keep_warm:]:
        wanted.setdefault(record.version, record)
    return [r for r in wanted.values() if r.status != "load_failed"]


def reconcile(
    registry: Registry,
    serving: Serving,
    ssm: Any,
    parameter_prefix: str,
    keep_warm: int,
    actor: str = "reconciler",
) -> Report:
    report = Report()
    pointers = read_pointers(ssm, parameter_prefix)
    for model in registry.models():
        for record in must_be_loaded(registry.list_versions(model), pointers.get(model), keep_warm):
            backend = serving.backend_for(record)
            if isinstance(backend, VllmBackend):
                _reconcile_one(registry, backend, record, report, actor)
    logger.info("reconciled", extra=report.as_dict())
    return report


def _reconcile_one(
    registry: Registry, backend: VllmBackend, record: VersionRecord, report: Report, actor: str
) -> None:
    missing = []
    for replica in backend.replicas:
        try:
            if record.name in replica.loaded():
                report.already += 1
            else:
                missing.append(replica)
        except BackendUnavailable:
            report.unreachable.append(replica.url)
    if not missing:
        if record.status == "registered" and not any(
            r.url in report.unreachable for r in backend.replicas
        ):
            registry.set_status(record.model, record.version, "serving", "", actor)
        return
    if backend.stager is not None:
        backend.stager(record)
    for replica in missing:
        try:
            replica.load(record.name, backend.path_for(record))
            report.loaded.append(f"{record.name} on {replica.url}")
        except LoadFailed as exc:
            report.failed.append(f"{record.name} on {replica.url}: {exc.reason}")
            registry.set_status(record.model, record.version, "load_failed", exc.reason, actor)
            return
        except BackendUnavailable:
            report.unreachable.append(replica.url)
            return
    if record.status != "serving":
        registry.set_status(record.model, record.version, "serving", "", actor)
