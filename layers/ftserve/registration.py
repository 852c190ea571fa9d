"""Registration: an uploaded manifest becomes an immutable version record, or a precise refusal."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Literal

from ftserve import eventbus
from ftserve.alarms import AlarmThresholds, ensure_version_alarms
from ftserve.aws import client, error_code
from ftserve.errors import TransientError, VersionExists
from ftserve.manifest import (
    CONFIG_FILE,
    MANIFEST_FILE,
    WEIGHTS_FILE,
    Manifest,
    adapter_prefix,
    parse_manifest_key,
)
from ftserve.observability import logger
from ftserve.registry import FileRecord, Registry, VersionRecord, now_iso
from ftserve.serving import Serving
from ftserve.validation import (
    adapter_config_errors,
    listing_errors,
    manifest_errors,
    safetensors_errors,
    too_large,
)

CHUNK = 1024 * 1024
Pin = tuple[int, str | None]  # (size, S3 object version; None: the latest)


@dataclass
class Outcome:
    result: Literal["registered", "duplicate", "rejected"]
    model: str | None
    version: str | None
    reasons: list[str] = field(default_factory=list)
    record: VersionRecord | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "result": self.result,
            "model": self.model,
            "version": self.version,
            "reasons": self.reasons,
        }


@dataclass
class Registrar:
    """Everything registration talks to, injected (tests give fakes or moto-backed clients)."""

    registry: Registry
    bucket: str
    bus_name: str
    max_adapter_bytes: int
    max_manifest_bytes: int
    serving: Serving | None = None
    alarms: AlarmThresholds | None = None
    s3: Any = None
    actor: str = "registration"
    # Digests of pinned object versions (immutable): a file matched against the manifest's
    # checksum is not downloaded again to be recorded.
    _digests: dict[tuple[str, str], FileRecord] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.s3 = self.s3 or client("s3")

    def register(self, key: str, manifest_version: str | None = None) -> Outcome:
        """Validate the upload the manifest commits, then record and announce the version.

        `manifest_version` (the S3 object version in the event) pins the exact manifest that
        triggered this delivery. A manifest that lists its files' SHA-256 (`files`) pins each
        file to the object version with those bytes, so concurrent uploads never mix."""
        try:
            model, version = parse_manifest_key(key)
        except ValueError as exc:
            return self._reject(None, None, key, [f"bad object key: {exc}"])
        prefix = adapter_prefix(model, version)
        files = self._list(prefix)
        if MANIFEST_FILE not in files:
            return self._reject(
                model, version, key, [f"{key} does not exist (deleted since upload?)"]
            )
        pins: dict[str, Pin] = {name: (size, None) for name, size in files.items()}
        if manifest_version:
            pins[MANIFEST_FILE] = (self._size(key, manifest_version), manifest_version)
        manifest_size = pins[MANIFEST_FILE][0]
        if manifest_size > self.max_manifest_bytes:  # never downloaded
            manifest, reasons = (
                None,
                [too_large("manifest", manifest_size, self.max_manifest_bytes)],
            )
        else:
            raw = self._read(prefix + MANIFEST_FILE, pins[MANIFEST_FILE])
            manifest, reasons = manifest_errors(raw, self.max_manifest_bytes)
        if manifest and (manifest.model, manifest.version) != (model, version):
            reasons.append(
                f"manifest names {manifest.model}@{manifest.version} but was uploaded "
                f"under {prefix}"
            )
        if manifest is not None and manifest.files:
            pins, pin_reasons = self._pin_declared(prefix, manifest, pins)
            reasons += pin_reasons
        reasons += listing_errors(files, manifest, self.max_adapter_bytes)
        if (manifest is None or manifest.has_weights) and {CONFIG_FILE, WEIGHTS_FILE} <= set(pins):
            reasons += self._weights_errors(prefix, pins, manifest)
        if reasons or manifest is None:
            return self._reject(model, version, key, reasons)

        record = self.snapshot(manifest, prefix, pins)
        try:
            created = self.registry.create_version(record, self.actor)
        except VersionExists as exc:
            return self._reject(model, version, key, [str(exc)])
        stored = record if created else self.registry.get_version(model, version)
        if not created and stored.announced:
            logger.info(
                "duplicate delivery: version already registered",
                extra={"model": model, "version": version},
            )
            return Outcome("duplicate", model, version, record=stored)
        self._announce(stored)
        return Outcome("registered", model, version, record=stored)

    # --- steps ----------------------------------------------------------------------------
    def _list(self, prefix: str) -> dict[str, int]:
        files: dict[str, int] = {}
        paginator = self.s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                files[obj["Key"][len(prefix) :]] = int(obj["Size"])
        return files

    def _size(self, key: str, version_id: str) -> int:
        return int(
            self.s3.head_object(Bucket=self.bucket, Key=key, VersionId=version_id)["ContentLength"]
        )

    def _pin_declared(
        self, prefix: str, manifest: Manifest, pins: dict[str, Pin]
    ) -> tuple[dict[str, Pin], list[str]]:
        """Each file the manifest lists, pinned to the object version whose bytes match it."""
        pinned: dict[str, Pin] = {MANIFEST_FILE: pins[MANIFEST_FILE]}
        reasons = []
        for name, digest in sorted((manifest.files or {}).items()):
            found = self._find_version(prefix + name, digest.removeprefix("sha256:"))
            if found is None:
                reasons.append(
                    f"file {name!r}: no uploaded version matches the manifest's {digest}"
                )
            else:
                pinned[name] = found
        return pinned, reasons

    def _find_version(self, key: str, sha256: str) -> Pin | None:
        candidates = []
        for page in self.s3.get_paginator("list_object_versions").paginate(
            Bucket=self.bucket, Prefix=key
        ):
            candidates += [v for v in page.get("Versions", []) if v["Key"] == key]
        candidates.sort(key=lambda v: v["LastModified"], reverse=True)
        for candidate in candidates[:20]:
            pin: Pin = (int(candidate["Size"]), candidate["VersionId"])
            if self._checksum(key, pin).sha256 == sha256:
                return pin
        return None

    def _read(self, key: str, pin: Pin, start: int = 0, end: int | None = None) -> bytes:
        """The pinned object's bytes (or bytes [start, end))."""
        version_id = pin[1]
        if end is not None and end <= start:
            return b""
        extra: dict[str, str] = {"Range": f"bytes={start}-{end - 1}"} if end is not None else {}
        if version_id:
            extra["VersionId"] = version_id
        return bytes(self.s3.get_object(Bucket=self.bucket, Key=key, **extra)["Body"].read())

    def _weights_errors(
        self, prefix: str, pins: dict[str, Pin], manifest: Manifest | None
    ) -> list[str]:
        config_size = pins[CONFIG_FILE][0]
        if config_size > self.max_manifest_bytes:  # never downloaded
            return [too_large(CONFIG_FILE, config_size, self.max_manifest_bytes)]
        config, reasons = adapter_config_errors(
            self._read(prefix + CONFIG_FILE, pins[CONFIG_FILE]), manifest
        )
        if "r" in config and not any(r.startswith(f"{CONFIG_FILE}: rank") for r in reasons):
            weights_key, weights = prefix + WEIGHTS_FILE, pins[WEIGHTS_FILE]
            reasons += safetensors_errors(
                weights[0],
                lambda start, end: self._read(weights_key, weights, start, end),
                config,
            )
        return reasons

    def snapshot(
        self, manifest: Manifest, prefix: str, pins: dict[str, Pin] | None = None
    ) -> VersionRecord:
        """The version record of the pinned files (the latest ones by default): every file
        hashed, its object version recorded."""
        if pins is None:
            pins = {name: (size, None) for name, size in self._list(prefix).items()}
        records = {name: self._checksum(prefix + name, pins[name]) for name in sorted(pins)}
        digest = hashlib.sha256(
            "".join(f"{name}:{rec.sha256}\n" for name, rec in records.items()).encode()
        ).hexdigest()
        return VersionRecord(
            manifest=manifest,
            adapter_uri=f"s3://{self.bucket}/{prefix}",
            files=records,
            content_sha256=digest,
            registered_at=now_iso(),
            status="registered",
            changed_by=self.actor,
        )

    def _checksum(self, key: str, pin: Pin = (0, None)) -> FileRecord:
        if pin[1] and (key, pin[1]) in self._digests:
            return self._digests[(key, pin[1])]
        extra = {"VersionId": pin[1]} if pin[1] else {}
        try:
            obj = self.s3.get_object(Bucket=self.bucket, Key=key, **extra)
        except Exception as exc:
            if error_code(exc) in {"SlowDown", "ThrottlingException", "RequestTimeout"}:
                raise TransientError(str(exc)) from exc
            raise
        sha, size = hashlib.sha256(), 0
        for chunk in obj["Body"].iter_chunks(CHUNK):
            sha.update(chunk)
            size += len(chunk)
        record = FileRecord(sha256=sha.hexdigest(), size=size, s3_version_id=obj.get("VersionId"))
        if record.s3_version_id:
            if len(self._digests) > 1024:
                self._digests.clear()
            self._digests[(key, record.s3_version_id)] = record
        return record

    def _announce(self, record: VersionRecord) -> None:
        if self.alarms is not None:
            ensure_version_alarms(client("cloudwatch"), record.model, record.version, self.alarms)
        if self.serving is not None and record.status != "serving":
            status, reason = self.serving.load(record)
            if (status, reason) != (record.status, record.status_reason):
                self.registry.set_status(
                    record.model,
                    record.version,
                    status,
                    reason,
                    self.actor,
                    history=status != record.status,
                )
                record = record.model_copy(update={"status": status, "status_reason": reason})
        eventbus.publish(
            "AdapterRegistered",
            {
                "model": record.model,
                "version": record.version,
                "name": record.name,
                "base_model": record.manifest.base_model,
                "backend": record.manifest.backend,
                "adapter_uri": record.adapter_uri,
                "content_sha256": record.content_sha256,
                "status": record.status,
            },
            self.bus_name,
        )
        self.registry.mark_announced(record.model, record.version)
        logger.info(
            "adapter registered",
            extra={
                "model": record.model,
                "version": record.version,
                "content_sha256": record.content_sha256,
            },
        )

    def _reject(
        self, model: str | None, version: str | None, key: str, reasons: list[str]
    ) -> Outcome:
        eventbus.publish(
            "AdapterRejected",
            {
                "model": model,
                "version": version,
                "key": key,
                "bucket": self.bucket,
                "reasons": reasons,
            },
            self.bus_name,
        )
        logger.warning("adapter rejected", extra={"key": key, "reasons": reasons})
        return Outcome("rejected", model, version, reasons)
