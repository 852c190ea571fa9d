"""The hot path's resolution: model name → version, through the SSM pointer, cached briefly.

Each warm container re-reads every pointer by path at most once per TTL (default 2 s), so a
rollback reaches all traffic within about TTL. A pointer value that is malformed, or names a
version that is not servable, never takes traffic down: the last good resolution keeps serving,
and the bad value is logged, counted and announced (`PointerRejected`) once per container.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ftserve.errors import FtserveError, VersionNotFound
from ftserve.pointer import Pointer, parse_pointer
from ftserve.registry import Registry, VersionRecord

SERVABLE = ("serving", "registered")


class ModelNotFound(FtserveError):
    """No pointer (or no such version) for the requested model."""


@dataclass
class Rejection:
    model: str
    value: str
    reason: str
    serving: str | None


@dataclass
class Resolution:
    pointer: Pointer
    records: dict[str, VersionRecord]


def sticky_bucket(model: str, caller: str) -> int:
    """0..9999, stable for one caller and model: one user does not flip between versions."""
    digest = hashlib.sha256(f"{model}\x00{caller}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 10_000


def choose(pointer: Pointer, model: str, caller: str) -> str:
    bucket = sticky_bucket(model, caller) / 100  # 0.00 .. 99.99
    edge = 0.0
    for version, weight in pointer.arms:
        edge += weight
        if bucket < edge:
            return version
    return pointer.arms[-1][0]


@dataclass
class RecordCache:
    """Version records by name; immutable except status, so cached for `max_age_s`."""

    registry: Registry
    max_age_s: float = 30.0
    _items: dict[tuple[str, str], tuple[float, VersionRecord | None]] = field(default_factory=dict)

    def get(self, model: str, version: str) -> VersionRecord | None:
        key = (model, version)
        hit = self._items.get(key)
        now = time.monotonic()
        if hit and now - hit[0] < self.max_age_s:
            return hit[1]
        try:
            record: VersionRecord | None = self.registry.get_version(model, version)
        except VersionNotFound:
            record = None
        self._items[key] = (now, record)
        return record


# Models asked for within this long are "hot": refreshed together, once per TTL.
HOT_S = 60.0
BY_NAME_LIMIT = 10  # SSM GetParameters takes 10 names a call; more hot models read by path


@dataclass
class PointerTable:
    """One container's pointers, validated, last good kept. Once per TTL it re-reads the pointers
    of every model it serves in one call (GetParameters, up to 10 names; by path beyond that), so
    the cost follows the models this container serves, not how many exist."""

    fetch: Callable[[list[str] | None], dict[str, str]]  # None: every pointer (by path)
    records: RecordCache
    ttl_s: float = 2.0
    on_reject: Callable[[Rejection], None] | None = None
    on_fetch_error: Callable[[Exception], None] | None = None
    _good: dict[str, Resolution] = field(default_factory=dict)
    _announced: set[tuple[str, str]] = field(default_factory=set)
    _wanted: dict[str, float] = field(default_factory=dict)
    _read_at: dict[str, float] = field(default_factory=dict)
    _all_read_at: float = float("-inf")
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def refresh(self, model: str | None = None, everything: bool = False) -> None:
        now = time.monotonic()
        with self._lock:
            if model is not None:
                self._wanted[model] = now
            stale = now - self._all_read_at >= self.ttl_s
            if everything and not stale:
                return
            hot = [m for m, at in self._wanted.items() if now - at < HOT_S]
            due = [m for m in hot if now - self._read_at.get(m, float("-inf")) >= self.ttl_s]
            if not everything and not due:
                return
            names = None if everything or len(hot) > BY_NAME_LIMIT else hot
            try:
                raw = self.fetch(names)
            except Exception as exc:  # SSM unreachable: keep serving what we had
                if self.on_fetch_error:
                    self.on_fetch_error(exc)
                for m in hot:
                    self._read_at[m] = now  # retry after a TTL, not on every request
                return
            if names is None:
                self._all_read_at = now
                affected = set(raw) | set(self._good) | set(hot)
            else:
                affected = set(names)
            for m in affected:
                self._read_at[m] = now
                if m in raw:
                    self._apply(m, raw[m])
                else:  # pointer deleted: the model is no longer served
                    self._good.pop(m, None)

    def _apply(self, model: str, value: str) -> None:
        current = self._good.get(model)
        if current is not None and str(current.pointer) == value.strip():
            return
        try:
            pointer = parse_pointer(value)
            records = {}
            for version in pointer.versions:
                record = self.records.get(model, version)
                if record is None:
                    raise ValueError(f"{model}@{version} is not registered")
                if record.status not in SERVABLE:
                    raise ValueError(f"{model}@{version} is not servable ({record.status})")
                records[version] = record
        except ValueError as exc:
            self._reject(model, value, str(exc), current)
            return
        self._good[model] = Resolution(pointer, records)

    def _reject(self, model: str, value: str, reason: str, current: Resolution | None) -> None:
        key = (model, value)
        if key in self._announced:
            return
        self._announced.add(key)
        if self.on_reject:
            self.on_reject(
                Rejection(model, value, reason, str(current.pointer) if current else None)
            )

    def resolve(self, model: str) -> Resolution:
        self.refresh(model)
        resolution = self._good.get(model)
        if resolution is None:
            raise ModelNotFound(f"The model '{model}' does not exist or has no active version")
        return resolution

    def models(self) -> dict[str, Resolution]:
        self.refresh(everything=True)
        return dict(self._good)
